"""The operator that runs one Muxly job: it carries the job id only and loads the config at run time."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import BaseOperator

from muxly_provider.exceptions import MuxlyDestinationError

log = logging.getLogger(__name__)


class MuxlyJobOperator(BaseOperator):
    """Run a Muxly job: fetch from its connector, route the records, deliver them, record the counts.

    :param job_id: the id of the ``scheduler_jobs`` row
    :param batch_size: records fetched and delivered at once
    """

    template_fields: Sequence[str] = ("job_id",)
    ui_color = "#d9ecff"

    def __init__(self, *, job_id: str, batch_size: int = 1000, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.batch_size = batch_size

    def execute(self, context: Any) -> dict[str, Any]:
        """Run the job; the returned summary (counts only, no data) becomes the task's XCom."""
        from muxly_provider.db.engine import get_engine
        from muxly_provider.destinations.base import RunInfo
        from muxly_provider.executions import triggers
        from muxly_provider.executions.recorder import ExecutionUpdate, upsert_execution
        from muxly_provider.runtime import variables
        from muxly_provider.runtime.loading import load_job_runtime
        from muxly_provider.runtime.runner import run_job

        dag_run = context["dag_run"]
        engine = get_engine()
        when = dag_run.logical_date or dag_run.start_date or datetime.now(UTC)
        base = ExecutionUpdate(job_id=self.job_id, dag_id=dag_run.dag_id, run_id=dag_run.run_id)
        attempt = triggers.attempt(getattr(dag_run, "clear_number", 0))
        upsert_execution(
            engine,
            replace(
                base,
                status="running",
                start_time=dag_run.start_date,
                attempt=attempt,
                triggered_by=triggers.triggered_by(dag_run.run_type, None, dag_run.conf),
            ),
        )
        try:
            runtime = load_job_runtime(self.job_id, engine)
            self._mask(runtime.secrets)
            params = variables.resolve(dict(runtime.action_params), variables.date_variables(when))
            params = self.render_template(params, context)
            run = RunInfo(
                dag_id=dag_run.dag_id,
                run_id=dag_run.run_id,
                job_id=self.job_id,
                connector_id=runtime.connector.id,
                logical_date=when,
            )
            self.log.info(
                "Running Muxly job %s (%s) with connector %s",
                self.job_id,
                runtime.action_type,
                runtime.connector.id,
            )
            outcome = run_job(runtime, run, params.get("data_spec") or {}, batch_size=self.batch_size)
        except Exception as exc:
            upsert_execution(engine, replace(base, result={"error": _describe(exc)}))
            raise
        result = outcome.as_result()
        if outcome.failed_destinations:
            result["error"] = "delivery failed for destination(s) " + ", ".join(outcome.failed_destinations)
        upsert_execution(engine, replace(base, result=result, clear_error=not outcome.failed_destinations))
        self.log.info(
            "Muxly job %s: %s records in, destinations %s",
            self.job_id,
            outcome.records_in,
            result["destinations"],
        )
        if outcome.failed_destinations:
            raise MuxlyDestinationError(result["error"])
        return result

    @staticmethod
    def _mask(secrets: Sequence[str]) -> None:
        try:
            from airflow.sdk.log import mask_secret
        except ImportError:  # pragma: no cover - older SDKs
            return
        for secret in secrets:
            mask_secret(secret)


def _describe(exc: BaseException) -> str:
    """An error for ``job_executions.result``: Muxly's own messages never carry secrets."""
    from muxly_provider.exceptions import MuxlyError

    if isinstance(exc, MuxlyError):
        return str(exc)
    return f"{type(exc).__name__} (see the task log)"
