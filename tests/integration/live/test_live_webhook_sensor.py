"""``MuxlyWebhookSensor`` under a real Airflow (``airflow standalone``: api-server, scheduler, dag-processor,
triggerer, LocalExecutor) on its own AIRFLOW_HOME and DAG folder.

* the sensor is ``deferred`` (the triggerer waits, no task process runs) until a signed delivery to its
  sensor-only endpoint releases it, and the next task reads the body;
* two sensors on one endpoint with different conditions each get the delivery that matches theirs;
* a delivery that arrived before the run started (inside the lookback window) is picked up;
* a timeout fails or skips the sensor as configured.
"""

from __future__ import annotations

import json
import textwrap
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from tests.db_helpers import insert_row as _insert
from tests.integration.live.test_live_airflow import Live
from tests.integration.live.webhook_live import api_call, deliver, encrypt_with, standalone

SECRET = "whsec-live-sensor-5a1f"

DAG_FILE = '''
"""Test DAGs of the live sensor test."""
import json
from pathlib import Path

from airflow.sdk import DAG, task

from muxly_provider.sensors import MuxlyWebhookSensor

OUT = Path({out!r})


@task
def keep(body, name):
    (OUT / name).write_text(json.dumps(body))


with DAG("live_sensor_wait", schedule=None):
    keep(MuxlyWebhookSensor(task_id="wait", endpoint_path="live/wait", timeout=300).output, "wait")

with DAG("live_sensor_split", schedule=None):
    for kind in ("a", "b"):
        wait = MuxlyWebhookSensor(
            task_id=f"wait_{{kind}}", endpoint_path="live/split", condition=f"kind == '{{kind}}'", timeout=300
        )
        keep.override(task_id=f"keep_{{kind}}")(wait.output, f"split_{{kind}}")

with DAG("live_sensor_early", schedule=None):
    keep(MuxlyWebhookSensor(task_id="wait", endpoint_path="live/early", timeout=300).output, "early")

# 15 s, not less: a trigger that fires before the scheduler has seen the deferring try's exit hits an Airflow race
# (the stale "success" of the deferral is taken for the resumed, queued try, which is then marked failed); under
# load the deferral's exit was seen 3.5 s after the trigger started.
with DAG("live_sensor_timeouts", schedule=None):
    MuxlyWebhookSensor(task_id="fails", endpoint_path="live/never", timeout=15, on_timeout="fail")
    MuxlyWebhookSensor(task_id="skips", endpoint_path="live/never", timeout=15, on_timeout="skip")
'''


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    home = tmp_path_factory.mktemp("live-sensor")
    source = textwrap.dedent(DAG_FILE).format(out=str(home / "out"))

    def dags_ready(live: Live) -> bool:
        dags = _get(live, "/api/v2/dags?dag_id_pattern=live_sensor")
        return dags is not None and len(dags["dags"]) == 4

    with standalone(
        home, {"webhook_sensors.py": source}, _seed, dags_ready, "the api-server and the four sensor DAGs"
    ) as live:
        yield live


def _seed(engine: Any, fernet: str) -> None:
    """Sensor-only endpoints (no job, no asset), signed with this Airflow's Fernet key."""
    secret = encrypt_with(fernet, SECRET)
    for name in ("wait", "split", "early", "never"):
        _insert(
            engine, "webhook_triggers", id=f"live_{name}", endpoint_path=f"live/{name}", secret_key=secret
        )


def _deliver(live: Live, path: str, payload: Any) -> dict[str, Any]:
    status, answer = deliver(live.base_url, SECRET, path, payload)
    assert status == 202, answer
    assert set(answer) == {"event_id"}  # a sensor-only endpoint starts nothing
    return answer


def _call(live: Live, method: str, path: str, body: Any = None) -> Any:
    """Airflow's REST API with a fresh token; ``None`` while the api-server does not answer in time (the
    machine may be loaded: the caller's wait retries)."""
    return api_call(live.base_url, method, path, body)


def _get(live: Live, path: str) -> Any:
    return _call(live, "GET", path)


