"""``/executions``: job executions (one per DAG run), read-only, filtered by job, status, trigger and time."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import ColumnElement, and_, asc, desc, func, select
from sqlalchemy.orm import Session

from muxly_provider.api.v1.common import Limit, Offset, Order, Page, UtcDatetime, not_found
from muxly_provider.auth.dependencies import DbSession, require
from muxly_provider.auth.permissions import Principal
from muxly_provider.db.models import JobExecution

router = APIRouter(prefix="/executions", tags=["executions"])

Status = Literal["queued", "running", "success", "failed"]
TriggeredBy = Literal["schedule", "manual", "api", "webhook", "dependency", "backfill"]
ExecutionSort = Literal["start_time", "end_time", "created_at", "updated_at", "id", "status"]


class ExecutionResponse(BaseModel):
    """One run of a job, mirrored from Airflow."""

    id: str
    job_id: str
    status: str
    start_time: UtcDatetime
    end_time: UtcDatetime | None
    attempt: int
    triggered_by: str
    result: Any = None
    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None


def execution_dict(row: JobExecution) -> dict[str, Any]:
    """An execution as the API shows it (``result`` parsed)."""
    result: Any = None
    if row.result:
        try:
            result = json.loads(row.result)
        except ValueError:
            result = {"raw": row.result}
    return {
        "id": row.id,
        "job_id": row.job_id,
        "status": row.status,
        "start_time": row.start_time,
        "end_time": row.end_time,
        "attempt": row.attempt,
        "triggered_by": row.triggered_by,
        "result": result,
        "created_at": row.created_at,
        "updated_at": row.updated_at,
    }


def list_executions_page(
    session: Session,
    *,
    job_id: str | None,
    status: str | None,
    triggered_by: str | None,
    started_after: datetime | None,
    started_before: datetime | None,
    sort: str,
    order: str,
    limit: int,
    offset: int,
) -> dict[str, Any]:
    """A page of executions matching the filters (times compared as naive UTC)."""
    clauses: list[ColumnElement[bool]] = []
    if job_id is not None:
        clauses.append(JobExecution.job_id == job_id)
    if status is not None:
        clauses.append(JobExecution.status == status)
    if triggered_by is not None:
        clauses.append(JobExecution.triggered_by == triggered_by)
    if started_after is not None:
        clauses.append(JobExecution.start_time >= _naive(started_after))
    if started_before is not None:
        clauses.append(JobExecution.start_time < _naive(started_before))
    where = and_(True, *clauses)
    total = int(session.execute(select(func.count()).select_from(JobExecution).where(where)).scalar_one())
    column = getattr(JobExecution, sort)
    direction = desc if order == "desc" else asc
    rows = session.scalars(
        select(JobExecution)
        .where(where)
        .order_by(direction(column), asc(JobExecution.id))
        .limit(limit)
        .offset(offset)
    ).all()
    return {"items": [execution_dict(r) for r in rows], "total": total, "limit": limit, "offset": offset}


def _naive(value: datetime) -> datetime:
    from datetime import UTC

    return value.astimezone(UTC).replace(tzinfo=None) if value.tzinfo else value


@router.get("", response_model=Page[ExecutionResponse], summary="List job executions")
def list_executions(
    session: DbSession,
    _: Annotated[Principal, require("executions", "read")],
    limit: Limit = 100,
    offset: Offset = 0,
    sort: Annotated[ExecutionSort, Query()] = "start_time",
    order: Order = "desc",
    job_id: Annotated[str | None, Query(max_length=200)] = None,
    status: Status | None = None,
    triggered_by: TriggeredBy | None = None,
    started_after: Annotated[
        datetime | None, Query(description="Only runs started at or after (UTC)")
    ] = None,
    started_before: Annotated[datetime | None, Query(description="Only runs started before (UTC)")] = None,
) -> dict[str, Any]:
    return list_executions_page(
        session,
        job_id=job_id,
        status=status,
        triggered_by=triggered_by,
        started_after=started_after,
        started_before=started_before,
        sort=sort,
        order=order,
        limit=limit,
        offset=offset,
    )


@router.get("/{execution_id}", response_model=ExecutionResponse, summary="Get a job execution")
def get_execution(
    execution_id: str, session: DbSession, _: Annotated[Principal, require("executions", "read")]
) -> dict[str, Any]:
    row = session.get(JobExecution, execution_id)
    if row is None:
        raise not_found("execution", execution_id)
    return execution_dict(row)
