"""The staged shape of a job's DAG (ARCHITECTURE 5-6): extract -> one delivery task per destination -> cleanup.

``extract`` fetches the connector's records and stages them under ``[muxly] staging_path`` (XCom carries only
the manifest); each ``deliver__<destination>`` routes the staged records and delivers its destination's share,
with its own retries; ``cleanup`` removes the staged batches once every delivery succeeded.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from airflow.sdk import BaseOperator

from muxly_provider.operators.job import describe_error, finish, prepare

EXTRACT_TASK_ID = "extract"


def delivery_task_id(destination_id: str) -> str:
    """The task id of a destination's delivery task."""
    import re

    return "deliver__" + re.sub(r"[^A-Za-z0-9_.-]", "_", destination_id)[:200]


class MuxlyExtractOperator(BaseOperator):
    """Fetch a job's records and stage them; return the manifest.

    :param job_id: the id of the ``scheduler_jobs`` row
    :param batch_size: records fetched and staged at once
    """

    template_fields: Sequence[str] = ("job_id",)
    ui_color = "#d9ecff"

    def __init__(self, *, job_id: str, batch_size: int = 1000, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.batch_size = batch_size

    def execute(self, context: Any) -> dict[str, Any]:
        """Stage the connector's batches; record ``records_in``."""
        from muxly_provider.connectors.registry import get_connector_class
        from muxly_provider.runtime import staging

        job = prepare(self, context, self.job_id, mark_running=True)
        connector = get_connector_class(job.runtime.connector.connector_type)(
            job.runtime.connector, batch_size=self.batch_size
        )
        try:
            manifest = staging.stage(connector.fetch(job.params.get("data_spec") or {}), job.run)
        except Exception as exc:
            job.record(result={"error": describe_error(exc)})
            raise
        finally:
            connector.close()
        job.record(result={"records_in": manifest["records_in"], "staged_batches": len(manifest["batches"])})
        self.log.info(
            "Staged %s records in %s batches at %s",
            manifest["records_in"],
            len(manifest["batches"]),
            manifest["uri"],
        )
        return manifest


class MuxlyDeliverOperator(BaseOperator):
    """Route the staged records and deliver one destination's share.

    :param job_id: the id of the ``scheduler_jobs`` row
    :param destination_id: the destination this task delivers to
    """

    template_fields: Sequence[str] = ("job_id",)
    ui_color = "#e5f5e0"

    def __init__(self, *, job_id: str, destination_id: str, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.job_id = job_id
        self.destination_id = destination_id

    def execute(self, context: Any) -> dict[str, Any]:
        """Deliver; fail (and so retry on its own) when the destination failed."""
        from muxly_provider.runtime import staging
        from muxly_provider.runtime.runner import run_job

        manifest = context["ti"].xcom_pull(task_ids=EXTRACT_TASK_ID)
        job = prepare(self, context, self.job_id, mark_running=False)
        try:
            outcome = run_job(
                job.runtime,
                job.run,
                {},
                batches=staging.read_batches(manifest),
                only=frozenset({self.destination_id}),
            )
        except Exception as exc:
            job.record(result={"error": describe_error(exc)})
            raise
        outcome.records_in = int(manifest["records_in"])
        return finish(self, job, outcome)


class MuxlyCleanupOperator(BaseOperator):
    """Remove the run's staged batches (after every delivery succeeded)."""

    def execute(self, context: Any) -> None:
        """Delete the staged folder."""
        from muxly_provider.runtime import staging

        manifest = context["ti"].xcom_pull(task_ids=EXTRACT_TASK_ID)
        if manifest:
            staging.cleanup(manifest)
