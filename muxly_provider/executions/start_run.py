"""Start a run of a job from Muxly (webhooks, the REST API, the CLI, dependencies).

It runs where Airflow's ORM is available (api-server, CLI) and makes the same checks as Airflow's own REST
trigger endpoint before it creates the run: the job's DAG exists and is serialized, is not stale, has no import
errors, allows manual runs, and is not paused (a paused DAG is reported, not silently queued). The run carries
``conf["muxly"]["triggered_by"]`` (and the webhook payload in ``conf["payload"]``), and its ``job_executions``
row is written at once with status ``queued``.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from muxly_provider.dag_factory.naming import dag_id_for
from muxly_provider.exceptions import MuxlyError
from muxly_provider.executions.run_origin import CONF_KEY


@dataclass(frozen=True)
class TriggeredRun:
    """A run Muxly started."""

    dag_id: str
    run_id: str
    execution_id: str


class JobTriggerError(MuxlyError):
    """Why a run could not be started, with the HTTP status an API should answer.

    :param status_code: 404 (no such DAG), 409 (paused, broken or duplicate run)
    :param code: a stable code (``dag_not_found``, ``dag_paused``, ``dag_broken``, ``duplicate_run``)
    :param message: a sentence for humans
    """

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message


def new_run_id(triggered_by: str) -> str:
    """A unique run id for a Muxly-triggered run (``webhook__<time>__<random>``)."""
    return f"{triggered_by}__{datetime.now(UTC).strftime('%Y-%m-%dT%H:%M:%S.%f')}__{uuid.uuid4().hex[:8]}"


_dag_bag: Any = None


def _trigger(dag_id: str, **kwargs: Any) -> Any:
    """Airflow's ``trigger_dag`` with one DAG bag kept for the life of the process.

    ``trigger_dag`` builds a new ``DBDagBag`` (and deserializes the DAG again) at every call; the api-server's
    own REST endpoint keeps one. Passing one to ``_trigger_dag`` keeps webhook triggering at least as fast as
    Airflow's endpoint (see benchmarks/bench_webhook.py); the public function is the fallback.
    """
    global _dag_bag
    from airflow.api.common import trigger_dag as module

    private = getattr(module, "_trigger_dag", None)
    if private is None:
        return module.trigger_dag(dag_id, **kwargs)
    if _dag_bag is None:
        from airflow.models.dagbag import DBDagBag

        _dag_bag = DBDagBag()
    return private(dag_id, _dag_bag, **kwargs)


def trigger_job_run(
    job_id: str,
    *,
    triggered_by: str,
    payload: Any = None,
    run_id: str | None = None,
    user: str | None = None,
) -> TriggeredRun:
    """Create a queued DAG run of ``job_id`` and its ``job_executions`` row.

    :param job_id: the job's id
    :param triggered_by: ``webhook``, ``api``, ``manual`` or ``dependency``
    :param payload: JSON put into ``conf["payload"]`` (webhook bodies)
    :param run_id: a run id chosen by the caller (default: a fresh one, see :func:`new_run_id`)
    :param user: the user name recorded as the run's triggering user
    :raises JobTriggerError: when the DAG cannot be triggered
    """
    from airflow.exceptions import DagRunAlreadyExists
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from airflow.utils.types import DagRunTriggeredByType, DagRunType
    from sqlalchemy import select

    from muxly_provider.db.engine import get_engine
    from muxly_provider.executions.recorder import ExecutionUpdate, execution_id, upsert_execution

    dag_id = dag_id_for(job_id)
    run_id = run_id or new_run_id(triggered_by)
    conf: dict[str, Any] = {CONF_KEY: {"triggered_by": triggered_by, "job_id": job_id}}
    if payload is not None:
        conf["payload"] = payload
    with create_session() as session:
        model = session.scalar(select(DagModel).where(DagModel.dag_id == dag_id, ~DagModel.is_stale).limit(1))
        if model is None:
            raise JobTriggerError(
                409, "dag_not_found", f"job {job_id!r} has no DAG {dag_id} (see muxly jobs validate)"
            )
        if model.has_import_errors:
            raise JobTriggerError(409, "dag_broken", f"the DAG {dag_id} of job {job_id!r} has import errors")
        allowed = getattr(model, "allowed_run_types", None)
        if allowed is not None and DagRunType.MANUAL not in allowed:
            raise JobTriggerError(
                409, "dag_broken", f"the DAG {dag_id} of job {job_id!r} does not allow manual runs"
            )
        if model.is_paused:
            raise JobTriggerError(409, "dag_paused", f"the DAG {dag_id} of job {job_id!r} is paused")
        try:
            dag_run = _trigger(
                dag_id,
                triggered_by=DagRunTriggeredByType.REST_API,
                run_type=DagRunType.MANUAL,
                run_id=run_id,
                conf=conf,
                triggering_user_name=user,
                session=session,
            )
        except DagRunAlreadyExists as exc:
            raise JobTriggerError(409, "duplicate_run", f"run {run_id} of {dag_id} already exists") from exc
        except (ValueError, LookupError) as exc:
            raise JobTriggerError(409, "dag_broken", f"the DAG {dag_id} cannot be triggered: {exc}") from exc
        if dag_run is None:
            raise JobTriggerError(409, "dag_broken", f"the DAG {dag_id} cannot be triggered")
    upsert_execution(
        get_engine(),
        ExecutionUpdate(
            job_id=job_id,
            dag_id=dag_id,
            run_id=run_id,
            status="queued",
            start_time=datetime.now(UTC),
            attempt=1,
            triggered_by=triggered_by,
        ),
    )
    return TriggeredRun(dag_id=dag_id, run_id=run_id, execution_id=execution_id(dag_id, run_id))
