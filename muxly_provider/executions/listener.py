"""Airflow listener that mirrors every Muxly DAG run into ``job_executions``.

``on_dag_run_running`` fires in the scheduler; ``on_dag_run_success``/``on_dag_run_failed`` also fire when a
worker was killed (after the heartbeat timeout), on a manual state change in the api-server, and in
``dag.test()``. The hooks run inside the scheduler's transaction: they only touch Muxly's own engine, are
idempotent (upsert by DAG id + run id), and never raise into Airflow.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from airflow.listeners import hookimpl

from muxly_provider.dag_factory.naming import DAG_ID_PREFIX

log = logging.getLogger(__name__)


def _record(dag_run: Any, status: str, msg: str | None) -> None:
    dag_id = str(getattr(dag_run, "dag_id", ""))
    if not dag_id.startswith(DAG_ID_PREFIX):
        return
    try:
        from muxly_provider.dag_factory.naming import job_id_for_dag_id
        from muxly_provider.db.engine import get_engine
        from muxly_provider.executions import triggers
        from muxly_provider.executions.recorder import ExecutionUpdate, upsert_execution

        engine = get_engine()
        job_id = job_id_for_dag_id(engine, dag_id)
        if job_id is None:
            log.warning("Muxly: no job row for DAG %s; run %s not mirrored", dag_id, dag_run.run_id)
            return
        start = getattr(dag_run, "start_date", None)
        end = getattr(dag_run, "end_date", None) if status in {"success", "failed"} else None
        if status in {"success", "failed"} and end is None:
            end = datetime.now(UTC)
        result: dict[str, Any] = {}
        if start is not None and end is not None:
            result["duration_seconds"] = round((end - start).total_seconds(), 3)
        upsert_execution(
            engine,
            ExecutionUpdate(
                job_id=job_id,
                dag_id=dag_id,
                run_id=str(dag_run.run_id),
                status=status,
                start_time=start,
                end_time=end,
                attempt=triggers.attempt(getattr(dag_run, "clear_number", 0)),
                # Known values only: a run Airflow recorded no source for keeps what its row says.
                triggered_by=triggers.known_triggered_by(
                    getattr(dag_run, "run_type", None),
                    getattr(dag_run, "triggered_by", None),
                    getattr(dag_run, "conf", None),
                ),
                result=result,
                error_if_missing=(msg or "the DAG run failed") if status == "failed" else None,
                clear_error=status == "success",
            ),
        )
    except Exception:
        log.exception("Muxly: could not mirror DAG run %s of %s into job_executions", dag_run.run_id, dag_id)


@hookimpl
def on_dag_run_running(dag_run: Any, msg: str) -> None:
    """A Muxly DAG run started (or started again after a clear)."""
    _record(dag_run, "running", msg)


@hookimpl
def on_dag_run_success(dag_run: Any, msg: str) -> None:
    """A Muxly DAG run succeeded."""
    _record(dag_run, "success", msg)


@hookimpl
def on_dag_run_failed(dag_run: Any, msg: str) -> None:
    """A Muxly DAG run failed (including a run whose worker was killed)."""
    _record(dag_run, "failed", msg)
