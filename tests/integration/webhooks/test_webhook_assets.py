"""Webhooks as asset events, through the real api-server app and Airflow's ORM on the session's Airflow database.

A delivery to a ``webhook_triggers`` row with ``asset_uri`` writes an ``asset_event`` (the body and the
delivery's ids in ``extra``) and queues every unpaused DAG scheduled on the asset (``asset_dag_run_queue``),
with the same guarantees as the run endpoint (signatures, replays, 401/404/409/413/422, no secret echoed).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import textwrap
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from tests.airflow_helpers import set_paused, sync_muxly_dags
from tests.db_helpers import insert_row as _insert

pytestmark = pytest.mark.usefixtures("airflow_db")

SECRET = "whsec-asset-9c41"
RUN = uuid.uuid4().hex[:8]
"""The shared asset and DAG ids of this module (Airflow's database is shared by the session's tests)."""
ORDERS = f"x-muxly-webhook://tests/{RUN}/orders"
CONSUMERS = (f"asset_consumer_a_{RUN}", f"asset_consumer_b_{RUN}")
PAUSED = f"asset_consumer_paused_{RUN}"


@pytest.fixture
def fresh() -> dict[str, str]:
    """Asset URIs and DAG ids of one test (tests that need an asset no earlier test declared or fired)."""
    uid = uuid.uuid4().hex[:8]
    return {
        "late": f"x-muxly-webhook://tests/{uid}/late",
        "late_dag": f"asset_consumer_late_{uid}",
        "s3": f"s3://muxly-tests-{uid}/orders",
        "s3_prefix": f"s3://muxly-tests-{uid}/",
        "s3_dag": f"asset_consumer_s3_{uid}",
    }


def _dag_file(folder: Path, name: str, body: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(
        "from airflow.providers.standard.operators.empty import EmptyOperator\n"
        "from airflow.sdk import DAG, Asset\n\n" + textwrap.dedent(body)
    )


def _sync(folder: Path) -> list[str]:
    """Parse ``folder`` like the DAG processor (bundle ``dags-folder``) and write its DAGs to Airflow's database."""
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    bag = DagBag(dag_folder=folder, bundle_path=folder, bundle_name="dags-folder")
    assert not bag.import_errors, bag.import_errors
    sync_bag_to_db(bag, "dags-folder", None)
    return sorted(bag.dags)


def _consumers(uri: str, *dag_ids: str) -> str:
    return "".join(
        f"""
with DAG({dag_id!r}, schedule=[Asset({uri!r})]):
    EmptyOperator(task_id="consume")
"""
        for dag_id in dag_ids
    )


@pytest.fixture
def client(muxly_engine: Engine, tmp_path: Path, fresh: dict[str, str]) -> Iterator[Any]:
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    from muxly_provider.crypto import encrypt_secret

    _insert(
        muxly_engine,
        "connectors",
        id="wa_conn",
        name="WA",
        connector_type="api",
        auth_settings={"auth_type": "none"},
        connection_settings={"base_url": "http://127.0.0.1:9/x"},
    )
    _insert(
        muxly_engine,
        "destinations",
        id="wa_dest",
        name="D",
        destination_type="file",
        config={"output_dir": "wa"},
    )
    _insert(
        muxly_engine,
        "scheduler_jobs",
        id="wa_job",
        name="wa_job",
        job_type="webhook",
        connector_id="wa_conn",
        action_type="export",
        action_params={"destination_ids": ["wa_dest"]},
        max_retries=0,
    )
    secret = encrypt_secret(SECRET)
    rows: dict[str, dict[str, Any]] = {
        "asset": {"endpoint_path": "assets/orders", "asset_uri": ORDERS, "secret_key": secret},
        "both": {
            "endpoint_path": "assets/both",
            "asset_uri": ORDERS,
            "job_id": "wa_job",
            "secret_key": secret,
        },
        "late": {"endpoint_path": "assets/late", "asset_uri": fresh["late"], "secret_key": secret},
        "late_both": {
            "endpoint_path": "assets/late-both",
            "asset_uri": fresh["late"],
            "job_id": "wa_job",
            "secret_key": secret,
        },
        "s3": {"endpoint_path": "assets/s3", "asset_uri": fresh["s3"], "secret_key": secret},
        "off": {"endpoint_path": "assets/off", "asset_uri": ORDERS, "enabled": False},
    }
    for row_id, values in rows.items():
        _insert(muxly_engine, "webhook_triggers", id=f"wa_{row_id}", **values)
    assert "muxly__wa_job" in sync_muxly_dags()
    set_paused("muxly__wa_job", False)
    folder = tmp_path / "asset_dags"
    _dag_file(
        folder,
        "asset_consumers.py",
        _consumers(ORDERS, *CONSUMERS, PAUSED) + _consumers(fresh["s3"], fresh["s3_dag"]),
    )
    _sync(folder)
    for dag_id in (*CONSUMERS, fresh["s3_dag"]):
        set_paused(dag_id, False)
    set_paused(PAUSED, True)
    with TestClient(create_app()) as test_client:
        yield test_client


