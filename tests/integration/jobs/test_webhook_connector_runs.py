"""Jobs with a ``webhook`` connector through real runs (``dag.test()``): the records of the run's payload (an
object, a list, a list at a nested path) are routed like any connector's (a condition, two destinations, staged
shares), the counts in ``job_executions`` match, bad shapes and an oversized payload fail the extract with their
message, and a signed delivery to the real webhook endpoint ends as records in a file destination."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from tests.db_helpers import insert_row as _insert

pytestmark = pytest.mark.usefixtures("airflow_db")

SECRET = "whsec-push-91c3"


@pytest.fixture(autouse=True)
def _files_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__MUXLY__FILES_ROOT", str(tmp_path))


def _seed(
    engine: Engine,
    tmp_path: Path,
    job_id: str,
    *,
    records_path: str | None = None,
    data_spec: dict[str, Any] | None = None,
) -> None:
    """Webhook connector ``<job>_push`` -> route with ``amount > 100`` -> ``<job>_big`` and everything ->
    ``<job>_all`` (both JSONL file destinations)."""
    settings = {"records_path": records_path} if records_path else {}
    _insert(
        engine,
        "connectors",
        id=f"{job_id}_push",
        name="Pushed orders",
        connector_type="webhook",
        auth_settings={"auth_type": "none"},
        connection_settings=settings,
    )
    for name in ("big", "all"):
        _insert(
            engine,
            "destinations",
            id=f"{job_id}_{name}",
            name=name,
            destination_type="file",
            config={"output_dir": str(tmp_path / job_id / name), "file_format": "jsonl", "file_prefix": name},
        )
    _insert(engine, "routes", id=f"{job_id}_route", name="Route", connector_id=f"{job_id}_push")
    for order, (rule, condition) in enumerate([("big", "amount > 100"), ("all", None)]):
        rule_id = f"{job_id}_{rule}_rule"
        _insert(
            engine,
            "routing_rules",
            id=rule_id,
            name=rule,
            priority=order,
            condition=json.dumps(condition) if condition else None,
        )
        _insert(engine, "route_rules", route_id=f"{job_id}_route", rule_id=rule_id, sequence_order=order)
        _insert(engine, "rule_destinations", rule_id=rule_id, destination_id=f"{job_id}_{rule}")
    _insert(
        engine,
        "scheduler_jobs",
        id=job_id,
        name=job_id,
        job_type="webhook",
        connector_id=f"{job_id}_push",
        action_type="sync",
        action_params={"data_spec": data_spec} if data_spec else {},
        max_retries=0,
    )


def _dag(job_id: str) -> Any:
    from muxly_provider.dag_factory.register import register_dags

    namespace: dict[str, Any] = {}
    register_dags(namespace)
    return namespace[f"muxly__{job_id}"]


def _written(directory: Path) -> list[dict[str, Any]]:
    if not directory.exists():
        return []
    return [json.loads(line) for f in sorted(directory.iterdir()) for line in f.read_text().splitlines()]


def _execution(engine: Engine, job_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        [(status, result)] = conn.execute(
            text("SELECT status, result FROM job_executions WHERE job_id = :j"), {"j": job_id}
        ).all()
    return {"status": status, **json.loads(result)}


def _states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


ORDERS = [{"id": 1, "amount": 50}, {"id": 2, "amount": 500}, {"id": 3, "amount": 150}]


@pytest.mark.parametrize(
    ("shape", "records_path", "data_spec", "payload", "big", "everything"),
    [
        ("object", None, None, {"id": 7, "amount": 700}, [7], [7]),
        ("list", None, None, ORDERS, [2, 3], [1, 2, 3]),
        ("nested", "batch.orders", None, {"batch": {"orders": ORDERS, "sent_by": "shop"}}, [2, 3], [1, 2, 3]),
        # The job's data_spec.records_path wins over the connector's.
        ("override", "batch.orders", {"records_path": "$.other[0]"}, {"other": [ORDERS[1]]}, [2], [2]),
    ],
)
@pytest.mark.parametrize(
    "db_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_payload_records_are_routed_to_two_destinations_with_a_condition(
    muxly_engine: Engine,
    tmp_path: Path,
    shape: str,
    records_path: str | None,
    data_spec: dict[str, Any] | None,
    payload: Any,
    big: list[int],
    everything: list[int],
) -> None:
    job_id = f"push_{shape}"
    _seed(muxly_engine, tmp_path, job_id, records_path=records_path, data_spec=data_spec)
    dag = _dag(job_id)
    assert sorted(dag.task_ids) == ["cleanup", f"deliver__{job_id}_all", f"deliver__{job_id}_big", "extract"]
    dag_run = dag.test(run_conf={"payload": payload})
    assert dag_run.state == "success", _states(dag_run)
    assert [r["id"] for r in _written(tmp_path / job_id / "big")] == big
    assert [r["id"] for r in _written(tmp_path / job_id / "all")] == everything
    result = _execution(muxly_engine, job_id)
    assert result["status"] == "success"
    assert result["records_in"] == len(everything)
    assert result["routed"] == result["delivered"] == len(big) + len(everything)
    assert result["destinations"][f"{job_id}_big"]["delivered"] == len(big)
    assert result["destinations"][f"{job_id}_all"]["delivered"] == len(everything)
    assert result["lost"] == 0 and result["dead_lettered"] == 0


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_run_without_payload_routes_nothing(muxly_engine: Engine, tmp_path: Path) -> None:
    _seed(muxly_engine, tmp_path, "push_none")
    dag_run = _dag("push_none").test()
    assert dag_run.state == "success"
    result = _execution(muxly_engine, "push_none")
    assert (result["records_in"], result["routed"], result["delivered"]) == (0, 0, 0)


@pytest.mark.parametrize(
    ("payload", "records_path", "message"),
    [
        (
            "hello",
            None,
            "connector 'push_bad_push': the whole body (no records_path) of the payload from conf['payload'] "
            "is a string ('hello'): expected an object (one record) or a list of objects",
        ),
        (
            [{"id": 1}, 2],
            None,
            "connector 'push_bad_push': item 1 of the list at the whole body (no records_path) of the payload "
            "from conf['payload'] is a number (2): every item must be an object (one record each)",
        ),
        (
            {"batch": {}},
            "batch.orders",
            "connector 'push_bad_push': records_path 'batch.orders' does not resolve in the payload from "
            "conf['payload'] (the body is an object): expected an object or a list of objects there",
        ),
    ],
)
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_bad_shapes_fail_the_extract_with_their_message(
    muxly_engine: Engine, tmp_path: Path, payload: Any, records_path: str | None, message: str
) -> None:
    _seed(muxly_engine, tmp_path, "push_bad", records_path=records_path)
    dag_run = _dag("push_bad").test(run_conf={"payload": payload})
    assert dag_run.state == "failed"
    states = _states(dag_run)
    assert states["extract"] == "failed"
    assert states["deliver__push_bad_all"] == "upstream_failed"
    result = _execution(muxly_engine, "push_bad")
    assert result["status"] == "failed"
    assert result["error"] == message
    assert _written(tmp_path / "push_bad" / "all") == []


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_conf_payload_over_webhook_max_body_bytes_fails_the_extract(
    muxly_engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow's REST trigger and the CLI do not pass the endpoint's limit: the extract checks it."""
    monkeypatch.setenv("AIRFLOW__MUXLY__WEBHOOK_MAX_BODY_BYTES", "256")
    _seed(muxly_engine, tmp_path, "push_big")
    payload = [{"id": i, "amount": 1000 + i} for i in range(20)]  # 471 bytes as compact JSON
    dag_run = _dag("push_big").test(run_conf={"payload": payload})
    assert dag_run.state == "failed"
    result = _execution(muxly_engine, "push_big")
    assert result["error"] == (
        "connector 'push_big_push': the payload from conf['payload'] is 471 bytes as JSON, over [muxly] "
        "webhook_max_body_bytes (256 bytes)"
    )
    assert _written(tmp_path / "push_big" / "all") == []


