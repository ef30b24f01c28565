"""Fill in ``job_executions`` from Airflow's run history: rows the listener missed while Muxly's DB was down.

``airflow muxly executions reconcile`` reads the ``DagRun`` rows of Muxly's DAGs (``muxly__*``) through Airflow's
ORM and compares each with its ``job_executions`` row. A row is rewritten when it is missing, or when it disagrees
with Airflow on what the listener writes: the status of a running or finished run, the end time of a finished
run (more than :data:`END_TIME_TOLERANCE` apart), the attempt, or a known ``triggered_by``. The rewrite goes
through the listener's own mapping (:func:`~muxly_provider.executions.dag_runs.execution_update`) and the
recorder's merge, so counts the operators recorded are kept. Queued runs are left alone (nothing to mirror yet).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, select

from muxly_provider.executions.dag_runs import DagRunFacts, execution_update
from muxly_provider.executions.recorder import FINAL_STATUSES, execution_id, upsert_execution

END_TIME_TOLERANCE = timedelta(seconds=1)
"""The listener may record "now" a moment before Airflow stores the run's end: closer than this agrees."""

DEFAULT_SINCE = timedelta(days=7)
MIRRORED_STATES = ("running", "success", "failed")
_CHUNK = 500


@dataclass(frozen=True)
class Reconciled:
    """What reconcile did (or would do) for one DAG run.

    :param action: ``create`` (no row), ``update`` (the row disagreed), ``skip`` (no job row for the DAG)
    :param reason: what disagreed, e.g. ``status running -> success``
    """

    action: str
    reason: str
    job_id: str | None
    dag_id: str
    run_id: str
    execution_id: str
    status_before: str | None
    status_after: str | None
    end_time_before: str | None
    end_time_after: str | None

    def as_dict(self) -> dict[str, Any]:
        """The JSON form (``--output-format json``)."""
        return asdict(self)


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _iso(value: datetime | None) -> str | None:
    value = _utc(value)
    return value.isoformat() if value is not None else None


def parse_since(text: str | None, now: datetime | None = None) -> datetime:
    """``--since`` as an aware UTC date-time (a naive value is UTC); the last 7 days when empty.

    :raises ValueError: naming the value when it is not an ISO date or date-time
    """
    if not text:
        return (now or datetime.now(UTC)) - DEFAULT_SINCE
    try:
        parsed = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"--since {text!r} is not an ISO date-time (e.g. 2026-12-01T00:00:00Z)") from None
    result = _utc(parsed)
    assert result is not None
    return result


def airflow_runs(since: datetime, job_id: str | None = None) -> list[DagRunFacts]:
    """Muxly's DAG runs in Airflow's database that started (or were due) at or after ``since``, oldest first.

    Reads Airflow's ORM: only where it is allowed (the CLI, the scheduler, the api-server; not in a task).

    :param since: the earliest start
    :param job_id: only this job's runs
    """
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import func

    from muxly_provider.dag_factory.naming import DAG_ID_PREFIX, dag_id_for

    started = func.coalesce(DagRun.start_date, DagRun.run_after)
    query = select(DagRun).where(started >= since, DagRun.state.in_(MIRRORED_STATES))
    if job_id is not None:
        query = query.where(DagRun.dag_id == dag_id_for(job_id))
    else:
        query = query.where(DagRun.dag_id.like(DAG_ID_PREFIX.replace("_", "\\_") + "%", escape="\\"))
    with create_session() as session:
        return [DagRunFacts.of(run) for run in session.scalars(query.order_by(started, DagRun.id))]


def _rows(engine: Engine, ids: Sequence[str]) -> dict[str, dict[str, Any]]:
    from muxly_provider.db.models import metadata

    table = metadata.tables["job_executions"]
    found: dict[str, dict[str, Any]] = {}
    with engine.connect() as conn:
        for start in range(0, len(ids), _CHUNK):
            chunk = list(ids[start : start + _CHUNK])
            for row in conn.execute(select(table).where(table.c.id.in_(chunk))).mappings():
                found[str(row["id"])] = dict(row)
    return found


def disagreement(row: dict[str, Any] | None, run: DagRunFacts) -> str | None:
    """What the row says differently from Airflow's run (``None`` when it agrees).

    :param row: the ``job_executions`` row, ``None`` when there is none
    :param run: Airflow's run
    """
    if row is None:
        return "missing"
    reasons: list[str] = []
    status = run.state
    if status in FINAL_STATUSES:
        if row["status"] != status:
            reasons.append(f"status {row['status']} -> {status}")
        ends = _utc(row["end_time"]), _utc(run.end_date)
        if ends[1] is not None and (ends[0] is None or abs(ends[0] - ends[1]) > END_TIME_TOLERANCE):
            reasons.append(f"end_time {_iso(ends[0])} -> {_iso(ends[1])}")
    elif (
        status == "running"
        and row["status"] != "running"
        and (row["status"] == "queued" or int(row["attempt"] or 0) < run.attempt)
    ):
        reasons.append(f"status {row['status']} -> running")
    if int(row["attempt"] or 0) < run.attempt:
        reasons.append(f"attempt {row['attempt']} -> {run.attempt}")
    if run.triggered_by is not None and row["triggered_by"] != run.triggered_by:
        reasons.append(f"triggered_by {row['triggered_by']} -> {run.triggered_by}")
    return ", ".join(reasons) or None


def reconcile(engine: Engine, runs: Iterable[DagRunFacts], *, dry_run: bool = False) -> list[Reconciled]:
    """Upsert the rows of ``runs`` that are missing or disagree; what changed (or would), runs that agree omitted.

    :param engine: Muxly's engine
    :param runs: Airflow's runs (:func:`airflow_runs`)
    :param dry_run: report only, write nothing
    """
    from muxly_provider.dag_factory.naming import job_id_for_dag_id

    runs = [run for run in runs if run.state in MIRRORED_STATES]
    ids = [execution_id(run.dag_id, run.run_id) for run in runs]
    before = _rows(engine, ids)
    jobs: dict[str, str | None] = {}
    changes: list[Reconciled] = []
    written: list[str] = []
    for run, row_id in zip(runs, ids, strict=True):
        row = before.get(row_id)
        reason = disagreement(row, run)
        if reason is None:
            continue
        if run.dag_id not in jobs:
            jobs[run.dag_id] = job_id_for_dag_id(engine, run.dag_id)
        job_id = jobs[run.dag_id]
        if job_id is None:
            action, reason = "skip", f"{reason}; no job row has DAG id {run.dag_id}"
        else:
            action = "create" if row is None else "update"
            if not dry_run:
                upsert_execution(engine, execution_update(run, job_id, str(run.state)))
                written.append(row_id)
        changes.append(
            Reconciled(
                action=action,
                reason=reason,
                job_id=job_id,
                dag_id=run.dag_id,
                run_id=run.run_id,
                execution_id=row_id,
                status_before=None if row is None else str(row["status"]),
                status_after=str(run.state) if action != "skip" else None,
                end_time_before=None if row is None else _iso(row["end_time"]),
                end_time_after=_iso(run.end_date) if run.state in FINAL_STATUSES else None,
            )
        )
    if written:
        # Report what the rows say now (the recorder's merge decides, e.g. keeps a newer final status).
        after = _rows(engine, written)
        changes = [
            Reconciled(
                **{
                    **c.as_dict(),
                    "status_after": str(after[c.execution_id]["status"]),
                    "end_time_after": _iso(after[c.execution_id]["end_time"]),
                }
            )
            if c.execution_id in after
            else c
            for c in changes
        ]
    return changes