def _signed(body: bytes, ts: int | None = None, secret: str = SECRET) -> dict[str, str]:
    stamp = str(ts if ts is not None else int(time.time()))
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Muxly-Timestamp": stamp, "X-Muxly-Signature": f"sha256={digest}"}


def _github(body: bytes) -> dict[str, str]:
    digest = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    return {"X-Hub-Signature-256": f"sha256={digest}", "X-GitHub-Delivery": str(uuid.uuid4())}


def _asset_events(uri: str) -> list[dict[str, Any]]:
    from airflow.models.asset import AssetEvent, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        rows = session.execute(
            select(AssetEvent.id, AssetEvent.extra, AssetEvent.source_dag_id)
            .join(AssetModel, AssetModel.id == AssetEvent.asset_id)
            .where(AssetModel.uri == uri)
            .order_by(AssetEvent.id)
        ).all()
        return [{"id": r.id, "extra": r.extra, "source_dag_id": r.source_dag_id} for r in rows]


def _queued(uri: str) -> set[str]:
    """The DAGs queued to run on ``uri`` (Airflow's ``asset_dag_run_queue``)."""
    from airflow.models.asset import AssetDagRunQueue, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return set(
            session.scalars(
                select(AssetDagRunQueue.target_dag_id)
                .join(AssetModel, AssetModel.id == AssetDagRunQueue.asset_id)
                .where(AssetModel.uri == uri)
            )
        )


def _clear_queue(uri: str) -> None:
    from airflow.models.asset import AssetDagRunQueue, AssetModel
    from airflow.utils.session import create_session
    from sqlalchemy import delete, select

    with create_session() as session:
        ids = select(AssetModel.id).where(AssetModel.uri == uri).scalar_subquery()
        session.execute(delete(AssetDagRunQueue).where(AssetDagRunQueue.asset_id.in_(ids)))


def _webhook_events(engine: Engine, trigger_id: str) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM webhook_events WHERE trigger_id = :t"), {"t": trigger_id})
        return [dict(r) for r in rows.mappings()]


def _seen(engine: Engine) -> list[str]:
    with engine.connect() as conn:
        return [str(k) for k in conn.execute(text("SELECT replay_key FROM webhook_deliveries")).scalars()]


def test_delivery_creates_an_asset_event_and_queues_every_unpaused_dag_on_it(
    client: Any, muxly_engine: Engine
) -> None:
    _clear_queue(ORDERS)
    before = len(_asset_events(ORDERS))
    body = json.dumps({"order": 42, "items": [1, 2]}).encode()
    response = client.post("/muxly/webhooks/assets/orders", content=body, headers=_signed(body))
    assert response.status_code == 202, response.text
    answer = response.json()
    assert set(answer) == {"event_id", "asset_event_id", "asset_event_ids"}
    assert answer["asset_event_ids"] == [answer["asset_event_id"]]

    events = _asset_events(ORDERS)
    assert len(events) == before + 1
    event = events[-1]
    assert event["id"] == answer["asset_event_id"]
    assert event["source_dag_id"] is None  # an API-made event, like POST /api/v2/assets/events
    assert event["extra"] == {
        "payload": {"order": 42, "items": [1, 2]},
        "muxly_webhook": {
            "trigger_id": "wa_asset",
            "event_id": answer["event_id"],
            "endpoint_path": "assets/orders",
            "run_id": None,
        },
    }
    # Both unpaused DAGs scheduled on the asset are queued for the scheduler; the paused one is not.
    assert _queued(ORDERS) == set(CONSUMERS)
    # The delivery is kept for sensors and event triggers too.
    [stored] = _webhook_events(muxly_engine, "wa_asset")
    assert stored["id"] == answer["event_id"]
    assert json.loads(stored["payload"]) == {"order": 42, "items": [1, 2]}


