"""The operator that runs one Muxly job: it carries the job id only and loads the config at run time."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from airflow.sdk import BaseOperator

from muxly_provider.exceptions import MuxlyDestinationError
from muxly_provider.lineage.operators import MuxlyLineageMixin

log = logging.getLogger(__name__)


class MuxlyJobOperator(MuxlyLineageMixin, BaseOperator):
    """Run a Muxly job: fetch from its connector, route the records, deliver them, record the counts.

    :param job_id: the id of the ``scheduler_jobs`` row
    :param batch_size: records fetched and delivered at once
    """

    # Ids only: nothing of a job is rendered with Airflow's full Jinja context (conn, var).
    template_fields: Sequence[str] = ()
    ui_color = "#d9ecff"

    def __init__(self, *, job_id: str, batch_size: int = 1000, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.batch_size = batch_size

    def execute(self, context: Any) -> dict[str, Any]:
        """Run the job; the returned summary (counts only, no data) becomes the task's XCom."""
        from muxly_provider.connectors.registry import get_connector_class
        from muxly_provider.connectors.webhook import with_run_payload
        from muxly_provider.lineage.operators import begin
        from muxly_provider.lineage.schema import observed
        from muxly_provider.runtime.runner import run_job

        job = prepare(self, context, self.job_id, mark_running=True)
        # A webhook connector's records are the run's delivery (added after the templates were rendered).
        data_spec = with_run_payload(
            job.runtime.connector.connector_type, job.params.get("data_spec") or {}, context
        )
        lineage = begin(self, job.runtime, data_spec)
        connector = batches = None
        try:
            if lineage is not None:  # the records' fields are sampled on their way to the router
                kind = job.runtime.connector.connector_type
                connector = get_connector_class(kind)(job.runtime.connector, batch_size=self.batch_size)
                batches = observed(connector.fetch(data_spec), lineage.inputs)
            self.log.info(
                "Running Muxly job %s (%s) with connector %s",
                self.job_id,
                job.runtime.action_type,
                job.runtime.connector.id,
            )
            outcome = run_job(
                job.runtime,
                job.run,
                data_spec,
                batch_size=self.batch_size,
                batches=batches,
                observe=lineage.outputs.observe if lineage is not None else None,
            )
        except Exception as exc:
            job.record(result={"error": describe_error(exc)})
            raise
        finally:
            if connector is not None:
                connector.close()
        if lineage is not None:
            lineage.records_in = outcome.records_in
            lineage.delivered = {d: o.delivered for d, o in outcome.destinations.items()}
        return finish(self, job, outcome)

    def lineage_outputs(self, runtime: Any) -> list[str]:
        """Every destination of the job (this one task delivers them all)."""
        return sorted(runtime.destinations)


@dataclass
class PreparedRun:
    """A job's validated configuration for one task of one run, and how to record into its execution row."""

    engine: Any
    base: Any
    runtime: Any
    run: Any
    params: dict[str, Any]

    def record(self, **changes: Any) -> None:
        """Merge ``changes`` (fields of :class:`ExecutionUpdate`) into the run's ``job_executions`` row.

        An ``error`` in ``result`` is redacted with the job's secrets first (a library's message may quote a
        URL's query or a header value).
        """
        from muxly_provider.destinations.base import redact
        from muxly_provider.executions.recorder import upsert_execution
        from muxly_provider.secret_urls import MIN_FRAGMENT

        result = changes.get("result")
        if isinstance(result, dict) and isinstance(result.get("error"), str):
            found = {str(s) for s in getattr(self.runtime, "secrets", ()) if len(str(s)) >= MIN_FRAGMENT}
            secrets = sorted(found, key=len, reverse=True)
            changes["result"] = {**result, "error": redact(result["error"], secrets)}
        upsert_execution(self.engine, replace(self.base, **changes))


def prepare(task: BaseOperator, context: Any, job_id: str, *, mark_running: bool) -> PreparedRun:
    """Load the job for this run (validated, secrets decrypted and masked, parameters resolved).

    :param mark_running: record the run as ``running`` first (the task that starts the run does)
    """
    from muxly_provider.db.engine import get_engine
    from muxly_provider.destinations.base import RunInfo
    from muxly_provider.executions import run_origin
    from muxly_provider.executions.recorder import ExecutionUpdate, upsert_execution
    from muxly_provider.runtime.loading import load_job_runtime, mask_in_task_logs

    dag_run = context["dag_run"]
    engine = get_engine()
    when = dag_run.logical_date or dag_run.start_date or datetime.now(UTC)
    base = ExecutionUpdate(job_id=job_id, dag_id=dag_run.dag_id, run_id=dag_run.run_id)
    if mark_running:
        upsert_execution(
            engine,
            replace(
                base,
                status="running",
                start_time=dag_run.start_date,
                attempt=run_origin.attempt(getattr(dag_run, "clear_number", 0)),
                # A task's DagRun has no ``triggered_by``: write only what it decides (never a guess
                # over the listener's ``api``); an unknown manual trigger is left to the listener.
                triggered_by=run_origin.known_triggered_by(dag_run.run_type, None, dag_run.conf),
            ),
        )
    try:
        runtime = load_job_runtime(job_id, engine)
        mask_in_task_logs(runtime.secrets)
        params = run_params(runtime, context)
    except Exception as exc:
        upsert_execution(engine, replace(base, result={"error": describe_error(exc)}))
        raise
    run = RunInfo(
        dag_id=dag_run.dag_id,
        run_id=dag_run.run_id,
        job_id=job_id,
        connector_id=runtime.connector.id,
        logical_date=when,
    )
    return PreparedRun(engine=engine, base=base, runtime=runtime, run=run, params=params)


def run_params(runtime: Any, context: Any) -> dict[str, Any]:
    """The job's ``action_params`` for this run: Muxly's date variables and Airflow templates resolved
    against the run's logical date (or its start when it has none)."""
    from muxly_provider.runtime import variables

    dag_run = context["dag_run"]
    when = dag_run.logical_date or dag_run.start_date or datetime.now(UTC)
    params = variables.resolve(dict(runtime.action_params), variables.date_variables(when))
    return variables.render_action_params(
        params, variables.template_variables(dag_run, when, context.get("params"))
    )


def finish(task: BaseOperator, job: PreparedRun, outcome: Any) -> dict[str, Any]:
    """Record a delivery's counts; fail the task when a destination failed (Airflow then retries it)."""
    result: dict[str, Any] = outcome.as_result()
    if outcome.failed_destinations:
        result["error"] = "delivery failed for destination(s) " + ", ".join(outcome.failed_destinations)
    job.record(result=result, clear_error=not outcome.failed_destinations)
    task.log.info(
        "Muxly job %s: %s records in, destinations %s",
        job.run.job_id,
        outcome.records_in,
        result["destinations"],
    )
    if outcome.failed_destinations:
        raise MuxlyDestinationError(result["error"])
    return result


def describe_error(exc: BaseException) -> str:
    """An error for ``job_executions.result``: Muxly's own messages never carry secrets."""
    from muxly_provider.exceptions import MuxlyError

    if isinstance(exc, MuxlyError):
        return str(exc)
    return f"{type(exc).__name__} (see the task log)"
