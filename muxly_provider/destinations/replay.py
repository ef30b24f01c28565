"""Re-drive stored dead letters: list them, show one, replay them to their destination (or another one).

Shared by ``airflow muxly dead-letters ...`` and ``/muxly/api/v1/dead-letters``.

A replay of one letter (:func:`replay_letter`):

1. **claims** the letter with a compare-and-set: ``UPDATE ... SET replay_claim = <token> WHERE id = ... AND
   replayed_at IS NULL AND (replay_claim IS NULL OR replay_claimed_at < now - REPLAY_CLAIM_TIMEOUT)``. Only
   one replay can win; a letter already replayed answers ``already_replayed`` and one being replayed
   ``in_progress``, without delivering anything;
2. **delivers** the letter's records through the destination's own class (batches of its ``batch_size``, its
   ``retry_count`` and backoff, then ``commit``), as a run would, under a run id derived from the letter
   (``replay__<letter id>``): destinations that name their output after the run (file names, S3 keys) or
   upsert by key write the same output again when a letter is replayed again, never a second copy;
3. **marks** the outcome in one statement guarded by the claim token: ``replayed_at``, ``replayed_to`` and
   ``replay_attempts`` on success; on failure the letter stays un-replayed with ``replay_error`` set, so it can
   be replayed later.

A claim whose replayer died (the process was killed between delivery and marking) is taken over after
:data:`REPLAY_CLAIM_TIMEOUT`; the deterministic run id then keeps idempotent destinations exact. Destinations
that are not idempotent (webhook, email, Slack, Prometheus) may receive a letter twice only in that case, or
when a replay failed after some of its batches were sent.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy import ColumnElement, Engine

from muxly_provider.destinations.base import (
    DestinationContext,
    MuxlyDestination,
    RunInfo,
    redact,
    secret_fragments,
)
from muxly_provider.exceptions import MuxlyConfigError, MuxlyError

log = logging.getLogger(__name__)

REPLAY_CLAIM_TIMEOUT = timedelta(minutes=15)
"""How long a replay may hold its claim on a letter before another replay may take the letter over."""


ReplayStatus = Literal["replayed", "already_replayed", "in_progress", "failed", "not_found"]

SUMMARY_COLUMNS = (
    "id",
    "job_id",
    "dag_id",
    "run_id",
    "destination_id",
    "batch_index",
    "record_count",
    "error",
    "created_at",
    "updated_at",
    "replayed_at",
    "replayed_to",
    "replay_error",
    "replay_attempts",
)
"""The columns of a letter in lists (everything but the records and the claim)."""


@dataclass(frozen=True)
class DeadLetterFilter:
    """Which letters to list or replay (``None``: any)."""

    job_id: str | None = None
    dag_id: str | None = None
    run_id: str | None = None
    destination_id: str | None = None
    replayed: bool | None = None

    def is_empty(self) -> bool:
        """Whether no filter is set (every letter matches)."""
        return all(value is None for value in asdict(self).values())


@dataclass(frozen=True)
class ReplayResult:
    """What a replay did with one letter.

    :param id: the letter
    :param status: ``replayed``, ``already_replayed``, ``in_progress``, ``failed`` or ``not_found``
    :param destination_id: where it went (or was meant to go)
    :param delivered: records delivered by this replay
    :param error: why it failed (names the destination, holds no secret)
    """

    id: str
    status: ReplayStatus
    destination_id: str | None = None
    delivered: int = 0
    error: str | None = None


def _table(name: str = "dead_letters") -> sa.Table:
    from muxly_provider.db.models import metadata

    return metadata.tables[name]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def _where(filters: DeadLetterFilter) -> ColumnElement[bool]:
    t = _table()
    clauses: list[ColumnElement[bool]] = [
        t.c[column] == value
        for column, value in asdict(filters).items()
        if column != "replayed" and value is not None
    ]
    if filters.replayed is not None:
        clauses.append(t.c.replayed_at.is_not(None) if filters.replayed else t.c.replayed_at.is_(None))
    return sa.and_(sa.true(), *clauses)


def list_letters(
    conn: sa.Connection, filters: DeadLetterFilter, *, limit: int = 100, offset: int = 0
) -> tuple[list[dict[str, Any]], int]:
    """A page of letters matching ``filters``, newest first (without their records), and the total."""
    t = _table()
    where = _where(filters)
    total = int(conn.execute(sa.select(sa.func.count()).select_from(t).where(where)).scalar_one())
    query = (
        sa.select(*(t.c[c] for c in SUMMARY_COLUMNS))
        .where(where)
        .order_by(t.c.created_at.desc(), t.c.dag_id, t.c.run_id, t.c.destination_id, t.c.batch_index)
        .limit(limit)
        .offset(offset)
    )
    return [dict(row) for row in conn.execute(query).mappings()], total


def get_letter(conn: sa.Connection, letter_id: str) -> dict[str, Any] | None:
    """One letter with its records parsed (``None`` when there is none of that id)."""
    t = _table()
    columns = (*SUMMARY_COLUMNS, "records")
    row = conn.execute(sa.select(*(t.c[c] for c in columns)).where(t.c.id == letter_id)).mappings().first()
    if row is None:
        return None
    letter = dict(row)
    try:
        letter["records"] = json.loads(letter["records"])
    except (TypeError, ValueError):
        raise MuxlyConfigError(
            "dead_letters", letter_id, "records", "JSON text of the letter's records"
        ) from None
    return letter


def destination_context(engine: Engine, destination_id: str) -> DestinationContext:
    """The destination ``destination_id`` ready to write (validated, secrets decrypted).

    :raises MuxlyConfigError: when it does not exist, is disabled or is not valid
    """
    from muxly_provider.config.validation import validate_row
    from muxly_provider.db.snapshot import load_snapshot
    from muxly_provider.runtime.loading import decrypted_row

    row = load_snapshot(engine, tables=("destinations",)).by_id("destinations").get(destination_id)
    if row is None:
        raise MuxlyConfigError("destinations", destination_id, "id", "an existing destination")
    if not row["enabled"]:
        raise MuxlyConfigError(
            "destinations", destination_id, "enabled", "an enabled destination to replay to"
        )
    validate_row("destinations", row)
    dest = decrypted_row("destinations", row)
    return DestinationContext(
        id=destination_id,
        name=str(dest["name"]),
        destination_type=str(dest["destination_type"]),
        config=dest.get("config") or {},
    )


def _claim(engine: Engine, letter_id: str, token: str) -> bool:
    t = _table()
    now = _now()
    claim = (
        sa.update(t)
        .where(
            t.c.id == letter_id,
            t.c.replayed_at.is_(None),
            sa.or_(t.c.replay_claim.is_(None), t.c.replay_claimed_at < now - REPLAY_CLAIM_TIMEOUT),
        )
        .values(replay_claim=token, replay_claimed_at=now)
    )
    with engine.begin() as conn:
        return bool(conn.execute(claim).rowcount == 1)


def _finish(engine: Engine, letter_id: str, token: str, destination_id: str, error: str | None) -> None:
    t = _table()
    now = _now()
    values: dict[str, Any] = {
        "replay_claim": None,
        "replay_claimed_at": None,
        "replay_attempts": t.c.replay_attempts + 1,
        "replay_error": error,
        "updated_at": now,
    }
    if error is None:
        values.update(replayed_at=now, replayed_to=destination_id)
    with engine.begin() as conn:
        conn.execute(sa.update(t).where(t.c.id == letter_id, t.c.replay_claim == token).values(**values))


def _deliver(destination: MuxlyDestination, records: list[dict[str, Any]]) -> None:
    """Write ``records`` in the destination's batches with its retries, then commit (abort on failure)."""
    from muxly_provider.destinations.batch_retries import write_with_retries

    size = destination.batch_size
    try:
        for index, start in enumerate(range(0, len(records), size)):
            result = write_with_retries(destination, records[start : start + size], index)
            if result.error is not None:
                raise result.error
        destination.commit()
    except BaseException:
        destination.abort()
        raise