def test_replays_and_bad_signatures_create_no_asset_event(client: Any, muxly_engine: Engine) -> None:
    url = "/muxly/webhooks/assets/orders"
    body = b'{"n": 1}'
    headers = _signed(body)
    assert client.post(url, content=body, headers=headers).status_code == 202
    count = len(_asset_events(ORDERS))

    replay = client.post(url, content=body, headers=headers)
    assert replay.status_code == 401
    assert replay.json()["error"]["code"] == "replayed_delivery"
    refused = [
        ({}, "the request is not signed"),
        (_signed(body, secret="wrong"), "the signature does not match"),
        (_signed(body, ts=int(time.time()) - 301), "not within 300 s"),
        ({"X-Muxly-Signature": headers["X-Muxly-Signature"]}, "X-Muxly-Timestamp is missing"),
        ({"X-Hub-Signature-256": "sha256=" + "0" * 64}, "the signature does not match"),
    ]
    for bad, message in refused:
        answer = client.post(url, content=body, headers=bad)
        assert answer.status_code == 401, (bad, answer.text)
        assert message in answer.json()["error"]["message"]
        assert SECRET not in answer.text
    assert len(_asset_events(ORDERS)) == count
    assert len(_webhook_events(muxly_engine, "wa_asset")) == 1


def test_github_signature_creates_one_asset_event_per_body(client: Any) -> None:
    url = "/muxly/webhooks/assets/orders"
    body = b'{"action": "opened", "number": 7}'
    count = len(_asset_events(ORDERS))
    first = client.post(url, content=body, headers=_github(body))
    assert first.status_code == 202, first.text
    # A new X-GitHub-Delivery header does not make the same signed body new.
    replay = client.post(url, content=body, headers=_github(body))
    assert replay.status_code == 401
    events = _asset_events(ORDERS)
    assert len(events) == count + 1
    assert events[-1]["extra"]["payload"] == {"action": "opened", "number": 7}


