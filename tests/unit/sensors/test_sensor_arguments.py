"""``MuxlyWebhookSensor`` without a triggerer: construction checks, the deferral, the outcomes; the job option
builds the ``wait_for_webhook`` task."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from airflow.sdk.exceptions import (
    AirflowFailException,
    AirflowSensorTimeout,
    AirflowSkipException,
    TaskDeferred,
)

from muxly_provider.sensors import MuxlyWebhookSensor
from muxly_provider.triggers.webhook import MuxlyWebhookTrigger


class _TI:
    dag_id = "d"
    run_id = "r"
    task_id = "wait"
    map_index = -1

    def __init__(self) -> None:
        self.pushed: dict[str, Any] = {}

    def xcom_push(self, key: str, value: Any) -> None:
        self.pushed[key] = value


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"endpoint_path": "/bad path"}, "is not a webhook path"),
        ({"endpoint_path": "ok", "condition": "a =="}, "condition 'a ==' is not valid"),
        ({"endpoint_path": "ok", "on_timeout": "retry"}, "on_timeout must be"),
        ({"endpoint_path": "ok", "lookback_seconds": -5}, "lookback_seconds must be"),
    ],
)
def test_bad_arguments_fail_at_construction(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MuxlyWebhookSensor(task_id="wait", **kwargs)


def test_a_templated_condition_is_checked_when_the_task_runs() -> None:
    sensor = MuxlyWebhookSensor(task_id="wait", endpoint_path="ok", condition="{{ params.c }}")
    sensor.condition = "a =="  # as rendered
    with pytest.raises(AirflowFailException, match="'wait': condition 'a ==' is not valid"):
        sensor.execute({"ti": _TI()})


def test_execute_defers_at_once_with_the_window_and_the_deadline(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__MUXLY__WEBHOOK_SENSOR_LOOKBACK_SECONDS", "120")
    sensor = MuxlyWebhookSensor(task_id="wait", endpoint_path="orders", condition="n > 1", timeout=600)
    before = datetime.utcnow()
    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({"ti": _TI()})
    trigger = deferred.value.trigger
    assert isinstance(trigger, MuxlyWebhookTrigger)
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout == timedelta(seconds=660)  # Airflow's backstop behind the deadline
    since = datetime.fromisoformat(trigger.since)
    deadline = datetime.fromisoformat(str(trigger.deadline))
    assert abs((before - since).total_seconds() - 120) < 5
    assert abs((deadline - before).total_seconds() - 600) < 5
    assert (trigger.endpoint_path, trigger.condition, trigger.claimed_by) == (
        "orders",
        "n > 1",
        "d/r/wait/-1",
    )
    assert trigger.poll_interval == 0.25

    own = MuxlyWebhookSensor(task_id="wait", endpoint_path="orders", lookback_seconds=0)
    with pytest.raises(TaskDeferred) as deferred:
        own.execute({"ti": _TI()})
    assert abs((datetime.fromisoformat(deferred.value.trigger.since) - before).total_seconds()) < 5


def test_execute_complete_returns_the_body_and_pushes_the_event() -> None:
    sensor = MuxlyWebhookSensor(task_id="wait", endpoint_path="orders")
    ti = _TI()
    event = {
        "status": "delivered",
        "event_id": "e1",
        "endpoint_path": "orders",
        "received_at": "2026-12-02T16:00:00+00:00",
        "run_id": None,
        "body": {"n": 2},
    }
    assert sensor.execute_complete({"ti": ti}, event) == {"n": 2}
    assert ti.pushed["webhook_event"] == {
        "event_id": "e1",
        "endpoint_path": "orders",
        "received_at": "2026-12-02T16:00:00+00:00",
        "run_id": None,
    }


@pytest.mark.parametrize(
    ("on_timeout", "error"), [("fail", AirflowSensorTimeout), ("skip", AirflowSkipException)]
)
def test_timeout_fails_or_skips(on_timeout: Any, error: type[Exception]) -> None:
    sensor = MuxlyWebhookSensor(
        task_id="wait", endpoint_path="orders", condition="n > 1", on_timeout=on_timeout, timeout=5
    )
    with pytest.raises(error, match=r"no delivery to 'orders' matching 'n > 1' within 5 s"):
        sensor.resume_execution("execute_complete", {"event": {"status": "timeout"}}, {"ti": _TI()})
    # Airflow's own deferral timeout (no triggerer ran the trigger) ends the same way.
    with pytest.raises(error):
        sensor.resume_execution("__fail__", {"error": "Trigger timeout"}, {"ti": _TI()})


def _spec(**wait: Any) -> Any:
    from muxly_provider.dag_factory.specs import JobDagSpec

    return JobDagSpec(
        job_id="j",
        dag_id="muxly__j",
        name="J",
        job_type="webhook",
        cron=None,
        timezone="UTC",
        connector_id="c",
        connector_name="C",
        connector_type="webhook",
        action_type="sync",
        max_retries=0,
        backoff_strategy="fixed",
        timeout_seconds=60,
        destinations=(("d", "D", "file"),),
        **wait,
    )


def test_the_job_option_starts_the_dag_with_wait_for_webhook() -> None:
    from muxly_provider.dag_factory.builder import build_dag
    from muxly_provider.dag_factory.specs import JobDagSpec

    spec = _spec(
        wait_endpoint="orders/paid",
        wait_condition="amount > 10",
        wait_timeout_seconds=900,
        wait_on_timeout="skip",
        wait_lookback_seconds=30,
        has_run_condition=True,
    )
    assert JobDagSpec.from_json(spec.to_json()) == spec
    dag = build_dag(spec)
    wait = dag.get_task("wait_for_webhook")
    assert isinstance(wait, MuxlyWebhookSensor)
    assert (wait.endpoint_path, wait.condition, wait.timeout, wait.on_timeout, wait.lookback_seconds) == (
        "orders/paid",
        "amount > 10",
        900,
        "skip",
        30,
    )
    assert wait.soft_fail is True
    assert [t.task_id for t in dag.roots] == ["wait_for_webhook"]
    assert wait.downstream_task_ids == {"check_run_condition"}
    assert dag.get_task("check_run_condition").downstream_task_ids == {"extract"}
    without = build_dag(_spec())
    assert "wait_for_webhook" not in without.task_ids
    assert spec.digest() != _spec().digest()


def test_specs_cached_before_the_option_still_load() -> None:
    from muxly_provider.dag_factory.specs import JobDagSpec

    old = {k: v for k, v in _spec().to_json().items() if not k.startswith("wait_")}
    assert JobDagSpec.from_json(old).wait_endpoint is None
