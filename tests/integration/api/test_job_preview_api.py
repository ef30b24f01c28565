"""``POST /jobs/{id}/preview`` through the real app, SQLite and PostgreSQL: records read from a loopback API (or
given), routed and rendered per destination; nothing written (files, rows, requests, executions, dead letters,
staging, DAG runs); permissions; secrets never in the answer."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import bearer, login, make_user
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, func, inspect, select

from tests.unit.connectors.fake_servers import LocalServer, Reply, Request

API = "/api/v1"
TOKEN = "src-token-5f2b9c1e"
HOOK_KEY = "hook-key-77aa1c3d"


@pytest.fixture
def client(api_db: str, files_root: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    from muxly_provider.api.app import create_app
    from muxly_provider.auth.throttle import reset_throttle
    from muxly_provider.executions import start_run

    monkeypatch.setenv("AIRFLOW__MUXLY__STAGING_PATH", str(files_root / "staging"))

    def no_run(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a preview must not start a DAG run")

    monkeypatch.setattr(start_run, "trigger_job_run", no_run)
    reset_throttle()
    with TestClient(create_app()) as test_client:
        yield test_client


@pytest.fixture
def heads(client: TestClient) -> dict[str, dict[str, str]]:
    for name in ("admin", "operator", "viewer"):
        make_user(f"preview-{name}", [name])
    return {n: bearer(login(client, f"preview-{n}")["access_token"]) for n in ("admin", "operator", "viewer")}


def _create(client: TestClient, headers: dict[str, str], path: str, body: dict[str, Any]) -> None:
    answer = client.post(f"{API}/{path}", headers=headers, json=body)
    assert answer.status_code == 201, answer.text


@pytest.fixture
def hook() -> Iterator[LocalServer]:
    with LocalServer(lambda request: Reply(200, {})) as server:
        yield server


@pytest.fixture
def source() -> Iterator[LocalServer]:
    def orders(request: Request) -> Reply:
        if request.headers.get("Authorization") != f"Bearer {TOKEN}":
            return Reply(401, {"error": "no"})
        return Reply(
            200, [{"id": i, "total": 40 * i, "note": "n" if i % 5 == 0 else None} for i in range(1, 31)]
        )

    with LocalServer(orders) as server:
        yield server


@pytest.fixture
def job(
    client: TestClient,
    heads: dict[str, dict[str, str]],
    files_root: Path,
    source: LocalServer,
    hook: LocalServer,
) -> str:
    """Connector -> route (dead_letter) -> rules big (file, database) and noted (webhook, failing step)."""
    admin = heads["admin"]
    _create(
        client,
        admin,
        "connectors",
        {
            "id": "shop",
            "name": "Shop",
            "connector_type": "api",
            "auth_settings": {"auth_type": "bearer", "params": {"token": TOKEN}},
            "connection_settings": {"base_url": source.url + "/orders", "retry": {"max_attempts": 1}},
        },
    )
    destinations = [
        ("files", "file", {"output_dir": "out", "file_format": "csv"}),
        ("letters", "file", {"output_dir": "letters"}),
        (
            "rows",
            "database",
            {
                "connection_string": f"sqlite:///{files_root / 'target.db'}",
                "table": "orders",
                "create_table": True,
            },
        ),
        (
            "hook",
            "webhook",
            {
                "url": hook.url + "/in",
                "headers": {"X-Key": HOOK_KEY},
                "body_template": {"n": "{{count}}", "ids": "{{ records | map(attribute='id') | list }}"},
            },
        ),
    ]
    for dest_id, kind, config in destinations:
        body = {"id": dest_id, "name": dest_id.title(), "destination_type": kind, "config": config}
        _create(client, admin, "destinations", body)
    op = heads["operator"]
    rules = [
        {
            "id": "big",
            "name": "Big",
            "priority": 1,
            "condition": "total > 100",
            "destination_ids": ["files", "rows"],
            "transformations": [
                {"transformation_type": "rename_field", "config": {"from": "total", "to": "amount"}}
            ],
        },
        {
            "id": "noted",
            "name": "Noted",
            "priority": 2,
            "condition": "EXISTS note AND note != null",
            "destination_ids": ["hook"],
            "transformations": [
                {"transformation_type": "set_field", "config": {"field": "note.seen", "value": True}}
            ],
        },
    ]
    for rule in rules:
        _create(client, op, "rules", rule)
    _create(
        client,
        op,
        "routes",
        {
            "id": "main",
            "name": "Main",
            "connector_id": "shop",
            "error_handling": {"mode": "dead_letter", "dead_letter_destination_id": "letters"},
            "rules": [{"rule_id": "big"}, {"rule_id": "noted"}],
        },
    )
    _create(
        client,
        op,
        "jobs",
        {
            "id": "orders",
            "name": "Orders",
            "job_type": "manual",
            "connector_id": "shop",
            "action_type": "sync",
        },
    )
    return "orders"


def _count(engine: Engine, table: str) -> int:
    from muxly_provider.db.models import metadata

    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(metadata.tables[table])).scalar_one())


def test_preview_reads_routes_renders_and_writes_nothing(
    client: TestClient,
    heads: dict[str, dict[str, str]],
    job: str,
    files_root: Path,
    source: LocalServer,
    hook: LocalServer,
    muxly_engine: Engine,
) -> None:
    answer = client.post(f"{API}/jobs/{job}/preview", headers=heads["operator"], json={"limit": 10})
    assert answer.status_code == 200, answer.text
    preview = answer.json()
    assert preview["source"] == "connector" and preview["records_in"] == 10 and preview["truncated"] is True
    assert preview["error"] is None and preview["warnings"] == []
    assert preview["matched_per_rule"] == {"big": 8, "noted": 2}
    assert preview["unmatched"] == 2  # ids 1 and 2: small, without a note
    dests = {d["id"]: d for d in preview["destinations"]}
    files = dests["files"]
    assert files["routed"] == 8 and files["rendered_as"] == "line"
    assert files["rendered"][:2] == ["id,note,amount", "3,,120"]  # a rename moves the field last
    assert dests["rows"]["rendered"][0] == {"id": 3, "note": None, "amount": 120}
    assert dests["rows"]["target"] == "table orders, insert"
    # The noted records (5 and 10) fail their step: dead-lettered with the error, nothing for the webhook.
    assert dests["hook"]["routed"] == 0
    assert preview["failures_total"] == 2
    assert {f["record"]["id"] for f in preview["failures"]} == {5, 10}
    assert dests["letters"]["routed"] == 2 and dests["letters"]["records"][0]["rule_id"] == "noted"
    assert dests["files"]["dead_letter_destination_id"] == "letters"
    # Nothing written, sent or recorded.
    assert [r.path for r in source.requests] == ["/orders"]
    assert hook.requests == []
    for folder in ("out", "letters", "staging"):
        assert not (files_root / folder).exists(), folder
    target = create_engine(f"sqlite:///{files_root / 'target.db'}")
    assert not inspect(target).has_table("orders")
    target.dispose()
    assert _count(muxly_engine, "job_executions") == 0
    assert _count(muxly_engine, "dead_letters") == 0
    text = answer.text
    assert TOKEN not in text and HOOK_KEY not in text


def test_webhook_requests_are_rendered_with_records_given(
    client: TestClient, heads: dict[str, dict[str, str]], job: str, hook: LocalServer, source: LocalServer
) -> None:
    records = [{"id": 7, "total": 10, "note": {"text": "gift"}}, {"id": 8, "total": 1}]
    answer = client.post(f"{API}/jobs/{job}/preview", headers=heads["viewer"], json={"records": records})
    assert answer.status_code == 200, answer.text
    preview = answer.json()
    assert preview["source"] == "records" and preview["records_in"] == 2 and preview["unmatched"] == 1
    assert preview["unmatched_records"] == [{"id": 8, "total": 1}]
    [request] = next(d for d in preview["destinations"] if d["id"] == "hook")["rendered"]
    assert request == {
        "method": "POST",
        "url": hook.url + "/in",
        "headers": {"X-Key": "***"},
        "body": {"n": 1, "ids": [7]},
    }
    assert hook.requests == [] and source.requests == []
    assert HOOK_KEY not in answer.text


def test_preview_permissions_and_errors(
    client: TestClient, heads: dict[str, dict[str, str]], job: str
) -> None:
    viewer = client.post(f"{API}/jobs/{job}/preview", headers=heads["viewer"], json={})
    assert viewer.status_code == 403, viewer.text
    assert viewer.json()["error"]["details"] == {"resource": "connectors", "action": "execute"}
    make_user("preview-nobody", [])
    nobody = bearer(login(client, "preview-nobody")["access_token"])
    refused = client.post(f"{API}/jobs/{job}/preview", headers=nobody, json={"records": [{"id": 1}]})
    assert refused.status_code == 403
    assert refused.json()["error"]["details"] == {"resource": "jobs", "action": "read"}
    assert client.post(f"{API}/jobs/{job}/preview", json={}).status_code == 401
    missing = client.post(f"{API}/jobs/nope/preview", headers=heads["operator"], json={})
    assert missing.status_code == 404
    too_many = client.post(f"{API}/jobs/{job}/preview", headers=heads["operator"], json={"limit": 101})
    assert too_many.status_code == 422 and too_many.json()["error"]["details"]["field"] == "limit"
    not_objects = client.post(f"{API}/jobs/{job}/preview", headers=heads["viewer"], json={"records": [1]})
    assert not_objects.status_code == 422


def test_a_failing_connector_answers_502_without_its_text(
    client: TestClient, heads: dict[str, dict[str, str]], job: str
) -> None:
    admin = heads["admin"]
    patched = client.patch(
        f"{API}/connectors/shop",
        headers=admin,
        json={
            "auth_settings": {"auth_type": "bearer", "params": {"token": TOKEN}},
            "connection_settings": {"base_url": "http://127.0.0.1:9/orders", "retry": {"max_attempts": 1}},
        },
    )
    assert patched.status_code == 200, patched.text
    failed = client.post(f"{API}/jobs/{job}/preview", headers=heads["operator"], json={"limit": 3})
    assert failed.status_code == 502, failed.text
    assert failed.json()["error"]["code"] == "preview_failed"
    assert "connection refused" in failed.json()["error"]["message"]
    assert TOKEN not in json.dumps(failed.json())
