"""The jobs page of ``GET /jobs``: each job with its latest execution and next scheduled run, in one query.

The latest execution of every job on the page comes from the same statement as the jobs: a lateral join
(``ORDER BY start_time DESC, id DESC LIMIT 1`` per job, served by ``idx_job_executions_job_start``) on
PostgreSQL, a ``row_number()`` window on other databases (SQLite has no ``LATERAL``). The total comes from a
``count(*) OVER ()`` of the same statement, so filtering and sorting on the latest run (``last_status``,
``last_run_at``) cost one round trip. The next run is computed by Airflow's own ``CronTriggerTimetable`` (the
timetable the DAG factory gives the job's DAG), never by a parser of Muxly's.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, FromClause, Select, and_, asc, desc, func, or_, select, true
from sqlalchemy.orm import Session

from muxly_provider.db.models import metadata

JOBS = metadata.tables["scheduler_jobs"]
EXECUTIONS = metadata.tables["job_executions"]

NEVER = "never"
"""The ``last_status`` of a job that never ran."""


@dataclass(frozen=True)
class JobFilters:
    """What ``GET /jobs`` filters on (``None``: no filter).

    :param q: a case-insensitive substring of the job's id or name
    :param last_status: the status of the latest execution, or :data:`NEVER`
    """

    connector_id: str | None = None
    job_type: str | None = None
    action_type: str | None = None
    enabled: bool | None = None
    q: str | None = None
    last_status: str | None = None


def _latest_execution(dialect: str) -> tuple[FromClause, ColumnElement[bool]]:
    """The latest execution of each job, and the clause joining it to ``scheduler_jobs``."""
    runs = EXECUTIONS.alias("e")
    newest_first = (desc(runs.c.start_time), desc(runs.c.id))
    columns = (runs.c.id, runs.c.status, runs.c.start_time, runs.c.end_time, runs.c.result)
    if dialect == "postgresql":
        per_job = select(*columns).where(runs.c.job_id == JOBS.c.id).order_by(*newest_first).limit(1)
        return per_job.lateral("last_run"), true()
    ranked = select(
        runs.c.job_id,
        *columns,
        func.row_number().over(partition_by=runs.c.job_id, order_by=newest_first).label("rank"),
    ).subquery("ranked")
    latest = select(*(c for c in ranked.c if c.name != "rank")).where(ranked.c.rank == 1).subquery("last_run")
    return latest, latest.c.job_id == JOBS.c.id


def _where(filters: JobFilters, last: FromClause) -> list[ColumnElement[bool]]:
    clauses: list[ColumnElement[bool]] = []
    for column in ("connector_id", "job_type", "action_type", "enabled"):
        value = getattr(filters, column)
        if value is not None:
            clauses.append(JOBS.c[column] == value)
    if filters.q:
        clauses.append(
            or_(
                JOBS.c.id.icontains(filters.q, autoescape=True),
                JOBS.c.name.icontains(filters.q, autoescape=True),
            )
        )
    if filters.last_status == NEVER:
        clauses.append(last.c.id.is_(None))
    elif filters.last_status is not None:
        clauses.append(last.c.status == filters.last_status)
    return clauses


def jobs_page_query(
    dialect: str, filters: JobFilters, *, sort: str, order: str, limit: int, offset: int
) -> tuple[Select[Any], Select[Any]]:
    """The page statement (jobs' columns, ``last_*`` columns, ``total_rows``) and its count statement."""
    last, on = _latest_execution(dialect)
    source = JOBS.outerjoin(last, on)
    where = and_(true(), *_where(filters, last))
    direction = desc if order == "desc" else asc
    if sort == "last_run_at":
        keys = [direction(last.c.start_time).nulls_last(), asc(JOBS.c.id)]
    else:
        keys = [direction(JOBS.c[sort]), *([asc(JOBS.c.id)] if sort != "id" else [])]
    page = (
        select(
            *JOBS.c,
            last.c.id.label("last_id"),
            last.c.status.label("last_status"),
            last.c.start_time.label("last_start_time"),
            last.c.end_time.label("last_end_time"),
            last.c.result.label("last_result"),
            func.count().over().label("total_rows"),
        )
        .select_from(source)
        .where(where)
        .order_by(*keys)
        .limit(limit)
        .offset(offset)
    )
    count = select(func.count()).select_from(source).where(where)
    return page, count


def list_jobs_page(
    session: Session, filters: JobFilters, *, sort: str, order: str, limit: int, offset: int
) -> tuple[list[dict[str, Any]], int]:
    """One page of jobs (JSON columns parsed, ``last_*`` keys of :func:`jobs_page_query`) and the total."""
    from muxly_provider.config_io import parse_json_columns

    dialect = session.get_bind().dialect.name
    page, count = jobs_page_query(dialect, filters, sort=sort, order=order, limit=limit, offset=offset)
    rows = [dict(r) for r in session.execute(page).mappings()]
    # Past the last page the window had no row to count on: count apart.
    total = int(rows[0]["total_rows"]) if rows else int(session.execute(count).scalar_one())
    return [parse_json_columns(JOBS.name, r) for r in rows], total


def _as_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def _count(result: Mapping[str, Any], key: str) -> int:
    value = result.get(key)
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0


def last_execution(row: Mapping[str, Any]) -> dict[str, Any] | None:
    """The ``last_execution`` of a row of :func:`list_jobs_page` (counts from its ``result``), or ``None``."""
    if row.get("last_id") is None:
        return None
    result: Any = {}
    if row.get("last_result"):
        try:
            result = json.loads(str(row["last_result"]))
        except ValueError:
            result = {}
    if not isinstance(result, dict):
        result = {}
    error = result.get("error")
    return {
        "id": row["last_id"],
        "status": row["last_status"],
        "started_at": _as_utc(row["last_start_time"]),
        "finished_at": _as_utc(row["last_end_time"]),
        "records_extracted": _count(result, "records_in"),
        "records_delivered": _count(result, "delivered"),
        "records_dead_lettered": _count(result, "dead_lettered"),
        "error": None if error is None else str(error),
    }


@functools.lru_cache(maxsize=1024)
def _timetable(cron: str, timezone: str) -> Any:
    from airflow.timetables.trigger import CronTriggerTimetable

    return CronTriggerTimetable(cron, timezone=timezone)


def next_run_at(row: Mapping[str, Any], now: datetime | None = None) -> datetime | None:
    """When Airflow's timetable of the job's DAG fires next after ``now`` (``None``: disabled or unscheduled).

    :param row: a ``scheduler_jobs`` row, JSON columns parsed
    :param now: the reference time (default: now, UTC)
    """
    from airflow.timetables.base import TimeRestriction

    from muxly_provider.config.schedule import check_schedule, check_timezone

    if not row.get("enabled") or row.get("job_type") != "cron":
        return None
    params = row.get("action_params")
    timezone = params.get("timezone") if isinstance(params, Mapping) else None
    try:
        cron = check_schedule(row.get("schedule"))
        zone = check_timezone(str(timezone or "UTC"))
    except ValueError:  # a row the DAG factory skips has no DAG, so no next run
        return None
    import pendulum

    earliest = pendulum.instance(now) if now is not None else pendulum.now("UTC")
    info = _timetable(cron, zone).next_dagrun_info(
        last_automated_data_interval=None,
        restriction=TimeRestriction(earliest=earliest, latest=None, catchup=True),
    )
    if info is None or info.run_after is None:
        return None
    return datetime.fromtimestamp(info.run_after.timestamp(), tz=UTC)
