"""Signed webhooks on the real api-server app: every status of SPEC §2, replays, concurrency."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import Engine, text

from tests.airflow_helpers import set_paused, sync_muxly_dags
from tests.db_helpers import insert_row as _insert

pytestmark = pytest.mark.usefixtures("airflow_db")

SECRET = "whsec-test-6f2b"


@pytest.fixture
def client(muxly_engine: Engine) -> Iterator[Any]:
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    from muxly_provider.crypto import encrypt_secret

    _insert(
        muxly_engine,
        "connectors",
        id="wh_conn",
        name="WH",
        connector_type="api",
        auth_settings={"auth_type": "none"},
        connection_settings={"base_url": "http://127.0.0.1:9/x"},
    )
    for job_id in ("wh_job", "wh_paused"):
        _insert(
            muxly_engine,
            "scheduler_jobs",
            id=job_id,
            name=job_id,
            job_type="webhook",
            connector_id="wh_conn",
            action_type="export",
            action_params={"destination_ids": ["wh_dest"]},
            max_retries=0,
        )
    _insert(
        muxly_engine,
        "destinations",
        id="wh_dest",
        name="D",
        destination_type="file",
        config={"output_dir": "wh"},
    )
    _insert(
        muxly_engine,
        "webhook_triggers",
        id="t1",
        job_id="wh_job",
        endpoint_path="orders/created",
        secret_key=encrypt_secret(SECRET),
    )
    _insert(muxly_engine, "webhook_triggers", id="t2", job_id="wh_job", endpoint_path="open")
    _insert(muxly_engine, "webhook_triggers", id="t3", job_id="wh_job", endpoint_path="off", enabled=False)
    _insert(muxly_engine, "webhook_triggers", id="t4", job_id="wh_paused", endpoint_path="paused")
    dag_ids = sync_muxly_dags()
    assert "muxly__wh_job" in dag_ids
    set_paused("muxly__wh_job", False)
    set_paused("muxly__wh_paused", True)
    with TestClient(create_app()) as test_client:
        yield test_client


def _signed(body: bytes, ts: int | None = None, secret: str = SECRET) -> dict[str, str]:
    stamp = str(ts if ts is not None else int(time.time()))
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {
        "X-Muxly-Timestamp": stamp,
        "X-Muxly-Signature": f"sha256={digest}",
        "Content-Type": "application/json",
    }


def _runs(dag_id: str) -> dict[str, Any]:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return {r.run_id: r.conf for r in session.scalars(select(DagRun).where(DagRun.dag_id == dag_id))}


def _executions(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text("SELECT * FROM job_executions")).mappings()]


def test_signed_delivery_starts_a_run(client: Any, muxly_engine: Engine) -> None:
    body = json.dumps({"order": 42}).encode()
    response = client.post("/muxly/webhooks/orders/created", content=body, headers=_signed(body))
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["dag_id"] == "muxly__wh_job"
    runs = _runs("muxly__wh_job")
    assert runs[answer["run_id"]]["payload"] == {"order": 42}
    assert runs[answer["run_id"]]["muxly"]["triggered_by"] == "webhook"
    [execution] = [e for e in _executions(muxly_engine) if e["id"] == answer["execution_id"]]
    assert execution["status"] == "queued"
    assert execution["triggered_by"] == "webhook"

    # The same body signed at another time is a new delivery; the exact same delivery again is a replay.
    headers = _signed(body, ts=int(time.time()) - 5)
    assert client.post("/muxly/webhooks/orders/created", content=body, headers=headers).status_code == 202
    before = len(_runs("muxly__wh_job"))
    again = client.post("/muxly/webhooks/orders/created", content=body, headers=headers)
    assert again.status_code == 401
    assert again.json()["error"]["code"] == "replayed_delivery"
    assert len(_runs("muxly__wh_job")) == before


def test_github_signature_is_accepted(client: Any) -> None:
    body = b'{"action": "opened"}'
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    headers = {"X-Hub-Signature-256": f"sha256={digest}", "X-GitHub-Delivery": str(uuid.uuid4())}
    assert client.post("/muxly/webhooks/orders/created", content=body, headers=headers).status_code == 202
    assert client.post("/muxly/webhooks/orders/created", content=body, headers=headers).status_code == 401


@pytest.mark.parametrize(
    ("path", "make_headers", "body", "status"),
    [
        ("orders/created", lambda b: {}, b"{}", 401),
        ("orders/created", lambda b: _signed(b, secret="forged"), b"{}", 401),
        ("orders/created", lambda b: _signed(b, ts=int(time.time()) - 301), b"{}", 401),
        ("orders/created", lambda b: {**_signed(b), "X-Muxly-Timestamp": "soon"}, b"{}", 401),
        ("orders/created", lambda b: _signed(b), b"{not json", 422),
        ("open", lambda b: {}, b"not json", 422),
        ("nowhere", lambda b: _signed(b), b"{}", 404),
        ("off", lambda b: {}, b"{}", 404),
        ("paused", lambda b: {}, b"{}", 409),
        ("open", lambda b: {}, b"[" + b"1," * 600_000 + b"1]", 413),
    ],
)
def test_rejections_create_nothing(
    client: Any, muxly_engine: Engine, path: str, make_headers: Any, body: bytes, status: int
) -> None:
    before = len(_runs("muxly__wh_job")) + len(_runs("muxly__wh_paused"))
    response = client.post(f"/muxly/webhooks/{path}", content=body, headers=make_headers(body))
    assert response.status_code == status, response.text
    assert set(response.json()["error"]) == {"code", "message", "details"}
    assert SECRET not in response.text
    assert len(_runs("muxly__wh_job")) + len(_runs("muxly__wh_paused")) == before
    assert _executions(muxly_engine) == []


def test_concurrent_deliveries_each_start_one_run(client: Any, muxly_engine: Engine) -> None:
    bodies = [json.dumps({"n": i}).encode() for i in range(50)]
    with ThreadPoolExecutor(max_workers=10) as pool:
        responses = list(
            pool.map(
                lambda b: client.post("/muxly/webhooks/orders/created", content=b, headers=_signed(b)), bodies
            )
        )
    assert [r.status_code for r in responses] == [202] * 50
    run_ids = {r.json()["run_id"] for r in responses}
    assert len(run_ids) == 50
    runs = _runs("muxly__wh_job")
    assert run_ids <= set(runs)
    assert sorted(runs[r]["payload"]["n"] for r in run_ids) == list(range(50))
    executions = [e for e in _executions(muxly_engine) if e["job_id"] == "wh_job"]
    assert len(executions) == 50
    assert {e["id"] for e in executions} == {r.json()["execution_id"] for r in responses}