def _trigger(live: Live, dag_id: str) -> str:
    answer = live.wait_for(
        f"a run of {dag_id}",
        lambda: _call(live, "POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None}),
        timeout=60,
    )
    return str(answer["dag_run_id"])


def _tasks(live: Live, dag_id: str, run_id: str) -> dict[str, dict[str, Any]] | None:
    answer = _get(live, f"/api/v2/dags/{dag_id}/dagRuns/{run_id}/taskInstances")
    return None if answer is None else {ti["task_id"]: ti for ti in answer["task_instances"]}


def _wait_states(live: Live, dag_id: str, run_id: str, wanted: dict[str, str], timeout: float = 120) -> Any:
    def reached() -> dict[str, dict[str, Any]] | None:
        tasks = _tasks(live, dag_id, run_id)
        if tasks is None or any((tasks.get(t) or {}).get("state") != s for t, s in wanted.items()):
            return None
        return tasks

    return live.wait_for(f"{wanted} in {dag_id}", reached, timeout)


def _as_datetime(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))


def _out(live: Live, name: str) -> Any:
    out: Path = live.out  # type: ignore[attr-defined]
    return json.loads((out / name).read_text())


def test_a_deferred_sensor_is_released_by_a_signed_delivery(live: Live) -> None:
    run_id = _trigger(live, "live_sensor_wait")
    tasks = _wait_states(live, "live_sensor_wait", run_id, {"wait": "deferred"})
    assert tasks["keep"]["state"] in (None, "scheduled", "queued", "none")
    # Deferred: no task process holds a slot (the pool counts only running/queued tasks).
    pool = _get(live, "/api/v2/pools/default_pool")
    assert pool["running_slots"] == 0 and pool["deferred_slots"] == 1, pool

    delivered_at = time.time()
    answer = _deliver(live, "live/wait", {"order": 42})
    tasks = _wait_states(live, "live_sensor_wait", run_id, {"wait": "success", "keep": "success"})
    assert _out(live, "wait") == {"order": 42}
    released = datetime.fromisoformat(tasks["wait"]["end_date"]).timestamp() - delivered_at
    print(f"delivery to sensor completion: {released:.2f} s")
    assert released < 30
    with live.engine.connect() as conn:
        from sqlalchemy import text

        claims = conn.execute(text("SELECT event_id, claimed_by FROM webhook_event_claims")).all()
        [(received, claimed)] = conn.execute(
            text(
                "SELECT e.received_at, c.claimed_at FROM webhook_events e JOIN webhook_event_claims c "
                "ON c.event_id = e.id WHERE e.id = :id"
            ),
            {"id": answer["event_id"]},
        ).all()
    assert (answer["event_id"], f"live_sensor_wait/{run_id}/wait/-1") in [tuple(c) for c in claims]
    claim_seconds = (_as_datetime(claimed) - _as_datetime(received)).total_seconds()
    print(f"delivery stored to claimed by the trigger: {claim_seconds:.2f} s")
    assert claim_seconds < 10


def test_two_sensors_on_one_endpoint_each_get_their_delivery(live: Live) -> None:
    run_id = _trigger(live, "live_sensor_split")
    _wait_states(live, "live_sensor_split", run_id, {"wait_a": "deferred", "wait_b": "deferred"})
    _deliver(live, "live/split", {"kind": "b", "n": 2})
    _deliver(live, "live/split", {"kind": "a", "n": 1})
    _wait_states(live, "live_sensor_split", run_id, {"keep_a": "success", "keep_b": "success"})
    assert _out(live, "split_a") == {"kind": "a", "n": 1}
    assert _out(live, "split_b") == {"kind": "b", "n": 2}


def test_a_delivery_before_the_run_is_picked_up_within_the_lookback(live: Live) -> None:
    _deliver(live, "live/early", {"early": True})
    time.sleep(2)
    run_id = _trigger(live, "live_sensor_early")
    _wait_states(live, "live_sensor_early", run_id, {"wait": "success", "keep": "success"})
    assert _out(live, "early") == {"early": True}


def test_timeouts_fail_or_skip_as_configured(live: Live) -> None:
    run_id = _trigger(live, "live_sensor_timeouts")
    _wait_states(live, "live_sensor_timeouts", run_id, {"fails": "failed", "skips": "skipped"})