def replay_letter(engine: Engine, letter_id: str, to_destination: str | None = None) -> ReplayResult:
    """Replay one letter (see the module docstring); never raises for a delivery failure.

    :param engine: Muxly's engine
    :param letter_id: the ``dead_letters`` id
    :param to_destination: deliver here instead of the letter's own destination
    """
    from muxly_provider.destinations.registry import get_destination_class

    jobs = _table("scheduler_jobs")
    token = uuid.uuid4().hex
    if not _claim(engine, letter_id, token):
        with engine.connect() as conn:
            letter = get_letter(conn, letter_id)
        if letter is None:
            return ReplayResult(letter_id, "not_found", to_destination)
        status: ReplayStatus = "already_replayed" if letter["replayed_at"] is not None else "in_progress"
        return ReplayResult(letter_id, status, letter["replayed_to"] or to_destination)
    with engine.connect() as conn:
        letter = get_letter(conn, letter_id)
        if letter is None:  # a re-run of its DAG run delivered the batch and deleted the letter meanwhile
            return ReplayResult(letter_id, "not_found", to_destination)
        job = conn.execute(sa.select(jobs.c.connector_id).where(jobs.c.id == letter["job_id"])).first()
    target = to_destination or str(letter["destination_id"])
    created: datetime = letter["created_at"]
    run = RunInfo(
        dag_id=str(letter["dag_id"]),
        run_id=f"replay__{letter_id}",
        job_id=str(letter["job_id"]),
        connector_id=str(job[0]) if job is not None else "",
        logical_date=created.replace(tzinfo=UTC) if created.tzinfo is None else created,
    )
    error: str | None = None
    context: DestinationContext | None = None
    try:
        context = destination_context(engine, target)
        _deliver(get_destination_class(context.destination_type)(context, run), letter["records"])
    except MuxlyError as exc:
        error = str(exc)
    except Exception as exc:  # a library error: named, with the destination's secrets redacted
        error = f"destination {target!r}: {type(exc).__name__}: {exc}"
    if error is not None and context is not None:
        error = redact(error, secret_fragments(context.config))
    _finish(engine, letter_id, token, target, error)
    if error is not None:
        log.warning("Muxly: replay of dead letter %s to %s failed: %s", letter_id, target, error)
        return ReplayResult(letter_id, "failed", target, 0, error)
    return ReplayResult(letter_id, "replayed", target, int(letter["record_count"]))


def matching_ids(engine: Engine, filters: DeadLetterFilter, limit: int) -> list[str]:
    """The ids of up to ``limit`` un-replayed letters matching ``filters``, oldest first."""
    t = _table()
    query = (
        sa.select(t.c.id)
        .where(_where(filters), t.c.replayed_at.is_(None))
        .order_by(t.c.created_at, t.c.dag_id, t.c.run_id, t.c.destination_id, t.c.batch_index)
        .limit(limit)
    )
    with engine.connect() as conn:
        return [str(row[0]) for row in conn.execute(query)]


def replay_letters(
    engine: Engine, letter_ids: Sequence[str], to_destination: str | None = None
) -> list[ReplayResult]:
    """Replay several letters one by one (each one its own claim and outcome).

    :raises MuxlyConfigError: when ``to_destination`` is given and cannot be written to (checked first)
    """
    if to_destination is not None:
        destination_context(engine, to_destination)
    return [replay_letter(engine, letter_id, to_destination) for letter_id in dict.fromkeys(letter_ids)]
