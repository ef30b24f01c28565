"""The Airflow UI's jobs pages through the real app, SQLite and PostgreSQL (issue 14): ``GET /overview``,
``GET /jobs`` with the latest execution and next run (``q``, ``last_status``, ``sort=last_run_at``) and
``GET /jobs/{id}/flow`` (secrets never shown)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import bearer, login, make_user
from fastapi.testclient import TestClient
from sqlalchemy import Engine

from tests.db_helpers import insert_row

API = "/api/v1"
NOW = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
pytestmark = pytest.mark.usefixtures("files_root")


@pytest.fixture
def client(api_db: str) -> Iterator[TestClient]:
    from muxly_provider.api.app import create_app
    from muxly_provider.auth.throttle import reset_throttle

    reset_throttle()
    with TestClient(create_app()) as test_client:
        yield test_client


@pytest.fixture
def heads(client: TestClient) -> dict[str, dict[str, str]]:
    """Authorization headers of an admin, an operator and a viewer."""
    for name in ("admin", "operator", "viewer"):
        make_user(f"ui-{name}", [name])
    return {
        name: bearer(login(client, f"ui-{name}")["access_token"]) for name in ("admin", "operator", "viewer")
    }


def _run(engine: Engine, run_id: str, job_id: str, hours_ago: float, status: str, **result: Any) -> None:
    start = NOW - timedelta(hours=hours_ago)
    insert_row(
        engine,
        "job_executions",
        id=run_id,
        job_id=job_id,
        start_time=start,
        end_time=start + timedelta(seconds=30),
        status=status,
        result=json.dumps(result),
    )


@pytest.fixture
def seeded(muxly_engine: Engine) -> Engine:
    """Five jobs on one connector, some runs (``j-cron`` failed last, ``j-off`` is disabled and failed)."""
    insert_row(
        muxly_engine,
        "connectors",
        id="c1",
        name="Orders API",
        connector_type="api",
        auth_settings={"auth_type": "none"},
        connection_settings={"base_url": "http://127.0.0.1:9/x"},
    )
    jobs: dict[str, dict[str, Any]] = {
        "j-cron": {"name": "Hourly orders", "job_type": "cron", "schedule": "@hourly"},
        "j-paris": {
            "name": "Nightly 100% report",
            "job_type": "cron",
            "schedule": "0 3 * * *",
            "action_params": {"timezone": "Europe/Paris"},
        },
        "j-off": {"name": "Old feed", "job_type": "cron", "schedule": "@daily", "enabled": False},
        "j-manual": {"name": "Manual backfill", "job_type": "manual"},
        "j-never": {"name": "Fresh one", "job_type": "cron", "schedule": "*/15 * * * *"},
    }
    for job_id, columns in jobs.items():
        insert_row(
            muxly_engine,
            "scheduler_jobs",
            id=job_id,
            connector_id="c1",
            action_type="sync",
            **{"action_params": {}, **columns},
        )
    _run(muxly_engine, "r1", "j-cron", 30, "success", records_in=5, delivered=5, dead_lettered=0)
    _run(
        muxly_engine,
        "r2",
        "j-cron",
        1,
        "failed",
        records_in=10,
        delivered=7,
        dead_lettered=3,
        error="delivery failed for destination(s) d1",
    )
    _run(muxly_engine, "r3", "j-manual", 2, "success", records_in=4, delivered=4, dead_lettered=0)
    _run(muxly_engine, "r4", "j-paris", 3, "running")
    _run(muxly_engine, "r5", "j-off", 5, "failed", error="boom")
    return muxly_engine


def _page(client: TestClient, headers: dict[str, str], query: str = "") -> dict[str, Any]:
    answer = client.get(f"{API}/jobs?{query}", headers=headers)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def _ids(page: dict[str, Any]) -> list[str]:
    return [item["id"] for item in page["items"]]


def test_jobs_carry_their_latest_execution_and_next_run(
    client: TestClient, heads: dict[str, dict[str, str]], seeded: Engine
) -> None:
    page = _page(client, heads["viewer"])
    assert page["total"] == 5
    items = {item["id"]: item for item in page["items"]}
    assert items["j-cron"]["last_execution"] == {
        "id": "r2",
        "status": "failed",
        "started_at": (NOW - timedelta(hours=1)).replace(tzinfo=UTC).isoformat().replace("+00:00", "Z"),
        "finished_at": (NOW - timedelta(hours=1, seconds=-30))
        .replace(tzinfo=UTC)
        .isoformat()
        .replace("+00:00", "Z"),
        "records_extracted": 10,
        "records_delivered": 7,
        "records_dead_lettered": 3,
        "error": "delivery failed for destination(s) d1",
    }
    assert items["j-never"]["last_execution"] is None
    assert items["j-paris"]["last_execution"]["status"] == "running"
    assert items["j-paris"]["last_execution"]["finished_at"] is not None
    now = datetime.now(UTC)
    hourly = datetime.fromisoformat(items["j-cron"]["next_run_at"])
    assert now < hourly <= now + timedelta(hours=1) and hourly.minute == 0 and hourly.second == 0
    quarter = datetime.fromisoformat(items["j-never"]["next_run_at"])
    assert now < quarter <= now + timedelta(minutes=15) and quarter.minute % 15 == 0
    paris = datetime.fromisoformat(items["j-paris"]["next_run_at"])
    from zoneinfo import ZoneInfo

    local = paris.astimezone(ZoneInfo("Europe/Paris"))
    assert (local.hour, local.minute) == (3, 0) and now < paris <= now + timedelta(days=1)
    assert items["j-off"]["next_run_at"] is None  # disabled: no DAG, no next run
    assert items["j-manual"]["next_run_at"] is None  # not scheduled
    assert items["j-cron"]["dag_id"] == "muxly__j-cron"


def test_jobs_filter_by_text_and_last_status(
    client: TestClient, heads: dict[str, dict[str, str]], seeded: Engine
) -> None:
    viewer = heads["viewer"]
    assert _ids(_page(client, viewer, "q=PARIS")) == ["j-paris"]  # id, case-insensitive
    assert _ids(_page(client, viewer, "q=orders")) == ["j-cron"]  # name
    assert _ids(_page(client, viewer, "q=100%25")) == ["j-paris"]  # '%' is a character, not a wildcard
    assert _ids(_page(client, viewer, "q=_")) == []  # and so is '_'
    assert _ids(_page(client, viewer, "last_status=failed")) == ["j-cron", "j-off"]
    assert _ids(_page(client, viewer, "last_status=failed&enabled=true")) == ["j-cron"]
    assert _ids(_page(client, viewer, "last_status=never")) == ["j-never"]
    assert _ids(_page(client, viewer, "last_status=success&q=j-")) == ["j-manual"]
    bad = client.get(f"{API}/jobs?last_status=exploded", headers=viewer)
    assert bad.status_code == 422 and bad.json()["error"]["details"]["field"] == "last_status"


def test_jobs_sort_by_last_run_never_run_last_and_page(
    client: TestClient, heads: dict[str, dict[str, str]], seeded: Engine
) -> None:
    viewer = heads["viewer"]
    newest = ["j-cron", "j-manual", "j-paris", "j-off", "j-never"]
    assert _ids(_page(client, viewer, "sort=last_run_at&order=desc")) == newest
    assert _ids(_page(client, viewer, "sort=last_run_at&order=asc")) == [*reversed(newest[:4]), "j-never"]
    first = _page(client, viewer, "sort=last_run_at&order=desc&limit=2")
    second = _page(client, viewer, "sort=last_run_at&order=desc&limit=2&offset=2")
    assert (_ids(first), _ids(second), first["total"], second["total"]) == (
        newest[:2],
        newest[2:4],
        5,
        5,
    )
    past = _page(client, viewer, "limit=2&offset=10")
    assert past["items"] == [] and past["total"] == 5
    assert _ids(_page(client, viewer, "sort=name")) == ["j-never", "j-cron", "j-manual", "j-paris", "j-off"]


def test_overview_counts_jobs_runs_records_and_failing_jobs(
    client: TestClient, heads: dict[str, dict[str, str]], seeded: Engine
) -> None:
    insert_row(
        seeded,
        "job_executions",
        id="r-odd",
        job_id="j-manual",
        start_time=NOW - timedelta(hours=20),
        status="success",
        result="not json",
    )
    answer = client.get(f"{API}/overview", headers=heads["viewer"])
    assert answer.status_code == 200, answer.text
    overview = answer.json()
    assert overview["jobs"] == {"total": 5, "enabled": 4, "disabled": 1, "failing": 1}
    assert overview["runs_24h"] == {"queued": 0, "running": 1, "success": 2, "failed": 2}
    assert overview["records_24h"] == {"extracted": 14, "delivered": 11, "dead_lettered": 3}
    assert [(j["id"], j["dag_id"], j["status"], j["error"]) for j in overview["failing_jobs"]] == [
        ("j-cron", "muxly__j-cron", "failed", "delivery failed for destination(s) d1")
    ]
    assert overview["failing_jobs"][0]["finished_at"].endswith("Z")


def test_overview_of_an_empty_muxly(client: TestClient, heads: dict[str, dict[str, str]]) -> None:
    overview = client.get(f"{API}/overview", headers=heads["viewer"]).json()
    assert overview == {
        "jobs": {"total": 0, "enabled": 0, "disabled": 0, "failing": 0},
        "runs_24h": {"queued": 0, "running": 0, "success": 0, "failed": 0},
        "records_24h": {"extracted": 0, "delivered": 0, "dead_lettered": 0},
        "failing_jobs": [],
    }


SLACK_SECRET = "https://hooks.example/services/T0/B0/s3cr3t-flow-token"


def test_flow_shows_connector_routes_rules_destinations_without_secrets(
    client: TestClient, heads: dict[str, dict[str, str]]
) -> None:
    admin = heads["admin"]

    def post(path: str, body: dict[str, Any]) -> None:
        answer = client.post(f"{API}/{path}", headers=admin, json=body)
        assert answer.status_code == 201, answer.text

    post(
        "connectors",
        {"id": "c1", "name": "C", "connector_type": "api", "connection_settings": {"base_url": "http://x"}},
    )
    post(
        "destinations",
        {"id": "d-file", "name": "F", "destination_type": "file", "config": {"output_dir": "out"}},
    )
    post(
        "destinations",
        {"id": "d-slack", "name": "S", "destination_type": "slack", "config": {"webhook_url": SLACK_SECRET}},
    )
    post(
        "rules",
        {
            "id": "r-big",
            "name": "Big",
            "priority": 1,
            "condition": "total > 10",
            "transformations": [
                {"transformation_type": "set_field", "config": {"field": "big", "value": True}}
            ],
            "destination_ids": ["d-slack", "d-file"],
        },
    )
    post("rules", {"id": "r-all", "name": "All", "destination_ids": ["d-file"]})
    post(
        "routes",
        {
            "id": "rt1",
            "name": "Main",
            "connector_id": "c1",
            "rules": [{"rule_id": "r-big"}, {"rule_id": "r-all"}],
        },
    )
    post("routes", {"id": "rt2", "name": "Other", "connector_id": "c1", "enabled": False})
    job = {"name": "J", "job_type": "manual", "connector_id": "c1"}
    post("jobs", {**job, "id": "j-sync", "action_type": "sync"})
    post("jobs", {**job, "id": "j-pipe", "action_type": "pipeline", "action_params": {"route_id": "rt1"}})
    post(
        "jobs",
        {**job, "id": "j-export", "action_type": "export", "action_params": {"destination_ids": ["d-file"]}},
    )

    answer = client.get(f"{API}/jobs/j-sync/flow", headers=heads["viewer"])
    assert answer.status_code == 200, answer.text
    assert SLACK_SECRET not in answer.text and "s3cr3t" not in answer.text
    flow = answer.json()
    assert flow["job"]["id"] == "j-sync" and flow["job"]["dag_id"] == "muxly__j-sync"
    assert flow["connector"]["id"] == "c1"
    assert [(r["route"]["id"], r["route"]["enabled"]) for r in flow["routes"]] == [
        ("rt1", True),
        ("rt2", False),
    ]
    big, every = flow["routes"][0]["rules"]
    assert big["rule"]["id"] == "r-big" and big["rule"]["condition"] == "total > 10"
    assert [t["transformation_type"] for t in big["rule"]["transformations"]] == ["set_field"]
    assert {d["id"]: d["config"].get("webhook_url") for d in big["destinations"]} == {
        "d-file": None,
        "d-slack": "***",
    }
    assert every["rule"]["id"] == "r-all" and [d["id"] for d in every["destinations"]] == ["d-file"]
    assert flow["export_destinations"] == []

    pipe = client.get(f"{API}/jobs/j-pipe/flow", headers=heads["viewer"]).json()
    assert [r["route"]["id"] for r in pipe["routes"]] == ["rt1"]
    export = client.get(f"{API}/jobs/j-export/flow", headers=heads["viewer"]).json()
    assert export["routes"] == [] and [d["id"] for d in export["export_destinations"]] == ["d-file"]
    missing = client.get(f"{API}/jobs/nope/flow", headers=heads["viewer"])
    assert missing.status_code == 404


@pytest.mark.parametrize("path", ["/overview", "/jobs", "/jobs/j-cron/flow"])
def test_reads_need_a_role_that_reads(
    client: TestClient, heads: dict[str, dict[str, str]], seeded: Engine, path: str
) -> None:
    assert client.get(f"{API}{path}", headers=heads["viewer"]).status_code == 200
    make_user("ui-nobody", [])
    nobody = bearer(login(client, "ui-nobody")["access_token"])
    answer = client.get(f"{API}{path}", headers=nobody)
    assert answer.status_code == 403 and answer.json()["error"]["code"] == "forbidden"
    assert client.get(f"{API}{path}").status_code == 401
