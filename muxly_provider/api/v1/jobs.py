"""``/jobs``: scheduler jobs (each enabled job is a DAG ``muxly__<id>``); enable, disable, run now, executions."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from muxly_provider.api.errors import MuxlyHTTPError
from muxly_provider.api.v1 import crud
from muxly_provider.api.v1.common import (
    Id,
    Limit,
    Offset,
    Order,
    Page,
    StrictRequest,
    Timestamps,
    UtcDatetime,
    invalid,
    not_found,
)
from muxly_provider.api.v1.executions import ExecutionResponse, ExecutionSort, Status, list_executions_page
from muxly_provider.auth.dependencies import DbSession, require
from muxly_provider.auth.permissions import Principal
from muxly_provider.db.snapshot import CONFIG_TABLES, ConfigSnapshot

TABLE = "scheduler_jobs"
KIND = "job"

router = APIRouter(prefix="/jobs", tags=["jobs"])

JobType = Literal["cron", "webhook", "manual"]
ActionType = Literal["sync", "query", "export", "pipeline"]
Backoff = Literal["exponential", "linear", "fixed"]
LastStatus = Literal["queued", "running", "success", "failed", "never"]


class JobCreateRequest(StrictRequest):
    """A new job."""

    id: Id | None = None
    name: str = Field(min_length=1, max_length=500)
    job_type: JobType
    schedule: str | None = Field(default=None, max_length=200, description="cron expression or @daily, ...")
    connector_id: str = Field(min_length=1, max_length=200)
    action_type: ActionType
    action_params: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True
    max_retries: int = Field(default=3, ge=0, le=100)
    backoff_strategy: Backoff = "exponential"
    timeout_seconds: int = Field(default=300, ge=1, le=7 * 24 * 3600)


class JobUpdateRequest(StrictRequest):
    """Changes to a job."""

    name: str | None = Field(default=None, min_length=1, max_length=500)
    job_type: JobType | None = None
    schedule: str | None = Field(default=None, max_length=200)
    connector_id: str | None = Field(default=None, min_length=1, max_length=200)
    action_type: ActionType | None = None
    action_params: dict[str, Any] | None = None
    enabled: bool | None = None
    max_retries: int | None = Field(default=None, ge=0, le=100)
    backoff_strategy: Backoff | None = None
    timeout_seconds: int | None = Field(default=None, ge=1, le=7 * 24 * 3600)


class JobResponse(Timestamps):
    """A job as the API shows it, with the id of its DAG."""

    id: str
    name: str
    job_type: str
    schedule: str | None
    connector_id: str
    action_type: str
    action_params: dict[str, Any]
    enabled: bool
    max_retries: int
    backoff_strategy: str
    timeout_seconds: int
    dag_id: str


class LastExecutionResponse(BaseModel):
    """The latest execution of a job, with its record counts (from ``result``)."""

    id: str
    status: str
    started_at: UtcDatetime
    finished_at: UtcDatetime | None
    records_extracted: int
    records_delivered: int
    records_dead_lettered: int
    error: str | None


class JobListItemResponse(JobResponse):
    """A job of the list, with its latest execution and the next run of its DAG's timetable."""

    last_execution: LastExecutionResponse | None
    next_run_at: UtcDatetime | None = Field(
        description="The next scheduled run (null: disabled, or not a cron job)"
    )


class JobRunRequest(StrictRequest):
    """A manual run; ``payload`` lands in the run's ``conf["payload"]``."""

    payload: Any = None


class JobRunResponse(BaseModel):
    """A queued run."""

    job_id: str
    dag_id: str
    run_id: str
    execution_id: str


def job_dict(row: dict[str, Any]) -> dict[str, Any]:
    """A job as the API shows it: the row with the id of its DAG."""
    from muxly_provider.dag_factory.naming import dag_id_for

    return {**row, "dag_id": dag_id_for(str(row["id"]))}


def _snapshot(session: Session) -> ConfigSnapshot:
    """The configuration as this transaction sees it (including its own unflushed-then-flushed writes)."""
    from muxly_provider.db.models import metadata

    snapshot = ConfigSnapshot()
    for name in CONFIG_TABLES:
        snapshot.tables[name] = [dict(r) for r in session.execute(select(metadata.tables[name])).mappings()]
    return snapshot


def _check_dag(session: Session, job_id: str) -> None:
    """Raise a ``422`` when the (enabled) job just written cannot become a DAG."""
    from muxly_provider.dag_factory.specs import build_job_specs

    _, problems = build_job_specs(_snapshot(session))
    for problem in problems:
        if problem.job_id == job_id:
            raise invalid(problem.field, problem.reason)