@pytest.fixture
def client(muxly_engine: Engine, tmp_path: Path) -> Iterator[Any]:
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    from muxly_provider.crypto import encrypt_secret
    from tests.airflow_helpers import set_paused, sync_muxly_dags

    _seed(muxly_engine, tmp_path, "push_hook", records_path="$.data['orders']")
    _insert(
        muxly_engine,
        "webhook_triggers",
        id="push_trigger",
        job_id="push_hook",
        endpoint_path="shop/orders",
        secret_key=encrypt_secret(SECRET),
    )
    assert "muxly__push_hook" in sync_muxly_dags()
    set_paused("muxly__push_hook", False)
    with TestClient(create_app()) as test_client:
        yield test_client


def _conf_of(dag_id: str, run_id: str) -> Any:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        run = session.scalars(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id)).one()
        return dict(run.conf or {})


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_signed_delivery_ends_as_records_in_a_file_destination(
    client: Any, muxly_engine: Engine, tmp_path: Path
) -> None:
    """The endpoint stores the body in the run's conf; the run's extract routes the records found there."""
    body = json.dumps({"data": {"orders": ORDERS}, "event": "orders.created"}).encode()
    stamp = str(int(time.time()))
    signature = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    response = client.post(
        "/muxly/webhooks/shop/orders",
        content=body,
        headers={
            "X-Muxly-Timestamp": stamp,
            "X-Muxly-Signature": f"sha256={signature}",
            "Content-Type": "application/json",
        },
    )
    assert response.status_code == 202, response.text
    answer = response.json()
    conf = _conf_of(answer["dag_id"], answer["run_id"])
    assert conf["payload"] == json.loads(body)

    # The run the delivery created, executed with the conf the endpoint stored.
    dag_run = _dag("push_hook").test(run_conf=conf)
    assert dag_run.state == "success", _states(dag_run)
    assert _written(tmp_path / "push_hook" / "all") == ORDERS
    assert [r["id"] for r in _written(tmp_path / "push_hook" / "big")] == [2, 3]
    with muxly_engine.connect() as conn:
        rows = conn.execute(
            text("SELECT status, triggered_by, result FROM job_executions WHERE job_id = 'push_hook'")
        ).all()
    finished = [json.loads(r.result) for r in rows if r.status == "success"]
    assert len(finished) == 1 and finished[0]["records_in"] == 3 and finished[0]["delivered"] == 5


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_the_body_a_wait_for_webhook_task_returns_wins_over_conf(
    muxly_engine: Engine, tmp_path: Path
) -> None:
    """A DAG with a ``wait_for_webhook`` task before ``extract`` (as ``action_params.wait_for_webhook`` builds
    it): the body that task returns is the run's records, not the body that started the run."""
    from airflow.sdk import task

    _seed(muxly_engine, tmp_path, "push_wait", records_path="batch.orders")
    dag = _dag("push_wait")
    with dag:

        @task(task_id="wait_for_webhook")
        def waited() -> dict[str, Any]:
            return {"batch": {"orders": ORDERS}}

        waited() >> dag.get_task("extract")
    started_by = {"batch": {"orders": [{"id": 99, "amount": 9999}]}}
    dag_run = dag.test(run_conf={"payload": started_by})
    assert dag_run.state == "success", _states(dag_run)
    assert _states(dag_run)["wait_for_webhook"] == "success"
    assert [r["id"] for r in _written(tmp_path / "push_wait" / "all")] == [1, 2, 3]
    assert [r["id"] for r in _written(tmp_path / "push_wait" / "big")] == [2, 3]


