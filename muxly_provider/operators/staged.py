"""The staged shape of a job's DAG (ARCHITECTURE 5-6).

``extract`` fetches the connector's records, routes them once and stages each destination's share under
``[muxly] staging_path`` (XCom carries only the run manifest); each ``deliver__<destination>`` reads only its
share and delivers it with its own retries; ``dead_letters`` (when a route names a dead-letter destination)
runs after every delivery finished, failed or not, and sends what they refused to the dead-letter
destination; ``cleanup`` removes the staged records once every task before it succeeded. See
:mod:`muxly_provider.runtime.runner` for the phases and ``docs/jobs.md`` for the run's outcome.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from muxly_provider.dag_factory.naming import delivery_task_id
from muxly_provider.lineage.operators import MuxlyLineageMixin
from muxly_provider.operators.job import describe_error, finish, prepare

EXTRACT_TASK_ID = "extract"
DEAD_LETTERS_TASK_ID = "dead_letters"
CLEANUP_TASK_ID = "cleanup"

__all__ = [
    "CLEANUP_TASK_ID",
    "DEAD_LETTERS_TASK_ID",
    "EXTRACT_TASK_ID",
    "MuxlyCleanupOperator",
    "MuxlyDeadLetterOperator",
    "MuxlyDeliverOperator",
    "MuxlyExtractOperator",
    "delivery_task_id",
]


class _Outcome:
    """What :func:`~muxly_provider.operators.job.finish` records for one task."""

    def __init__(self, result: dict[str, Any], failed: list[str], records_in: int = 0) -> None:
        self.result = result
        self.failed_destinations = failed
        self.records_in = records_in

    def as_result(self) -> dict[str, Any]:
        return dict(self.result)


class MuxlyExtractOperator(MuxlyLineageMixin, BaseOperator):
    """Fetch a job's records, route them once and stage each destination's share; return the run manifest.

    :param job_id: the id of the ``scheduler_jobs`` row
    :param batch_size: records fetched at once
    :param dead_letters_task: whether the DAG has a ``dead_letters`` task (transformation failures are then
        staged for it; without one they go to the ``dead_letters`` table)
    """

    # Ids only: nothing of a job is rendered with Airflow's full Jinja context (conn, var).
    template_fields: Sequence[str] = ()
    ui_color = "#d9ecff"

    def __init__(
        self, *, job_id: str, batch_size: int = 1000, dead_letters_task: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.batch_size = batch_size
        self.dead_letters_task = dead_letters_task

    def execute(self, context: Any) -> dict[str, Any]:
        """Stage the shares; record ``records_in``, the router's counts and ``skipped_disabled``."""
        from muxly_provider.connectors.registry import get_connector_class
        from muxly_provider.connectors.webhook import with_run_payload
        from muxly_provider.destinations.dead_letter import TableDeadLetterStore
        from muxly_provider.lineage.operators import begin
        from muxly_provider.lineage.schema import observed
        from muxly_provider.runtime.runner import route_and_stage

        job = prepare(self, context, self.job_id, mark_running=True)
        connector_type = job.runtime.connector.connector_type
        connector = get_connector_class(connector_type)(job.runtime.connector, batch_size=self.batch_size)
        # A webhook connector's records are the run's delivery (added after the templates were rendered).
        data_spec = with_run_payload(connector_type, job.params.get("data_spec") or {}, context)
        lineage = begin(self, job.runtime, data_spec)
        try:
            batches = connector.fetch(data_spec)
            manifest, routing = route_and_stage(
                job.runtime,
                job.run,
                observed(batches, lineage.inputs) if lineage is not None else batches,
                stage_letters=self.dead_letters_task,
                observe=lineage.outputs.observe if lineage is not None else None,
            )
        except Exception as exc:
            job.record(result={"error": describe_error(exc)})
            raise
        finally:
            connector.close()
        if lineage is not None:  # the deliveries report the schemas the records had here
            lineage.records_in = routing.records_in
            manifest["lineage"] = lineage.manifest_entry()
        targets = sorted(set(manifest["dead_letter_targets"].values()) | set(manifest["letters"]))
        result = routing.as_result(", ".join(targets) or TableDeadLetterStore.name)
        job.record(result=result)
        self.log.info(
            "Routed %s records once in %.3f s; staged shares %s at %s",
            routing.records_in,
            routing.route_seconds,
            {d: m["records"] for d, m in manifest["shares"].items()},
            manifest["uri"],
        )
        return manifest

    def lineage_outputs(self, runtime: Any) -> list[str]:
        """None: the extract task stages the records; the deliveries write the destinations."""
        return []