def test_statuses_with_an_asset_row(
    client: Any, muxly_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    count = len(_asset_events(ORDERS))
    # 404: a disabled row (or no row) is not an endpoint, whatever asset it names.
    off = client.post("/muxly/webhooks/assets/off", content=b"{}")
    assert off.status_code == 404
    # 422: not JSON, or too deep (after the signature check: the body is signed).
    for body in (b"{not json", b"[" * 65 + b"]" * 65):
        bad = client.post("/muxly/webhooks/assets/orders", content=body, headers=_signed(body))
        assert bad.status_code == 422, bad.text
        assert bad.json()["error"]["code"] == "invalid_json"
    # 413: over [muxly] webhook_max_body_bytes, refused before the signature is even read.
    monkeypatch.setenv("AIRFLOW__MUXLY__WEBHOOK_MAX_BODY_BYTES", "64")
    big = json.dumps({"pad": "x" * 100}).encode()
    too_big = client.post("/muxly/webhooks/assets/orders", content=big, headers=_signed(big))
    assert too_big.status_code == 413
    assert len(_asset_events(ORDERS)) == count
    assert _webhook_events(muxly_engine, "wa_asset") == []
    assert _webhook_events(muxly_engine, "wa_off") == []


def test_unknown_asset_is_409_and_the_retry_is_the_delivery(
    client: Any, muxly_engine: Engine, tmp_path: Path, fresh: dict[str, str]
) -> None:
    undeclared = fresh["late"]
    url = "/muxly/webhooks/assets/late"
    body = b'{"late": true}'
    headers = _signed(body)
    first = client.post(url, content=body, headers=headers)
    assert first.status_code == 409, first.text
    error = first.json()["error"]
    assert error["code"] == "asset_not_found"
    assert undeclared in error["message"]
    assert error["details"] == {"asset_uri": undeclared}
    assert SECRET not in first.text
    # Nothing kept: no stored delivery and no replay key, so the sender's retry is not taken for a replay.
    assert _webhook_events(muxly_engine, "wa_late") == []
    assert _seen(muxly_engine) == []

    late_dag = fresh["late_dag"]
    _dag_file(tmp_path / "late", "late.py", _consumers(undeclared, late_dag))
    _sync(tmp_path / "late")
    set_paused(late_dag, False)
    retry = client.post(url, content=body, headers=headers)
    assert retry.status_code == 202, retry.text
    [event] = _asset_events(undeclared)
    assert event["id"] == retry.json()["asset_event_id"]
    assert event["extra"]["payload"] == {"late": True}
    assert _queued(undeclared) == {late_dag}


def test_assets_outside_the_allowed_prefixes_are_refused(
    client: Any, muxly_engine: Engine, monkeypatch: pytest.MonkeyPatch, fresh: dict[str, str]
) -> None:
    s3 = fresh["s3"]
    body = b'{"bucket": "orders"}'
    refused = client.post("/muxly/webhooks/assets/s3", content=body, headers=_signed(body))
    assert refused.status_code == 409, refused.text
    error = refused.json()["error"]
    assert error["code"] == "asset_not_allowed"
    assert s3 in error["message"] and "webhook_asset_uri_prefixes" in error["message"]
    assert _asset_events(s3) == []
    assert _webhook_events(muxly_engine, "wa_s3") == []

    # The deployment may allow other prefixes (or "*": any asset of the Airflow instance).
    monkeypatch.setenv(
        "AIRFLOW__MUXLY__WEBHOOK_ASSET_URI_PREFIXES", f"x-muxly-webhook://, {fresh['s3_prefix']}"
    )
    allowed = client.post("/muxly/webhooks/assets/s3", content=body, headers=_signed(body))
    assert allowed.status_code == 202, allowed.text
    assert [e["id"] for e in _asset_events(s3)] == [allowed.json()["asset_event_id"]]
    assert fresh["s3_dag"] in _queued(s3)
    # An empty setting allows none.
    monkeypatch.setenv("AIRFLOW__MUXLY__WEBHOOK_ASSET_URI_PREFIXES", "")
    again = client.post("/muxly/webhooks/assets/orders", content=body, headers=_signed(body))
    assert again.status_code == 409
    assert "allowed: none" in again.json()["error"]["message"]


def test_a_row_with_a_job_and_an_asset_does_both(client: Any, muxly_engine: Engine) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    body = b'{"order": 9}'
    response = client.post("/muxly/webhooks/assets/both", content=body, headers=_signed(body))
    assert response.status_code == 202, response.text
    answer = response.json()
    assert answer["dag_id"] == "muxly__wa_job"
    with create_session() as session:
        run = session.scalar(select(DagRun).where(DagRun.run_id == answer["run_id"]))
        assert run is not None and run.conf["payload"] == {"order": 9}
    [event] = [e for e in _asset_events(ORDERS) if e["id"] == answer["asset_event_id"]]
    assert event["extra"]["muxly_webhook"] == {
        "trigger_id": "wa_both",
        "event_id": answer["event_id"],
        "endpoint_path": "assets/both",
        "run_id": answer["run_id"],
    }

    # A paused job DAG: 409 and nothing at all (no asset event either), the retry is the delivery.
    count = len(_asset_events(ORDERS))
    set_paused("muxly__wa_job", True)
    paused = client.post("/muxly/webhooks/assets/both", content=b"{}", headers=_signed(b"{}"))
    assert paused.status_code == 409
    assert paused.json()["error"]["code"] == "dag_paused"
    assert len(_asset_events(ORDERS)) == count


def test_an_asset_gone_after_the_check(
    client: Any, muxly_engine: Engine, monkeypatch: pytest.MonkeyPatch, fresh: dict[str, str]
) -> None:
    """The asset disappears between the check and the event (its DAG removed at that moment)."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from muxly_provider.api import webhook_assets

    monkeypatch.setattr(webhook_assets, "require_asset", lambda uri: None)
    body = b'{"gone": 1}'
    headers = _signed(body)
    # Without a job: nothing is kept, the retry is the delivery.
    alone = client.post("/muxly/webhooks/assets/late", content=body, headers=headers)
    assert alone.status_code == 409, alone.text
    assert alone.json()["error"]["code"] == "asset_not_found"
    assert alone.json()["error"]["details"] == {"asset_uri": fresh["late"]}
    assert _webhook_events(muxly_engine, "wa_late") == []
    assert _seen(muxly_engine) == []

    # With a job: the run started and the delivery was stored; both are named and kept (a retry is a replay).
    both = client.post("/muxly/webhooks/assets/late-both", content=body, headers=headers)
    assert both.status_code == 409, both.text
    error = both.json()["error"]
    assert error["code"] == "asset_not_found"
    assert "the job's run started" in error["message"]
    details = error["details"]
    assert details["asset_uri"] == fresh["late"] and details["dag_id"] == "muxly__wa_job"
    with create_session() as session:
        assert session.scalar(select(DagRun).where(DagRun.run_id == details["run_id"])) is not None
    assert [e["id"] for e in _webhook_events(muxly_engine, "wa_late_both")] == [details["event_id"]]
    again = client.post("/muxly/webhooks/assets/late-both", content=body, headers=headers)
    assert again.status_code == 401
    assert _asset_events(fresh["late"]) == []
