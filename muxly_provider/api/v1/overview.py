"""``/overview``: the Muxly start page in numbers: jobs by state, the last 24 hours of runs, failing jobs.

Reading it needs ``(jobs, read)`` and ``(executions, read)``: it shows both. A job is *failing* when it is
enabled and its latest execution failed (a disabled job no longer runs, whatever its last run did). Record
counts add up the ``records_in``, ``delivered`` and ``dead_lettered`` of the ``result`` of each run started in
the last 24 hours, in the database (a ``result`` that is not a JSON object counts nothing).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Annotated, Any, get_args

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import ColumnElement, Numeric, case, cast, func, select
from sqlalchemy.dialects.postgresql import JSON as PG_JSON
from sqlalchemy.orm import Session

from muxly_provider.api.v1.common import UtcDatetime
from muxly_provider.api.v1.executions import Status
from muxly_provider.api.v1.job_listing import EXECUTIONS, JOBS, JobFilters, last_execution, list_jobs_page
from muxly_provider.auth.dependencies import DbSession, require
from muxly_provider.auth.permissions import Principal

router = APIRouter(prefix="/overview", tags=["overview"])

FAILING_SHOWN = 50
"""The most failing jobs listed (``jobs.failing`` counts them all)."""

STATUSES: tuple[str, ...] = get_args(Status)
"""Every execution status (each one is a key of ``runs_24h``, zero when no run has it)."""


class JobCountsResponse(BaseModel):
    """How many jobs there are, by state."""

    total: int
    enabled: int
    disabled: int
    failing: int = Field(description="Enabled jobs whose latest execution failed")


class RecordCountsResponse(BaseModel):
    """Records of the runs started in the last 24 hours."""

    extracted: int
    delivered: int
    dead_lettered: int


class FailingJobResponse(BaseModel):
    """A failing job, with its failed run."""

    id: str
    name: str
    dag_id: str
    status: str
    finished_at: UtcDatetime | None
    error: str | None


class OverviewResponse(BaseModel):
    """The numbers of the overview page."""

    jobs: JobCountsResponse
    runs_24h: dict[str, int] = Field(description="Runs started in the last 24 hours, by status")
    records_24h: RecordCountsResponse
    failing_jobs: list[FailingJobResponse] = Field(description="Most recent failure first")


def _json_number(dialect: str, key: str) -> ColumnElement[Any]:
    """The number ``key`` of ``job_executions.result`` (``NULL`` when the result is not a JSON object)."""
    result = EXECUTIONS.c.result
    if dialect == "postgresql":
        value: ColumnElement[Any] = cast(func.json_extract_path_text(cast(result, PG_JSON), key), Numeric)
        return case((result.like("{%}"), value))
    return case((func.json_valid(result) == 1, func.json_extract(result, f"$.{key}")))


def _job_counts(session: Session) -> tuple[int, int]:
    enabled_one = case((JOBS.c.enabled.is_(True), 1), else_=0)
    total, enabled = session.execute(
        select(func.count(), func.coalesce(func.sum(enabled_one), 0)).select_from(JOBS)
    ).one()
    return int(total), int(enabled)


def _runs(session: Session, since: datetime) -> dict[str, int]:
    counts = dict.fromkeys(STATUSES, 0)
    rows = session.execute(
        select(EXECUTIONS.c.status, func.count())
        .where(EXECUTIONS.c.start_time >= since)
        .group_by(EXECUTIONS.c.status)
    ).all()
    for status, count in rows:
        counts[str(status)] = int(count)
    return counts


def _records(session: Session, since: datetime) -> dict[str, int]:
    dialect = session.get_bind().dialect.name
    keys = {"extracted": "records_in", "delivered": "delivered", "dead_lettered": "dead_lettered"}
    sums = session.execute(
        select(*(func.coalesce(func.sum(_json_number(dialect, key)), 0) for key in keys.values())).where(
            EXECUTIONS.c.start_time >= since
        )
    ).one()
    return {name: int(value or 0) for name, value in zip(keys, sums, strict=True)}


@router.get("", response_model=OverviewResponse, summary="Jobs, runs and records at a glance")
def get_overview(
    session: DbSession,
    _: Annotated[Principal, require("jobs", "read")],
    __: Annotated[Principal, require("executions", "read")],
) -> dict[str, Any]:
    """Jobs by state, runs and records of the last 24 hours, and the failing jobs (newest failure first)."""
    from muxly_provider.dag_factory.naming import dag_id_for

    since = datetime.now(UTC).replace(tzinfo=None) - timedelta(hours=24)  # stored as naive UTC
    total, enabled = _job_counts(session)
    failing, failing_total = list_jobs_page(
        session,
        JobFilters(enabled=True, last_status="failed"),
        sort="last_run_at",
        order="desc",
        limit=FAILING_SHOWN,
        offset=0,
    )
    failing_jobs = []
    for row in failing:
        run = last_execution(row) or {}
        failing_jobs.append(
            {
                "id": row["id"],
                "name": row["name"],
                "dag_id": dag_id_for(str(row["id"])),
                "status": run.get("status", "failed"),
                "finished_at": run.get("finished_at"),
                "error": run.get("error"),
            }
        )
    return {
        "jobs": {"total": total, "enabled": enabled, "disabled": total - enabled, "failing": failing_total},
        "runs_24h": _runs(session, since),
        "records_24h": _records(session, since),
        "failing_jobs": failing_jobs,
    }
