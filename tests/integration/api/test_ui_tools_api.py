"""The Airflow UI's tools through the real app, SQLite and PostgreSQL (issue 14): the multi-rule tester
``POST /rules/test``, ``POST /connectors/{id}/sample`` (bounded, writes nothing) and
``POST /destinations/{id}/test`` (reaches the target, delivers nothing, confined like the connector test)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import bearer, login, make_user
from fastapi.testclient import TestClient
from sqlalchemy import Engine, create_engine, func, inspect, select, text

from tests.integration.destinations.destination_servers import http_recorder, smtp_server
from tests.unit.connectors.fake_servers import LocalServer, Reply, Request

API = "/api/v1"


@pytest.fixture
def client(api_db: str, files_root: Path) -> Iterator[TestClient]:
    from muxly_provider.api.app import create_app
    from muxly_provider.auth.throttle import reset_throttle

    reset_throttle()
    with TestClient(create_app()) as test_client:
        yield test_client


@pytest.fixture
def heads(client: TestClient) -> dict[str, dict[str, str]]:
    """Authorization headers of an admin, an operator and a viewer."""
    for name in ("admin", "operator", "viewer"):
        make_user(f"tools-{name}", [name])
    return {n: bearer(login(client, f"tools-{n}")["access_token"]) for n in ("admin", "operator", "viewer")}


def _create(client: TestClient, headers: dict[str, str], path: str, body: dict[str, Any]) -> None:
    answer = client.post(f"{API}/{path}", headers=headers, json=body)
    assert answer.status_code == 201, answer.text


# -- POST /rules/test --------------------------------------------------------------------------------------


def test_rules_tester_runs_stored_and_unsaved_rules_per_record(
    client: TestClient, heads: dict[str, dict[str, str]]
) -> None:
    op = heads["operator"]
    _create(client, op, "rules", {"id": "big", "name": "Big", "priority": 1, "condition": "total > 10"})
    _create(
        client,
        op,
        "rules",
        {
            "id": "us",
            "name": "US",
            "priority": 2,
            "condition": "country == 'US'",
            "transformations": [
                {"transformation_type": "set_field", "config": {"field": "tag", "value": "us"}}
            ],
        },
    )
    body = {
        "records": [{"total": 20, "country": "US"}, {"total": 5, "country": "FR"}, {"total": 11}],
        "rule_ids": ["us", "big"],
        "rules": [
            {
                "id": "draft",
                "priority": 0,
                "condition": "total < 15",
                "transformations": [
                    {"transformation_type": "rename_field", "config": {"from": "total", "to": "amount"}}
                ],
            }
        ],
    }
    answer = client.post(f"{API}/rules/test", headers=heads["viewer"], json=body)
    assert answer.status_code == 200, answer.text
    tested = answer.json()
    assert [(r["id"], r["source"], r["error"]) for r in tested["rules"]] == [
        ("draft", "rules[0]", None),
        ("big", "stored", None),
        ("us", "stored", None),
    ]
    first, second, third = tested["results"]
    assert first["matched"] == ["big", "us"]
    assert first["outputs"] == {
        "big": [{"total": 20, "country": "US"}],
        "us": [{"total": 20, "country": "US", "tag": "us"}],
    }
    assert second["matched"] == ["draft"] and second["outputs"] == {"draft": [{"amount": 5, "country": "FR"}]}
    assert third["matched"] == ["draft", "big"] and third["errors"] == []


def test_rules_tester_gives_the_error_position_and_step_errors(
    client: TestClient, heads: dict[str, dict[str, str]]
) -> None:
    body = {
        "records": [{"a": "text", "n": 1}, {"a": {}, "n": 2}],
        "rules": [
            {"id": "broken", "condition": "n >"},
            {
                "id": "nested",
                "transformations": [
                    {"transformation_type": "set_field", "config": {"field": "a.b", "value": 1}}
                ],
            },
            {"id": "bad-step", "transformations": [{"transformation_type": "teleport"}]},
        ],
    }
    answer = client.post(f"{API}/rules/test", headers=heads["viewer"], json=body)
    assert answer.status_code == 200, answer.text
    tested = answer.json()
    errors = {r["id"]: r["error"] for r in tested["rules"]}
    single = client.post(
        f"{API}/rules/test-condition", headers=heads["viewer"], json={"expression": "n >", "records": []}
    )
    assert single.status_code == 422
    assert errors["broken"]["field"] == "condition"
    assert errors["broken"]["reason"] == single.json()["error"]["details"]["reason"]
    assert f"at position {errors['broken']['position']}" in errors["broken"]["reason"]
    assert errors["bad-step"]["field"] == "transformations[0].transformation_type"
    assert errors["nested"] is None
    first, second = tested["results"]
    assert first["matched"] == ["nested"] and first["outputs"] == {}
    assert [(e["rule_id"], e["field"]) for e in first["errors"]] == [("nested", "transformations[0]")]
    assert second["outputs"] == {"nested": [{"a": {"b": 1}, "n": 2}]} and second["errors"] == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"records": [{}]}, ""),
        ({"records": [{}], "rule_ids": ["nope"]}, "rule_ids[0]"),
        ({"records": [{}], "rules": [{"condition": "x", "extra": 1}]}, "rules.0.extra"),
    ],
)
def test_rules_tester_refuses_bad_requests(
    client: TestClient, heads: dict[str, dict[str, str]], body: dict[str, Any], field: str
) -> None:
    answer = client.post(f"{API}/rules/test", headers=heads["viewer"], json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["details"]["field"] == field


# -- POST /connectors/{id}/sample ------------------------------------------------------------------------


@pytest.fixture
def jsonl_connector(client: TestClient, heads: dict[str, dict[str, str]], files_root: Path) -> Path:
    (files_root / "data").mkdir()
    path = files_root / "data" / "orders.jsonl"
    path.write_text("".join(json.dumps({"n": i, "total": i * 10}) + "\n" for i in range(30)))
    _create(
        client,
        heads["operator"],
        "connectors",
        {
            "id": "orders",
            "name": "Orders",
            "connector_type": "file",
            "connection_settings": {"path": "data/orders.jsonl"},
        },
    )
    return path


def _executions(engine: Engine) -> int:
    from muxly_provider.db.models import JobExecution

    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(JobExecution)).scalar_one())


def test_sample_reads_at_most_limit_records_and_writes_nothing(
    client: TestClient, heads: dict[str, dict[str, str]], jsonl_connector: Path, muxly_engine: Engine
) -> None:
    before = jsonl_connector.read_bytes()
    op = heads["operator"]
    default = client.post(f"{API}/connectors/orders/sample", headers=op)
    assert default.status_code == 200, default.text
    assert default.json() == {
        "records": [{"n": i, "total": i * 10} for i in range(10)],
        "truncated": True,
        "timed_out": False,
    }
    everything = client.post(f"{API}/connectors/orders/sample", headers=op, json={"limit": 100}).json()
    assert len(everything["records"]) == 30 and everything["truncated"] is False
    exact = client.post(f"{API}/connectors/orders/sample", headers=op, json={"limit": 30}).json()
    assert len(exact["records"]) == 30 and exact["truncated"] is False
    assert jsonl_connector.read_bytes() == before
    assert _executions(muxly_engine) == 0
    too_many = client.post(f"{API}/connectors/orders/sample", headers=op, json={"limit": 101})
    assert too_many.status_code == 422 and too_many.json()["error"]["details"]["field"] == "limit"


def test_sample_confines_its_data_spec_and_needs_execute(
    client: TestClient, heads: dict[str, dict[str, str]], jsonl_connector: Path
) -> None:
    outside = client.post(
        f"{API}/connectors/orders/sample",
        headers=heads["operator"],
        json={"data_spec": {"path": "../../etc/passwd"}},
    )
    assert outside.status_code == 422, outside.text
    assert outside.json()["error"]["details"]["field"] == "data_spec.path"
    viewer = client.post(f"{API}/connectors/orders/sample", headers=heads["viewer"])
    assert viewer.status_code == 403
    assert viewer.json()["error"]["details"] == {"resource": "connectors", "action": "execute"}
    assert client.post(f"{API}/connectors/nope/sample", headers=heads["operator"]).status_code == 404


def test_sample_is_bounded_in_time_and_says_why_a_source_failed(
    client: TestClient, heads: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from muxly_provider.api.v1 import connectors

    def slow(request: Request) -> Reply:
        time.sleep(3)
        return Reply(200, [{"late": True}])

    monkeypatch.setattr(connectors, "SAMPLE_SECONDS", 0.5)
    op = heads["operator"]
    with LocalServer(slow) as server:
        settings = {"base_url": server.url, "retry": {"max_attempts": 1}}
        _create(
            client,
            op,
            "connectors",
            {"id": "slow", "name": "S", "connector_type": "api", "connection_settings": settings},
        )
        started = time.monotonic()
        answer = client.post(f"{API}/connectors/slow/sample", headers=op)
        assert time.monotonic() - started < 2.5
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"records": [], "truncated": True, "timed_out": True}
    dead = {"base_url": "http://127.0.0.1:9/x", "retry": {"max_attempts": 1}}
    _create(
        client,
        op,
        "connectors",
        {"id": "dead", "name": "D", "connector_type": "api", "connection_settings": dead},
    )
    failed = client.post(f"{API}/connectors/dead/sample", headers=op)
    assert failed.status_code == 502, failed.text
    assert failed.json()["error"]["code"] == "sample_failed"
    assert "connection refused" in failed.json()["error"]["message"]


# -- POST /destinations/{id}/test -------------------------------------------------------------------------


def _test(client: TestClient, headers: dict[str, str], destination_id: str) -> dict[str, Any]:
    answer = client.post(f"{API}/destinations/{destination_id}/test", headers=headers)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def test_file_and_database_destinations_are_checked_without_writing(
    client: TestClient, heads: dict[str, dict[str, str]], files_root: Path
) -> None:
    op, admin = heads["operator"], heads["admin"]
    _create(
        client,
        op,
        "destinations",
        {"id": "files", "name": "F", "destination_type": "file", "config": {"output_dir": "out/daily"}},
    )
    result = _test(client, op, "files")
    assert result["ok"] is True and "can be created" in result["message"], result
    assert not (files_root / "out").exists()
    target = files_root / "target.db"
    url = f"sqlite:///{target}"
    config = {"connection_string": url, "table": "orders"}
    _create(
        client,
        admin,
        "destinations",
        {"id": "db", "name": "DB", "destination_type": "database", "config": config},
    )
    result = _test(client, op, "db")
    assert result["ok"] is True and "does not exist yet" in result["message"], result
    engine = create_engine(url)
    assert not inspect(engine).has_table("orders")
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE orders (id INTEGER PRIMARY KEY, total REAL)"))
    result = _test(client, op, "db")
    assert result["ok"] is True and "exists with 2 column(s)" in result["message"], result
    with engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM orders")).scalar_one() == 0
    engine.dispose()


def test_http_destinations_are_reached_but_sent_nothing(
    client: TestClient, heads: dict[str, dict[str, str]]
) -> None:
    op, admin = heads["operator"], heads["admin"]
    with LocalServer(lambda request: Reply(200, {})) as server:
        _create(
            client,
            op,
            "destinations",
            {"id": "hook", "name": "H", "destination_type": "webhook", "config": {"url": server.url + "/in"}},
        )
        result = _test(client, op, "hook")
        assert result["ok"] is True and "nothing was sent" in result["message"], result
        assert server.requests == []
    _create(
        client,
        op,
        "destinations",
        {
            "id": "closed",
            "name": "C",
            "destination_type": "webhook",
            "config": {"url": "http://127.0.0.1:9/in"},
        },
    )
    result = _test(client, op, "closed")
    assert result == {"ok": False, "message": "destination 'closed' (webhook): connection refused"}
    secret = "http://127.0.0.1:9/services/T0/B0/very-secret-slack-path"
    _create(
        client,
        admin,
        "destinations",
        {"id": "slack", "name": "S", "destination_type": "slack", "config": {"webhook_url": secret}},
    )
    result = _test(client, op, "slack")
    assert result["ok"] is False and "very-secret" not in result["message"], result


def test_email_destination_logs_in_and_sends_nothing(
    client: TestClient, heads: dict[str, dict[str, str]]
) -> None:
    op = heads["operator"]
    with smtp_server() as mailbox:
        config = {
            "smtp_host": mailbox.host,
            "smtp_port": mailbox.port,
            "use_tls": False,
            "from_email": "muxly@example.com",
            "to_emails": ["ops@example.com"],
        }
        _create(
            client,
            op,
            "destinations",
            {"id": "mail", "name": "M", "destination_type": "email", "config": config},
        )
        result = _test(client, op, "mail")
        assert result["ok"] is True and "no message was sent" in result["message"], result
        assert mailbox.messages == []


def test_destinations_by_conn_id_alone_are_tested_through_their_hooks(
    client: TestClient, heads: dict[str, dict[str, str]], moto_s3: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An operator configures email, slack and s3 by ``conn_id`` alone; the test route reaches each through
    its provider's hook (SmtpHook logs in, SlackWebhookHook's URL is reached, S3Hook heads the bucket) and
    delivers nothing."""
    from tests.s3_helpers import create_bucket, list_keys

    op = heads["operator"]
    bucket = create_bucket(moto_s3.endpoint_url)
    monkeypatch.setenv(
        "AIRFLOW_CONN_MUXLY_LAKE", moto_s3.connection_json(service_config={"s3": {"bucket_name": bucket}})
    )
    with smtp_server(credentials=("mailer", "pw-9")) as mailbox, http_recorder(slack=True) as slack:
        monkeypatch.setenv(
            "AIRFLOW_CONN_MUXLY_MAIL",
            json.dumps(
                {
                    "conn_type": "smtp",
                    "host": mailbox.host,
                    "port": mailbox.port,
                    "login": "mailer",
                    "password": "pw-9",
                    "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "m@example.com"},
                }
            ),
        )
        monkeypatch.setenv(
            "AIRFLOW_CONN_MUXLY_CHAT",
            json.dumps({"conn_type": "slackwebhook", "password": slack.url + "/services/T/B/secret-token"}),
        )
        rows = [
            ("mail", "email", {"conn_id": "muxly_mail", "to_emails": ["ops@example.com"]}),
            ("chat", "slack", {"conn_id": "muxly_chat"}),
            ("lake", "s3", {"conn_id": "muxly_lake"}),
        ]
        for id_, kind, config in rows:
            _create(
                client,
                op,
                "destinations",
                {"id": id_, "name": id_, "destination_type": kind, "config": config},
            )
        messages = {id_: _test(client, op, id_) for id_, _, _ in rows}
        assert mailbox.messages == [] and mailbox.logins == [("mailer", True)] and slack.arrivals == []
    assert messages["mail"] == {
        "ok": True,
        "message": "destination 'mail' (email): connected to the SMTP server and logged in; no message was sent",
    }
    assert messages["chat"]["ok"] is True and "secret-token" not in messages["chat"]["message"], messages
    assert messages["lake"] == {
        "ok": True,
        "message": f"destination 'lake' (s3): bucket {bucket!r} is reachable; nothing was written",
    }
    assert list_keys(moto_s3.endpoint_url, bucket) == []


def test_destination_test_needs_execute_and_an_existing_row(
    client: TestClient, heads: dict[str, dict[str, str]]
) -> None:
    _create(
        client,
        heads["operator"],
        "destinations",
        {"id": "f", "name": "F", "destination_type": "file", "config": {"output_dir": "o"}},
    )
    viewer = client.post(f"{API}/destinations/f/test", headers=heads["viewer"])
    assert viewer.status_code == 403
    assert viewer.json()["error"]["details"] == {"resource": "destinations", "action": "execute"}
    assert client.post(f"{API}/destinations/nope/test", headers=heads["operator"]).status_code == 404
    assert client.get(f"{API}/destinations/f", headers=heads["viewer"]).status_code == 200