@router.get("", response_model=Page[JobListItemResponse], summary="List jobs with their latest run")
def list_jobs(
    session: DbSession,
    _: Annotated[Principal, require("jobs", "read")],
    limit: Limit = 100,
    offset: Offset = 0,
    sort: Annotated[
        Literal["id", "name", "job_type", "action_type", "created_at", "updated_at", "last_run_at"], Query()
    ] = "id",
    order: Order = "asc",
    connector_id: Annotated[str | None, Query(max_length=200)] = None,
    job_type: JobType | None = None,
    action_type: ActionType | None = None,
    enabled: bool | None = None,
    q: Annotated[
        str | None, Query(min_length=1, max_length=200, description="A substring of the id or the name")
    ] = None,
    last_status: Annotated[
        LastStatus | None, Query(description="The status of the latest execution ('never': no run yet)")
    ] = None,
) -> dict[str, Any]:
    """Jobs with their latest execution and next scheduled run (``last_run_at`` sorts never-run jobs last)."""
    from muxly_provider.api.v1.job_listing import JobFilters, last_execution, list_jobs_page, next_run_at

    filters = JobFilters(
        connector_id=connector_id,
        job_type=job_type,
        action_type=action_type,
        enabled=enabled,
        q=q,
        last_status=last_status,
    )
    rows, total = list_jobs_page(session, filters, sort=sort, order=order, limit=limit, offset=offset)
    items = [
        {
            **job_dict(crud.public(TABLE, row)),
            "last_execution": last_execution(row),
            "next_run_at": next_run_at(row),
        }
        for row in rows
    ]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.post("", response_model=JobResponse, status_code=201, summary="Create a job (it becomes a DAG)")
def create_job(
    body: JobCreateRequest, session: DbSession, _: Annotated[Principal, require("jobs", "create")]
) -> dict[str, Any]:
    row = crud.create(session, TABLE, KIND, body.model_dump())
    _check_dag(session, str(row["id"]))
    return job_dict(row)


@router.get("/{job_id}", response_model=JobResponse, summary="Get a job")
def get_job(
    job_id: str, session: DbSession, _: Annotated[Principal, require("jobs", "read")]
) -> dict[str, Any]:
    return job_dict(crud.get(session, TABLE, KIND, job_id))


@router.patch("/{job_id}", response_model=JobResponse, summary="Change a job")
def update_job(
    job_id: str,
    body: JobUpdateRequest,
    session: DbSession,
    _: Annotated[Principal, require("jobs", "update")],
) -> dict[str, Any]:
    row = crud.update(session, TABLE, KIND, job_id, body.model_dump(exclude_unset=True))
    _check_dag(session, job_id)
    return job_dict(row)


@router.delete("/{job_id}", status_code=204, summary="Delete a job (its DAG disappears at the next parse)")
def delete_job(
    job_id: str, session: DbSession, _: Annotated[Principal, require("jobs", "delete")]
) -> Response:
    crud.remove(session, TABLE, KIND, job_id)
    return Response(status_code=204)


def _set_enabled(session: Session, job_id: str, enabled: bool) -> dict[str, Any]:
    row = crud.update(session, TABLE, KIND, job_id, {"enabled": enabled})
    if enabled:
        _check_dag(session, job_id)
    return job_dict(row)


@router.post("/{job_id}/enable", response_model=JobResponse, summary="Enable a job (its DAG appears)")
def enable_job(
    job_id: str, session: DbSession, _: Annotated[Principal, require("jobs", "update")]
) -> dict[str, Any]:
    return _set_enabled(session, job_id, True)


@router.post("/{job_id}/disable", response_model=JobResponse, summary="Disable a job (its DAG disappears)")
def disable_job(
    job_id: str, session: DbSession, _: Annotated[Principal, require("jobs", "update")]
) -> dict[str, Any]:
    return _set_enabled(session, job_id, False)


@router.post("/{job_id}/run", response_model=JobRunResponse, status_code=202, summary="Run a job now")
def run_job(
    job_id: str,
    session: DbSession,
    principal: Annotated[Principal, require("jobs", "execute")],
    body: JobRunRequest | None = None,
) -> JobRunResponse:
    """Queue a DAG run of the job (``409`` when its DAG is missing, paused or broken)."""
    from muxly_provider.executions.start_run import JobTriggerError, trigger_job_run

    stored = crud.load_row(session, TABLE, job_id)
    if stored is None:
        raise not_found(KIND, job_id)
    if not stored["enabled"]:
        raise MuxlyHTTPError(409, "job_disabled", f"job {job_id!r} is disabled: enable it first")
    session.commit()  # end this transaction: the trigger writes the execution row through its own connection
    try:
        run = trigger_job_run(
            job_id,
            triggered_by="api",
            payload=body.payload if body is not None else None,
            user=principal.username,
        )
    except JobTriggerError as exc:
        raise MuxlyHTTPError(exc.status_code, exc.code, exc.message) from None
    return JobRunResponse(job_id=job_id, dag_id=run.dag_id, run_id=run.run_id, execution_id=run.execution_id)


@router.get("/{job_id}/executions", response_model=Page[ExecutionResponse], summary="List a job's executions")
def list_job_executions(
    job_id: str,
    session: DbSession,
    _: Annotated[Principal, require("executions", "read")],
    limit: Limit = 100,
    offset: Offset = 0,
    sort: Annotated[ExecutionSort, Query()] = "start_time",
    order: Order = "desc",
    status: Status | None = None,
    started_after: datetime | None = None,
    started_before: datetime | None = None,
) -> dict[str, Any]:
    if crud.load_row(session, TABLE, job_id) is None:
        raise not_found(KIND, job_id)
    return list_executions_page(
        session,
        job_id=job_id,
        status=status,
        triggered_by=None,
        started_after=started_after,
        started_before=started_before,
        sort=sort,
        order=order,
        limit=limit,
        offset=offset,
    )
