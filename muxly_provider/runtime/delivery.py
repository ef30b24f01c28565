"""Deliver records to destinations: per-destination batches, retries, failure isolation and dead letters.

Memory stays bounded: each destination buffers at most its ``batch_size`` records before writing them.

Per destination (:class:`_Channel`):

* records are cut into batches of the destination's ``batch_size``; a batch that fails is tried again
  ``retry_count`` times with exponential backoff (``retry_backoff_seconds``, doubling), unless the error is
  permanent (a ``4xx`` answer, a bad template, a constraint violation) or the destination retries by itself
  (:mod:`muxly_provider.destinations.batch_retries`, tenacity under it);
* a batch that still fails goes, with its error, to the dead-letter store given to :class:`Delivery` (the
  staged letters that the run's ``dead_letters`` task sends to the route's dead-letter destination, or
  Muxly's ``dead_letters`` table);
* after a failure that looks like an outage (retryable), the destination is *down* for the rest of the run: its
  later batches go straight to the dead-letter store instead of waiting through retries again;
* the other destinations are never affected.

So for every destination ``routed == delivered + dead_lettered + lost``, where ``lost`` is non-zero only when
the dead-letter store itself failed.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from muxly_provider.destinations.base import (
    DestinationContext,
    MuxlyDestination,
    Record,
    RunInfo,
    redact,
    secret_fragments,
)
from muxly_provider.destinations.batch_retries import write_with_retries
from muxly_provider.destinations.dead_letter import DeadLetter, DeadLetterStore, letter_records
from muxly_provider.destinations.registry import get_destination_class
from muxly_provider.exceptions import MuxlyError
from muxly_provider.runtime.loading import mask_in_task_logs

log = logging.getLogger(__name__)


@dataclass
class DestinationOutcome:
    """Counts of one destination in one run (``routed == delivered + dead_lettered + lost``)."""

    routed: int = 0
    delivered: int = 0
    dead_lettered: int = 0
    lost: int = 0
    batches: int = 0
    retries: int = 0
    error: str | None = None
    outputs: list[str] = field(default_factory=list)
    failed_batches: set[int] = field(default_factory=set)

    @property
    def failed(self) -> int:
        """Records not delivered (dead-lettered or lost)."""
        return self.dead_lettered + self.lost

    def as_dict(self) -> dict[str, Any]:
        """The counts for ``job_executions.result``."""
        data: dict[str, Any] = {
            "routed": self.routed,
            "delivered": self.delivered,
            "failed": self.failed,
            "dead_lettered": self.dead_lettered,
            "lost": self.lost,
            "batches": self.batches,
        }
        if self.retries:
            data["retries"] = self.retries
        if self.error:
            data["error"] = self.error
        if self.outputs:
            data["outputs"] = self.outputs
        return data


class _Channel:
    """One open destination of a run: its buffer, batch numbers, state and counts."""

    def __init__(
        self, dest_id: str, destination: MuxlyDestination | None, outcome: DestinationOutcome
    ) -> None:
        self.id = dest_id
        self.destination = destination
        self.outcome = outcome
        self.buffer: list[Record] = []
        self.next_batch = 0
        self.down: str | None = None if destination is not None else (outcome.error or "not available")
        self.batch_size = destination.batch_size if destination is not None else 1000


class Delivery:
    """Open destinations of a run, isolating each one's failure (see the module docstring).

    :param destinations: the destinations to open, by id (``None``: known but not available, e.g. disabled,
        so every record goes to the dead-letter store with that reason)
    :param run: the run
    :param store: where failed batches go
    """

    def __init__(
        self,
        destinations: Mapping[str, DestinationContext | str],
        run: RunInfo,
        store: DeadLetterStore,
    ) -> None:
        self.run = run
        self.store = store
        self.channels: dict[str, _Channel] = {}
        self.outcomes: dict[str, DestinationOutcome] = {}
        for dest_id, context in destinations.items():
            counts = self.outcomes[dest_id] = DestinationOutcome()
            destination: MuxlyDestination | None = None
            if isinstance(context, str):
                counts.error = context
            else:
                mask_in_task_logs(secret_fragments(context.config))
                try:
                    destination = get_destination_class(context.destination_type)(context, run)
                except MuxlyError as exc:
                    counts.error = redact(str(exc), secret_fragments(context.config))
            self.channels[dest_id] = _Channel(dest_id, destination, counts)

    def send(self, routed: Mapping[str, list[Record]]) -> None:
        """Buffer each destination's records and write every full batch."""
        for dest_id, records in routed.items():
            if records:
                self._add(self.channels[dest_id], records)

    def _add(self, channel: _Channel, records: list[Record]) -> None:
        channel.outcome.routed += len(records)
        channel.buffer.extend(records)
        size = channel.batch_size
        if len(channel.buffer) >= size:
            full = len(channel.buffer) - len(channel.buffer) % size
            pending, channel.buffer = channel.buffer[:full], channel.buffer[full:]
            for start in range(0, full, size):
                self._write(channel, pending[start : start + size])

    def flush(self) -> None:
        """Write every buffer's remainder."""
        for channel in self.channels.values():
            batch, channel.buffer = channel.buffer, []
            if batch:
                self._write(channel, batch)

    def _write(self, channel: _Channel, batch: list[Record]) -> None:
        index = channel.next_batch
        channel.next_batch += 1
        channel.outcome.batches += 1
        destination = channel.destination
        if destination is None or channel.down is not None:
            self._dead_letter(channel, index, batch, f"not attempted: {channel.down}")
            return
        result = write_with_retries(destination, batch, index)
        channel.outcome.delivered += result.delivered
        channel.outcome.retries += result.retries
        if result.error is None:
            return
        message, retryable, batch = result.message, result.error.retryable, result.remaining
        log.error(
            "Muxly: %s; batch %d (%d records) goes to the dead-letter store", message, index, len(batch)
        )
        channel.outcome.error = message
        if retryable:
            channel.down = message
        self._dead_letter(channel, index, batch, message)

    def _dead_letter(self, channel: _Channel, index: int, records: list[Record], error: str) -> None:
        channel.outcome.failed_batches.add(index)
        letter = DeadLetter(destination_id=channel.id, batch_index=index, records=records, error=error)
        try:
            self.store.put(letter)
        except Exception as exc:
            channel.outcome.lost += len(records)
            problem = redact(f"{type(exc).__name__}: {exc}", self._fragments())
            channel.outcome.error = f"{error}; the dead-letter store failed too ({problem})"
            log.error("Muxly: dead-letter store %s failed: %s", self.store.name, problem)
        else:
            channel.outcome.dead_lettered += len(records)

    def commit(self) -> None:
        """Commit every destination; then forget earlier tries' letters of batches delivered now."""
        for dest_id, channel in self.channels.items():
            destination = channel.destination
            counts = channel.outcome
            if destination is not None:
                try:
                    counts.outputs = destination.commit()
                except Exception as exc:
                    message = exc if isinstance(exc, MuxlyError) else destination.describe(exc)
                    counts.error = f"destination {dest_id!r}: commit failed: {message}"
                    destination.abort()
                    self._uncommitted(channel)
                    continue
            if counts.lost:
                continue
            try:
                self.store.resolve(dest_id, counts.failed_batches)
            except Exception as exc:
                log.warning("Muxly: could not clear old dead letters of %s: %s", dest_id, type(exc).__name__)

    def _uncommitted(self, channel: _Channel) -> None:
        """A failed commit took back the batches written so far: they count as lost (nothing to resend)."""
        counts = channel.outcome
        counts.lost += counts.delivered
        counts.delivered = 0

    def abort(self) -> None:
        """Abort every open destination (after an error that stops the run)."""
        for channel in self.channels.values():
            if channel.destination is not None:
                channel.destination.abort()

    def _fragments(self) -> list[str]:
        fragments: list[str] = []
        for channel in self.channels.values():
            if channel.destination is not None:
                fragments.extend(secret_fragments(channel.destination.context.config))
        return fragments


class StagedLetterStore:
    """Letters of a delivery task, staged for the run's ``dead_letters`` task (which sends them on to the
    route's dead-letter destination, or to the ``dead_letters`` table when it fails too).

    Each failed batch becomes one staged file of letter records (:func:`letter_records`: the record with its
    error attached) named after the batch number, so a retried try overwrites its own files.

    :param uri: the run folder
    :param run: the run
    :param target: the dead-letter destination the letters are for
    """

    def __init__(self, uri: str, run: RunInfo, target: str) -> None:
        self.uri = uri
        self.run = run
        self.name = f"dead-letter destination {target}"

    def put(self, letter: DeadLetter) -> None:
        """Stage the letter of one batch."""
        from muxly_provider.runtime import staging

        folder = staging.failed_folder(self.uri, letter.destination_id)
        staging.write_batch(folder, letter.batch_index, letter_records(letter, self.run))

    def resolve(self, destination_id: str, failed_batches: Collection[int]) -> int:
        """Nothing to do: a delivery try starts by removing its earlier try's letters."""
        return 0
