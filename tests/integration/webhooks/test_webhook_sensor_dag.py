"""``MuxlyWebhookSensor`` in real DAG runs (``dag.test()`` runs the deferred trigger in-process): a delivery
stored from another thread while the run waits releases it and its body reaches the next task through XCom;
a timeout fails or skips the task as configured."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.db_helpers import insert_row as _insert

pytestmark = pytest.mark.usefixtures("airflow_db")


_DAG_FILE = """
import json
from pathlib import Path

from airflow.sdk import DAG, task

from muxly_provider.sensors import MuxlyWebhookSensor

with DAG({dag_id!r}, schedule=None, catchup=False) as dag:
    wait = MuxlyWebhookSensor(
        task_id="wait_for_webhook", endpoint_path="dag/orders", poke_interval=0.2, **{sensor!r}
    )

    @task
    def write(body):
        Path({out!r}).write_text(json.dumps(body))

    write(wait.output)
"""


def _dag(dag_id: str, out: Path, **sensor: Any) -> Any:
    """The DAG, written to a file and serialized into Airflow's database as the DAG processor would
    (``dag.test()`` needs it serialized)."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    folder = out.parent / "dags"
    folder.mkdir(exist_ok=True)
    (folder / f"{dag_id}.py").write_text(_DAG_FILE.format(dag_id=dag_id, sensor=sensor, out=str(out)))
    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=folder, bundle_path=folder, bundle_name="dags-folder")
    assert not bag.import_errors, bag.import_errors
    sync_bag_to_db(bag, "dags-folder", None)
    return bag.dags[dag_id]


def _states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


def test_a_delivery_releases_the_sensor_and_its_body_reaches_the_next_task(
    muxly_engine: Engine, tmp_path: Path
) -> None:
    from muxly_provider.webhook_events import record_event

    _insert(muxly_engine, "webhook_triggers", id="dt", endpoint_path="dag/orders")
    out = tmp_path / "body.json"
    dag = _dag(f"webhook_sensor_{tmp_path.name[-12:]}", out, condition="status == 'paid'", timeout=60)

    def deliver() -> None:
        time.sleep(3)  # the run is waiting by then (deferred, its trigger polling)
        for status in ("pending", "paid"):
            record_event(
                muxly_engine, trigger_id="dt", endpoint_path="dag/orders", payload={"status": status, "n": 1}
            )

    thread = threading.Thread(target=deliver)
    thread.start()
    started = time.monotonic()
    dag_run = dag.test()
    thread.join()

    assert _states(dag_run) == {"wait_for_webhook": "success", "write": "success"}
    assert json.loads(out.read_text()) == {"status": "paid", "n": 1}
    assert time.monotonic() - started >= 3  # it really waited for the delivery


@pytest.mark.parametrize(("on_timeout", "state"), [("fail", "failed"), ("skip", "skipped")])
def test_a_timeout_fails_or_skips_the_sensor(
    muxly_engine: Engine, tmp_path: Path, on_timeout: str, state: str
) -> None:
    _insert(muxly_engine, "webhook_triggers", id="dt", endpoint_path="dag/orders")
    out = tmp_path / "body.json"
    dag = _dag(f"webhook_timeout_{on_timeout}_{tmp_path.name[-12:]}", out, timeout=2, on_timeout=on_timeout)

    dag_run = dag.test()

    states = _states(dag_run)
    assert states["wait_for_webhook"] == state
    assert states["write"] in {"upstream_failed", "skipped"}
    assert not out.exists()
