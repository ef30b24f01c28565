"""The dead-letter store: batches a destination could not take after its retries, kept with their error.

Two stores exist:

* the table ``dead_letters`` of Muxly's database (:class:`TableDeadLetterStore`, the default): one row per failed
  batch of a destination in a run, with the records as a JSON list and the error. The row id is derived from
  the DAG id, the run id, the destination id and the batch number, so a retried run overwrites its own rows,
  and when a retry delivers a batch, :meth:`TableDeadLetterStore.resolve` deletes the row it left before;
* a configured destination: the route's ``error_handling.dead_letter_destination_id`` (mode ``dead_letter``)
  receives one letter per record (:func:`letter_records`), the same shape the router uses for transformation
  failures. The runner sends letters there; when that destination fails too they fall back to the table.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Collection
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Protocol

import sqlalchemy as sa
from sqlalchemy import Engine

from muxly_provider.destinations.base import Record, RunInfo


@dataclass(frozen=True)
class DeadLetter:
    """A failed batch of one destination.

    :param destination_id: the destination that failed
    :param batch_index: the batch number within the run (0-based, per destination)
    :param records: the records of the batch that were not delivered
    :param error: why (names the destination, holds no secret)
    """

    destination_id: str
    batch_index: int
    records: list[Record]
    error: str


def letter_records(letter: DeadLetter, run: RunInfo) -> list[Record]:
    """The letter as records for a dead-letter destination: one ``{"record", "error", ...}`` per record."""
    return [
        {
            "record": record,
            "error": letter.error,
            "destination_id": letter.destination_id,
            "batch_index": letter.batch_index,
            "job_id": run.job_id,
            "dag_id": run.dag_id,
            "run_id": run.run_id,
            "route_id": None,
            "rule_id": None,
            "transformation_id": None,
        }
        for record in letter.records
    ]


def complete_letter(letter: Record, run: RunInfo) -> Record:
    """A router's transformation-failure letter (``{"record", "error", "rule_id", "route_id",
    "transformation_id"}``) in the shape of :func:`letter_records` (``destination_id`` and ``batch_index`` are
    ``None``: no destination was tried)."""
    return {
        "record": letter.get("record"),
        "error": letter.get("error"),
        "destination_id": None,
        "batch_index": None,
        "job_id": run.job_id,
        "dag_id": run.dag_id,
        "run_id": run.run_id,
        "route_id": letter.get("route_id"),
        "rule_id": letter.get("rule_id"),
        "transformation_id": letter.get("transformation_id"),
    }


def letter_id(run: RunInfo, destination_id: str, batch_index: int) -> str:
    """The stable id of the dead letter of one batch of one destination in one run."""
    raw = f"{run.dag_id}\n{run.run_id}\n{destination_id}\n{batch_index}"
    return hashlib.sha256(raw.encode()).hexdigest()[:32]


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


class TableDeadLetterStore:
    """Dead letters in Muxly's ``dead_letters`` table.

    :param run: the run whose letters this store writes
    :param engine: Muxly's engine (default: :func:`muxly_provider.db.engine.get_engine`, opened lazily)
    """

    name = "muxly.dead_letters"

    def __init__(self, run: RunInfo, engine: Engine | None = None) -> None:
        self.run = run
        self._engine = engine

    @property
    def engine(self) -> Engine:
        """Muxly's engine."""
        if self._engine is None:
            from muxly_provider.db.engine import get_engine

            self._engine = get_engine()
        return self._engine

    def put(self, letter: DeadLetter) -> None:
        """Store (or replace) the letter of one batch."""
        from muxly_provider.db.models import DeadLetter as Row

        row_id = letter_id(self.run, letter.destination_id, letter.batch_index)
        now = _now()
        values: dict[str, Any] = {
            "id": row_id,
            "job_id": self.run.job_id,
            "dag_id": self.run.dag_id,
            "run_id": self.run.run_id,
            "destination_id": letter.destination_id,
            "batch_index": letter.batch_index,
            "record_count": len(letter.records),
            "records": json.dumps(letter.records, default=str, ensure_ascii=False),
            "error": letter.error,
            "created_at": now,
            "updated_at": now,
        }
        with self.engine.begin() as conn:
            conn.execute(sa.delete(Row).where(Row.id == row_id))
            conn.execute(sa.insert(Row).values(values))

    def resolve(self, destination_id: str, failed_batches: Collection[int]) -> int:
        """Delete the letters an earlier try of this run left for batches that were delivered now.

        :param destination_id: the destination
        :param failed_batches: the batch numbers that failed in this try (their letters stay)
        :returns: how many letters were deleted
        """
        from muxly_provider.db.models import DeadLetter as Row

        query = sa.delete(Row).where(
            Row.dag_id == self.run.dag_id,
            Row.run_id == self.run.run_id,
            Row.destination_id == destination_id,
        )
        if failed_batches:
            query = query.where(Row.batch_index.not_in(list(failed_batches)))
        with self.engine.begin() as conn:
            return int(conn.execute(query).rowcount or 0)


def read_dead_letters(engine: Engine, dag_id: str, run_id: str) -> list[dict[str, Any]]:
    """The letters of one run, oldest batch first, with ``records`` parsed (for the CLI, the API and tests)."""
    from muxly_provider.db.models import DeadLetter as Row

    query = (
        sa.select(Row.__table__)
        .where(Row.dag_id == dag_id, Row.run_id == run_id)
        .order_by(Row.destination_id, Row.batch_index)
    )
    with engine.connect() as conn:
        rows = [dict(r) for r in conn.execute(query).mappings()]
    for row in rows:
        row["records"] = json.loads(row["records"])
    return rows


class DeadLetterStore(Protocol):
    """Where the runner puts batches that could not be delivered."""

    name: str

    def put(self, letter: DeadLetter) -> None:
        """Store the letter of one batch (replacing an earlier try's letter of the same batch)."""

    def resolve(self, destination_id: str, failed_batches: Collection[int]) -> int:
        """Forget earlier tries' letters of ``destination_id`` except those of ``failed_batches``."""