class MuxlyDeliverOperator(MuxlyLineageMixin, BaseOperator):
    """Deliver one destination's staged share.

    :param job_id: the id of the ``scheduler_jobs`` row
    :param destination_id: the destination this task delivers to
    :param dead_letters_task: whether the DAG has a ``dead_letters`` task (failed batches are then staged for
        it when a route names a dead-letter destination; otherwise they go to the ``dead_letters`` table)
    """

    # Ids only: nothing of a job is rendered with Airflow's full Jinja context (conn, var).
    template_fields: Sequence[str] = ()
    ui_color = "#e5f5e0"

    def __init__(
        self, *, job_id: str, destination_id: str, dead_letters_task: bool = False, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.destination_id = destination_id
        self.dead_letters_task = dead_letters_task

    def execute(self, context: Any) -> dict[str, Any]:
        """Deliver; fail (and so retry on its own) when the destination failed."""
        from muxly_provider.lineage.operators import begin
        from muxly_provider.runtime.runner import deliver_share

        manifest = context["ti"].xcom_pull(task_ids=EXTRACT_TASK_ID)
        job = prepare(self, context, self.job_id, mark_running=False)
        lineage = begin(self, job.runtime, job.params.get("data_spec") or {}, manifest)
        try:
            counts = deliver_share(
                job.runtime, job.run, manifest, self.destination_id, stage_letters=self.dead_letters_task
            )
        except Exception as exc:
            job.record(result={"error": describe_error(exc)})
            raise
        if lineage is not None:
            lineage.delivered[self.destination_id] = counts.delivered
        totals = {"routed": counts.routed, "delivered": counts.delivered, "lost": counts.lost}
        result = {"destinations": {self.destination_id: counts.as_dict()}, **totals}
        failed = [self.destination_id] if counts.error else []
        return finish(self, job, _Outcome(result, failed, int(manifest["records_in"])))

    def lineage_outputs(self, runtime: Any) -> list[str]:
        """The destination this task delivers to."""
        return [self.destination_id]


class MuxlyDeadLetterOperator(MuxlyLineageMixin, BaseOperator):
    """Send what the deliveries refused (and transformation failures) to the routes' dead-letter destinations.

    Runs when every delivery finished, failed or not (``trigger_rule="all_done"``); fails when a dead-letter
    destination failed too (its letters are then in the ``dead_letters`` table).

    :param job_id: the id of the ``scheduler_jobs`` row
    """

    # Ids only: nothing of a job is rendered with Airflow's full Jinja context (conn, var).
    template_fields: Sequence[str] = ()
    ui_color = "#fde0dd"

    def __init__(self, *, job_id: str, **kwargs: Any) -> None:
        kwargs.setdefault("trigger_rule", "all_done")
        super().__init__(**kwargs)
        self.job_id = job_id

    def execute(self, context: Any) -> dict[str, Any] | None:
        """Deliver the letters; record the dead-letter destinations' counts."""
        from muxly_provider.exceptions import MuxlyDestinationError
        from muxly_provider.lineage.operators import begin
        from muxly_provider.runtime.runner import deliver_dead_letters

        manifest = context["ti"].xcom_pull(task_ids=EXTRACT_TASK_ID)
        if not manifest:
            self.log.info("Nothing was staged (extract did not succeed): no dead letters")
            return None
        job = prepare(self, context, self.job_id, mark_running=False)
        lineage = begin(self, job.runtime, job.params.get("data_spec") or {}, manifest)
        try:
            letters, unfinished = deliver_dead_letters(job.runtime, job.run, manifest)
        except Exception as exc:
            job.record(result={"error": describe_error(exc)})
            raise
        if lineage is not None:
            lineage.delivered.update({d: o.delivered for d, o in letters.items()})
        result: dict[str, Any] = {
            "destinations": {d: o.as_dict() for d, o in unfinished.items()},
            "dead_letter_destinations": {d: o.as_dict() for d, o in letters.items()},
        }
        # Only a failing dead-letter destination fails this task: the deliveries' own failures already
        # failed theirs (and so the run).
        failed = sorted(d for d, o in letters.items() if o.error)
        if failed:
            result["error"] = (
                f"dead-letter destination(s) {', '.join(failed)} failed: their letters are in the "
                "dead_letters table"
            )
        job.record(result=result)
        self.log.info("Dead letters: %s", result["dead_letter_destinations"])
        if failed:
            raise MuxlyDestinationError(result["error"])
        return result

    def lineage_outputs(self, runtime: Any) -> list[str]:
        """The routes' dead-letter destinations."""
        targets = {r.error_handling.dead_letter_destination_id for r in runtime.routes}
        return sorted(t for t in targets if t and t in runtime.destinations)


class MuxlyCleanupOperator(BaseOperator):
    """Remove the run's staged records (after every delivery, and the dead letters, succeeded)."""

    def execute(self, context: Any) -> None:
        """Delete the staged folder."""
        from muxly_provider.runtime import staging

        manifest = context["ti"].xcom_pull(task_ids=EXTRACT_TASK_ID)
        if manifest:
            staging.cleanup(str(manifest["uri"]))
