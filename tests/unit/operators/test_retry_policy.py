"""Retry delays per backoff strategy; configuration errors are not retried."""

from __future__ import annotations

from datetime import timedelta

import pytest
from airflow.sdk.definitions.retry_policy import RetryAction

from muxly_provider.exceptions import MuxlyConfigError, MuxlyConnectorError
from muxly_provider.operators.retry import MuxlyTaskRetryPolicy


@pytest.mark.parametrize(
    ("strategy", "delays"),
    [("fixed", [30, 30, 30, 30]), ("linear", [30, 60, 90, 120]), ("exponential", [30, 60, 120, 240])],
)
def test_delays(strategy: str, delays: list[int]) -> None:
    policy = MuxlyTaskRetryPolicy(strategy)
    assert [policy.delay(t).total_seconds() for t in (1, 2, 3, 4)] == delays
    decision = policy.evaluate(MuxlyConnectorError("down"), 2, 5)
    assert decision.action is RetryAction.RETRY
    assert decision.retry_delay == timedelta(seconds=delays[1])


def test_delays_are_capped_and_serializable() -> None:
    policy = MuxlyTaskRetryPolicy("exponential", timedelta(seconds=10), timedelta(minutes=1))
    assert policy.delay(50) == timedelta(minutes=1)
    assert MuxlyTaskRetryPolicy.deserialize(policy.serialize()).delay(3) == policy.delay(3)


def test_configuration_errors_fail_at_once() -> None:
    error = MuxlyConfigError("connectors", "c1", "auth_settings.params.token", "a string")
    assert MuxlyTaskRetryPolicy("fixed").evaluate(error, 1, 3).action is RetryAction.FAIL


def test_a_database_setting_that_cannot_work_fails_at_once() -> None:
    from muxly_provider.exceptions import MuxlyDatabaseError, MuxlyDatabaseSettingError

    error = MuxlyDatabaseSettingError("Airflow runs on postgresql (...): set [muxly] sql_alchemy_conn")
    decision = MuxlyTaskRetryPolicy("fixed").evaluate(error, 1, 3)
    assert decision.action is RetryAction.FAIL
    assert "fix the setting" in (decision.reason or "")
    # An outage of Muxly's database is retried.
    assert (
        MuxlyTaskRetryPolicy("fixed").evaluate(MuxlyDatabaseError("down"), 1, 3).action is RetryAction.RETRY
    )


def test_a_task_fails_with_the_setting_message(tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    from types import SimpleNamespace

    from muxly_provider import settings
    from muxly_provider.exceptions import MuxlyDatabaseSettingError
    from muxly_provider.operators.job import prepare

    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "airflow-db-not-allowed:///")
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")  # what a Celery worker knows
    monkeypatch.delenv("AIRFLOW__MUXLY__SQL_ALCHEMY_CONN")
    settings._airflow_url_for.cache_clear()
    dag_run = SimpleNamespace(dag_id="muxly_j", run_id="r1", logical_date=None, start_date=None)

    with pytest.raises(MuxlyDatabaseSettingError, match=r"set \[muxly\] sql_alchemy_conn"):
        prepare(SimpleNamespace(), {"dag_run": dag_run}, "j", mark_running=True)  # type: ignore[arg-type]
