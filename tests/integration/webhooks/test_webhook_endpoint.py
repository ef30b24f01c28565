"""Signed webhooks on the real api-server app: every status of SPEC §2, replays, concurrency."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
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


def _github(body: bytes) -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "X-GitHub-Delivery": str(uuid.uuid4())}


def _age_deliveries(engine: Engine, seconds: int) -> None:
    """Move every seen delivery ``seconds`` into the past (as if that much time had gone by)."""
    from sqlalchemy import select, update

    from muxly_provider.db.models import WebhookDelivery

    table = WebhookDelivery.__table__
    with engine.begin() as conn:  # computed here: SQLite cannot subtract an interval from a timestamp
        for key, received in conn.execute(select(table.c.replay_key, table.c.received_at)).all():
            moved = received - timedelta(seconds=seconds)
            conn.execute(update(table).where(table.c.replay_key == key).values(received_at=moved))


def _events(engine: Engine) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM webhook_events")).mappings()
        return {str(r["id"]): dict(r) for r in rows}


def _seen(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return sorted(
            str(k) for k in conn.execute(text("SELECT replay_key FROM webhook_deliveries")).scalars()
        )


def test_github_signature_is_accepted_once_whatever_the_delivery_header_says(
    client: Any, muxly_engine: Engine
) -> None:
    body = b'{"action": "opened"}'
    url = "/muxly/webhooks/orders/created"
    assert client.post(url, content=body, headers=_github(body)).status_code == 202
    before = len(_runs("muxly__wh_job"))
    for headers in (_github(body), {k: v for k, v in _github(body).items() if k != "X-GitHub-Delivery"}):
        replay = client.post(url, content=body, headers=headers)  # a new X-GitHub-Delivery (or none)
        assert replay.status_code == 401, replay.text
        assert replay.json()["error"]["code"] == "replayed_delivery"
    assert len(_runs("muxly__wh_job")) == before
    # The key is a digest of the signed body: neither the body nor the delivery id is stored.
    assert _seen(muxly_engine) == ["github:" + hashlib.sha256(body).hexdigest()]
    # Within the window (default 24 h) the copy stays refused; after it, the same bytes are a new delivery.
    _age_deliveries(muxly_engine, 23 * 3600)
    assert client.post(url, content=body, headers=_github(body)).status_code == 401
    _age_deliveries(muxly_engine, 3600)
    assert client.post(url, content=body, headers=_github(body)).status_code == 202
    assert len(_runs("muxly__wh_job")) == before + 1


def test_replay_window_is_a_setting_and_old_keys_are_pruned(
    client: Any, muxly_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from muxly_provider.api import webhook_replays

    monkeypatch.setenv("AIRFLOW__MUXLY__WEBHOOK_REPLAY_WINDOW_SECONDS", "900")
    url = "/muxly/webhooks/orders/created"
    first, second = b'{"n": 1}', b'{"n": 2}'
    stamp = int(time.time())
    assert client.post(url, content=first, headers=_signed(first, ts=stamp)).status_code == 202
    _age_deliveries(muxly_engine, 901)
    webhook_replays.reset_prune_clock()
    assert client.post(url, content=second, headers=_github(second)).status_code == 202
    # The expired Muxly key was pruned; the same signed delivery is accepted again (its timestamp is fresh).
    assert _seen(muxly_engine) == ["github:" + hashlib.sha256(second).hexdigest()]
    assert client.post(url, content=first, headers=_signed(first, ts=stamp)).status_code == 202
    assert client.post(url, content=first, headers=_signed(first, ts=stamp)).status_code == 401


def test_a_delivery_that_started_nothing_can_be_retried(client: Any, muxly_engine: Engine) -> None:
    from muxly_provider.crypto import encrypt_secret

    _insert(
        muxly_engine,
        "webhook_triggers",
        id="t5",
        job_id="wh_paused",
        endpoint_path="paused-signed",
        secret_key=encrypt_secret(SECRET),
    )
    body = b'{"retry": true}'
    headers = _github(body)
    assert client.post("/muxly/webhooks/paused-signed", content=body, headers=headers).status_code == 409
    assert _seen(muxly_engine) == []
    assert _events(muxly_engine) == {}  # the sender's retry is the delivery: nothing kept for sensors
    set_paused("muxly__wh_paused", False)
    try:
        assert client.post("/muxly/webhooks/paused-signed", content=body, headers=headers).status_code == 202
        assert client.post("/muxly/webhooks/paused-signed", content=body, headers=headers).status_code == 401
    finally:
        set_paused("muxly__wh_paused", True)


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
    assert _events(muxly_engine) == {}  # a refused delivery never reaches a sensor


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
    # Each delivery is also kept for sensors, with the run it started.
    events = _events(muxly_engine)
    assert set(events) == {r.json()["event_id"] for r in responses}
    assert {e["run_id"] for e in events.values()} == run_ids