@pytest.mark.parametrize(
    "db_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_a_job_that_waits_for_a_delivery_routes_the_matching_one(
    muxly_engine: Engine, tmp_path: Path
) -> None:
    """``action_params.wait_for_webhook`` with a condition, deliveries through the real endpoint of a sensor-only
    trigger (no job): the run's ``wait_for_webhook`` task (its trigger run in line by ``dag.test()``) claims the
    delivery that matches, and the extract routes the records of that delivery."""
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    from muxly_provider.crypto import encrypt_secret

    _seed(muxly_engine, tmp_path, "push_waits", records_path="batch.orders")
    with muxly_engine.begin() as conn:
        conn.execute(
            text("UPDATE scheduler_jobs SET action_params = :p WHERE id = 'push_waits'"),
            {
                "p": json.dumps(
                    {
                        "wait_for_webhook": {
                            "endpoint_path": "shop/batches",
                            "condition": "kind == 'orders'",
                            "timeout_seconds": 120,
                            "lookback_seconds": 600,
                        }
                    }
                )
            },
        )
    _insert(
        muxly_engine,
        "webhook_triggers",
        id="push_waits_trigger",
        endpoint_path="shop/batches",
        secret_key=encrypt_secret(SECRET),
    )
    with TestClient(create_app()) as client:
        for body in (
            {"kind": "refunds", "batch": {"orders": [{"id": 77, "amount": 7}]}},
            {"kind": "orders", "batch": {"orders": ORDERS}},
        ):
            raw = json.dumps(body).encode()
            stamp = str(int(time.time()))
            signature = hmac.new(SECRET.encode(), stamp.encode() + b"." + raw, hashlib.sha256).hexdigest()
            headers = {"X-Muxly-Timestamp": stamp, "X-Muxly-Signature": f"sha256={signature}"}
            answer = client.post("/muxly/webhooks/shop/batches", content=raw, headers=headers)
            assert answer.status_code == 202, answer.text

    dag = _dag("push_waits")
    assert [t.task_id for t in dag.roots] == ["wait_for_webhook"]
    dag_run = dag.test()
    assert dag_run.state == "success", _states(dag_run)
    assert _written(tmp_path / "push_waits" / "all") == ORDERS
    assert [r["id"] for r in _written(tmp_path / "push_waits" / "big")] == [2, 3]
    result = _execution(muxly_engine, "push_waits")
    assert (result["records_in"], result["delivered"]) == (3, 5)
