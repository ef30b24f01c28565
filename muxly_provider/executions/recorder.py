"""Write ``job_executions`` rows: one per Airflow DAG run, idempotent, merged from several writers.

The listener (scheduler, api-server, ``dag.test()``) writes the run's status, attempt, trigger and timing; the
operators merge their counts into ``result``. Both upsert the row whose id is derived from the DAG id and the
run id, so the same run never yields two rows whichever writer comes first.

Every upsert is a read-modify-write of ``result`` (delivery tasks finishing together each add their own
destination), so it runs in a transaction that holds the row's write lock from the read on:

- SQLite: ``BEGIN IMMEDIATE`` takes the database's write lock before the read (``SELECT ... FOR UPDATE`` is
  ignored there); other writers wait for it (the engine's busy timeout) instead of reading a stale ``result``.
- PostgreSQL: ``SELECT ... FOR UPDATE`` locks the row. Two writers that both find no row race on the insert:
  the loser gets an integrity error and merges into the winner's row on its next pass; a deadlock or a
  serialization failure also just runs the transaction again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, select, update
from sqlalchemy.exc import DBAPIError, IntegrityError

from muxly_provider.db.models import metadata

_NAMESPACE = uuid.UUID("6c1f8f5e-3a0b-4f55-9d0e-7b3c2f8e9a10")

FINAL_STATUSES = frozenset({"success", "failed"})

UPSERT_PASSES = 5
"""Transactions an upsert tries before it gives up (a lost insert race or a deadlock costs one)."""

# Deadlocks and serialization failures: the transaction was rolled back and can simply run again.
_PG_RETRY_CODES = frozenset({"40001", "40P01"})


def execution_id(dag_id: str, run_id: str) -> str:
    """The id of the ``job_executions`` row of a DAG run (a UUID derived from both ids)."""
    return str(uuid.uuid5(_NAMESPACE, f"{dag_id}\n{run_id}"))


def _naive_utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value


@dataclass(frozen=True)
class ExecutionUpdate:
    """What one writer knows about a run; ``None`` fields are left as they are.

    :param job_id: the job's id
    :param dag_id: the DAG id
    :param run_id: the DAG run id
    :param status: ``queued``, ``running``, ``success`` or ``failed``
    :param start_time: when the run started
    :param end_time: when it ended
    :param attempt: how many times the run has been started
    :param triggered_by: who started it (``schedule``, ``manual``, ``api``, ...), only when known for sure:
        it replaces the stored value; ``None`` keeps it (a new row then says ``manual`` until a writer knows)
    :param result: keys merged into the ``result`` JSON
    :param error_if_missing: an ``error`` for ``result`` unless an operator already recorded a better one
    :param clear_error: drop ``error`` from ``result`` (the run succeeded after a failed try)
    """

    job_id: str
    dag_id: str
    run_id: str
    status: str | None = None
    start_time: datetime | None = None
    end_time: datetime | None = None
    attempt: int | None = None
    triggered_by: str | None = None
    result: Mapping[str, Any] | None = None
    error_if_missing: str | None = None
    clear_error: bool = False


def _merge_result(current: str | None, update_: ExecutionUpdate) -> str:
    try:
        merged: dict[str, Any] = json.loads(current) if current else {}
        if not isinstance(merged, dict):
            merged = {}
    except ValueError:
        merged = {}
    incoming = dict(update_.result or {})
    if isinstance(incoming.get("destinations"), dict) and isinstance(merged.get("destinations"), dict):
        # Delivery tasks report one destination each: merge them, then recompute the run's totals.
        incoming["destinations"] = {**merged["destinations"], **incoming["destinations"]}
    merged.update(incoming)
    if update_.clear_error:
        # A retry that succeeded: the earlier try's error no longer describes the run.
        merged.pop("error", None)
    _recompute_totals(merged)
    if update_.error_if_missing and not merged.get("error"):
        merged["error"] = update_.error_if_missing
    merged["dag_id"] = update_.dag_id
    merged["run_id"] = update_.run_id
    return json.dumps(merged, sort_keys=True, default=str)


def _recompute_totals(result: dict[str, Any]) -> None:
    destinations = result.get("destinations")
    if not isinstance(destinations, dict) or not destinations:
        return
    counts = [d for d in destinations.values() if isinstance(d, dict)]
    for key in ("routed", "delivered", "lost"):
        if key in result:
            result[key] = sum(int(d.get(key, 0)) for d in counts)
    letters = result.get("dead_letters")
    if "routed" in result and isinstance(letters, dict):
        # A copy whose transformation failed was routed too, straight to the dead-letter path: with it the run
        # reads routed = delivered + dead_lettered + lost.
        result["routed"] += int(letters.get("transform", 0))
    if isinstance(letters, dict):
        letters["delivery"] = sum(int(d.get("dead_lettered", 0)) for d in counts)
        result["dead_lettered"] = int(letters.get("transform", 0)) + letters["delivery"]
    failed = sorted(name for name, d in destinations.items() if isinstance(d, dict) and d.get("error"))
    if failed:
        result["error"] = "delivery failed for destination(s) " + ", ".join(failed)
    elif str(result.get("error", "")).startswith("delivery failed for destination(s) "):
        result.pop("error")


def upsert_execution(engine: Engine, update_: ExecutionUpdate) -> str:
    """Create or update the run's row and return its id.

    A final status (``success``/``failed``) is never replaced by ``running`` from a late writer unless the
    attempt grows (a cleared run starting again), and ``queued`` only ever creates a row.
    """
    row_id = execution_id(update_.dag_id, update_.run_id)
    for _ in range(UPSERT_PASSES):
        try:
            with write_transaction(engine) as conn:
                table = metadata.tables["job_executions"]
                existing = (
                    conn.execute(select(table).where(table.c.id == row_id).with_for_update())
                    .mappings()
                    .first()
                )
                now = datetime.now(UTC).replace(tzinfo=None)
                if existing is None:
                    conn.execute(
                        table.insert().values(
                            id=row_id,
                            job_id=update_.job_id,
                            start_time=_naive_utc(update_.start_time) or now,
                            end_time=_naive_utc(update_.end_time),
                            status=update_.status or "queued",
                            result=_merge_result(None, update_),
                            attempt=update_.attempt or 1,
                            triggered_by=update_.triggered_by or "manual",
                            created_at=now,
                            updated_at=now,
                        )
                    )
                    return row_id
                values: dict[str, Any] = {
                    "updated_at": now,
                    "result": _merge_result(existing["result"], update_),
                }
                restarted = update_.attempt is not None and update_.attempt > existing["attempt"]
                if (
                    update_.status
                    and update_.status != "queued"
                    and (
                        restarted
                        or existing["status"] not in FINAL_STATUSES
                        or update_.status in FINAL_STATUSES
                    )
                ):
                    values["status"] = update_.status
                    if restarted and update_.status not in FINAL_STATUSES:
                        values["end_time"] = None
                if update_.attempt is not None:
                    values["attempt"] = max(update_.attempt, existing["attempt"])
                if update_.triggered_by:
                    values["triggered_by"] = update_.triggered_by
                if update_.start_time is not None and (restarted or existing["start_time"] is None):
                    values["start_time"] = _naive_utc(update_.start_time)
                if update_.end_time is not None:
                    values["end_time"] = _naive_utc(update_.end_time)
                conn.execute(update(table).where(table.c.id == row_id).values(**values))
                return row_id
        except IntegrityError:
            continue  # a concurrent writer inserted the row first: update it on the next pass
        except DBAPIError as exc:
            if not _must_retry(exc):
                raise
    raise RuntimeError(f"could not upsert job_executions row {row_id}")


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that commits on success, in which a ``SELECT ... FOR UPDATE`` really locks.

    On SQLite it starts with ``BEGIN IMMEDIATE`` (the database's write lock, taken before the first read);
    Python's ``sqlite3`` then sees the open transaction and neither opens another nor commits early.

    :param engine: Muxly's engine
    """
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("BEGIN IMMEDIATE")
        yield conn


def _must_retry(exc: DBAPIError) -> bool:
    """Whether ``exc`` is a PostgreSQL deadlock or serialization failure (psycopg2 or psycopg 3)."""
    code = getattr(exc.orig, "pgcode", None) or getattr(exc.orig, "sqlstate", None)
    return code in _PG_RETRY_CODES
