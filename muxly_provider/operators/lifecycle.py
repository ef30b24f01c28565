"""Tasks around a job's run: ``run_condition`` before, ``notifications`` and ``run_failed`` after."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import BaseOperator


def _run_info(context: Any, job_id: str, connector_id: str) -> Any:
    from muxly_provider.destinations.base import RunInfo

    dag_run = context["dag_run"]
    when = dag_run.logical_date or dag_run.start_date or datetime.now(UTC)
    return RunInfo(
        dag_id=dag_run.dag_id,
        run_id=dag_run.run_id,
        job_id=job_id,
        connector_id=connector_id,
        logical_date=when,
    )


class MuxlyRunConditionOperator(BaseOperator):
    """Skip the run (and so its delivery) when the job's ``run_condition`` does not hold.

    :param job_id: the id of the ``scheduler_jobs`` row
    """

    # Ids only: nothing of a job is rendered with Airflow's full Jinja context (conn, var).
    template_fields: Sequence[str] = ()

    def __init__(self, *, job_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id

    def execute(self, context: Any) -> bool:
        """Evaluate the condition; raise ``AirflowSkipException`` when it is false."""
        from airflow.sdk.exceptions import AirflowSkipException

        from muxly_provider.db.engine import get_engine
        from muxly_provider.runtime import variables
        from muxly_provider.runtime.lifecycle import run_condition_holds
        from muxly_provider.runtime.loading import load_job_runtime

        engine = get_engine()
        runtime = load_job_runtime(self.job_id, engine)
        dag_run = context["dag_run"]
        when = dag_run.logical_date or dag_run.start_date or datetime.now(UTC)
        condition = variables.resolve(
            runtime.action_params.get("run_condition"), variables.date_variables(when)
        )
        if not run_condition_holds(self.job_id, condition, runtime.connector.id, engine):
            raise AirflowSkipException(f"run_condition of job {self.job_id!r} is false: the run is skipped")
        return True


class MuxlyNotifyOperator(BaseOperator):
    """Send a job's ``on_success`` or ``on_failure`` notifications through their destinations.

    :param job_id: the id of the ``scheduler_jobs`` row
    :param outcome: ``success`` or ``failure``
    """

    # Ids only: nothing of a job is rendered with Airflow's full Jinja context (conn, var).
    template_fields: Sequence[str] = ()

    def __init__(self, *, job_id: str, outcome: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.outcome = outcome

    def execute(self, context: Any) -> list[str]:
        """Send the notifications; return where they went."""
        from muxly_provider.db.engine import get_engine
        from muxly_provider.runtime.lifecycle import send_notifications
        from muxly_provider.runtime.loading import load_job_runtime

        engine = get_engine()
        runtime = load_job_runtime(self.job_id, engine)
        return send_notifications(
            self.job_id,
            self.outcome,
            _run_info(context, self.job_id, runtime.connector.id),
            engine,
            job_name=runtime.name,
            notifications=runtime.action_params.get("notifications") or {},
        )


class MuxlyRunFailedOperator(BaseOperator):
    """Fail when reached: it runs only after ``run_job`` failed, and keeps the DAG run ``failed`` even though the
    failure notification after it succeeded."""

    def execute(self, context: Any) -> None:
        """Fail the task (and so the DAG run)."""
        from airflow.sdk.exceptions import AirflowFailException

        raise AirflowFailException("run_job failed; the failure notifications were sent")
