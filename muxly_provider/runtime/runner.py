"""Stream one run: connector batches -> router -> per-destination batches -> destinations, with dead letters.

Memory stays bounded: each destination buffers at most its ``batch_size`` records before writing them.

Per destination (:class:`_Channel`):

* records are cut into batches of the destination's ``batch_size``; a batch that fails is tried again
  ``retry_count`` times with exponential backoff (``retry_backoff_seconds``, doubling), unless the error is
  permanent (a ``4xx`` answer, a bad template, a constraint violation) or the destination retries by itself;
* a batch that still fails goes, with its error, to the dead-letter store: the route's
  ``dead_letter_destination_id`` when the destination is reached through a route in ``dead_letter`` mode,
  otherwise (and when that destination fails too) Muxly's ``dead_letters`` table;
* after a failure that looks like an outage (retryable), the destination is *down* for the rest of the run: its
  later batches go straight to the dead-letter store instead of waiting through retries again;
* the other destinations are never affected.

So for every destination ``routed == delivered + dead_lettered + lost``, where ``lost`` is non-zero only when
the dead-letter store itself failed. A destination with an error fails the task afterwards (the operator
raises), so Airflow retries the run per the job's policy; idempotent destinations overwrite, and the dead
letters of batches a retry delivers are deleted.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from muxly_provider.connectors.registry import get_connector_class
from muxly_provider.destinations.base import (
    MuxlyDeliveryError,
    MuxlyDestination,
    Record,
    RunInfo,
    redact,
    secret_fragments,
)
from muxly_provider.destinations.dead_letter import (
    DeadLetter,
    DeadLetterStore,
    TableDeadLetterStore,
    letter_records,
)
from muxly_provider.destinations.registry import get_destination_class
from muxly_provider.exceptions import MuxlyError
from muxly_provider.runtime.loading import JobRuntime

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 1000
MAX_RETRY_DELAY_SECONDS = 60.0


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

    @property
    def failed(self) -> int:
        """Records not delivered (dead-lettered or lost)."""
        return self.dead_lettered + self.lost

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "routed": self.routed,
            "delivered": self.delivered,
            "failed": self.failed,
            "dead_lettered": self.dead_lettered,
            "batches": self.batches,
        }
        if self.lost:
            data["lost"] = self.lost
        if self.retries:
            data["retries"] = self.retries
        if self.error:
            data["error"] = self.error
        if self.outputs:
            data["outputs"] = self.outputs
        return data


@dataclass
class RunOutcome:
    """What a run did; ``as_result()`` is merged into ``job_executions.result``."""

    records_in: int = 0
    destinations: dict[str, DestinationOutcome] = field(default_factory=dict)
    router_stats: dict[str, Any] = field(default_factory=dict)
    duration_seconds: float = 0.0
    dead_letter_store: str = TableDeadLetterStore.name

    @property
    def failed_destinations(self) -> list[str]:
        return sorted(d for d, o in self.destinations.items() if o.error)

    def as_result(self) -> dict[str, Any]:
        delivery_letters = sum(o.dead_lettered for o in self.destinations.values())
        transform_letters = int(self.router_stats.get("dead_lettered", 0))
        return {
            "records_in": self.records_in,
            "routed": sum(o.routed for o in self.destinations.values()),
            "delivered": sum(o.delivered for o in self.destinations.values()),
            "destinations": {d: o.as_dict() for d, o in sorted(self.destinations.items())},
            "unmatched": int(self.router_stats.get("unmatched", 0)),
            "dead_lettered": transform_letters + delivery_letters,
            "dead_letters": {
                "transform": transform_letters,
                "delivery": delivery_letters,
                "store": self.dead_letter_store,
            },
            "lost": sum(o.lost for o in self.destinations.values()),
            "filtered": int(self.router_stats.get("filtered", 0)),
            "failed_records": int(self.router_stats.get("failed", 0)),
            "task_duration_seconds": round(self.duration_seconds, 3),
        }


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
        self.failed_batches: set[int] = set()
        self.dead_letter_to: str | None = None
        self.batch_size = destination.batch_size if destination is not None else 1000


class _Delivery:
    """The open destinations of a run, isolating each one's failure (see the module docstring)."""

    def __init__(
        self, runtime: JobRuntime, run: RunInfo, outcome: RunOutcome, store: DeadLetterStore
    ) -> None:
        self.run = run
        self.outcome = outcome
        self.store = store
        self.channels: dict[str, _Channel] = {}
        outcome.dead_letter_store = store.name
        for dest_id, context in runtime.destinations.items():
            counts = outcome.destinations[dest_id] = DestinationOutcome()
            _mask(secret_fragments(context.config))
            destination: MuxlyDestination | None = None
            try:
                destination = get_destination_class(context.destination_type)(context, run)
            except MuxlyError as exc:
                counts.error = redact(str(exc), secret_fragments(context.config))
            self.channels[dest_id] = _Channel(dest_id, destination, counts)
        for dest_id in runtime.disabled_destinations:
            counts = outcome.destinations[dest_id] = DestinationOutcome(error="destination is disabled")
            self.channels[dest_id] = _Channel(dest_id, None, counts)
        for route in runtime.routes:
            target = route.error_handling.dead_letter_destination_id
            if route.error_handling.mode != "dead_letter" or not target:
                continue
            for rule in route.rules:
                for dest_id in rule.destination_ids:
                    channel = self.channels.get(dest_id)
                    if channel is not None and dest_id != target and channel.dead_letter_to is None:
                        channel.dead_letter_to = target

    def _channel(self, dest_id: str) -> _Channel:
        channel = self.channels.get(dest_id)
        if channel is None:
            counts = self.outcome.destinations[dest_id] = DestinationOutcome(error="unknown destination")
            channel = self.channels[dest_id] = _Channel(dest_id, None, counts)
        return channel

    def send(self, routed: Mapping[str, list[Record]]) -> None:
        """Buffer each destination's records and write every full batch."""
        for dest_id, records in routed.items():
            if records:
                self._add(self._channel(dest_id), records)

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
        """Write every buffer's remainder (dead-letter destinations last: flushing may add letters)."""
        for _ in range(3):
            pending = [c for c in self.channels.values() if c.buffer]
            if not pending:
                return
            pending.sort(key=lambda c: any(o.dead_letter_to == c.id for o in self.channels.values()))
            for channel in pending:
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
        tries = 1 if destination.retries_itself else 1 + destination.retry_count
        for attempt in range(1, tries + 1):
            destination.batch_index = index
            try:
                destination.write_batch(batch)
            except MuxlyDeliveryError as exc:
                if exc.delivered:
                    channel.outcome.delivered += exc.delivered
                    batch = batch[exc.delivered :]
                message, retryable = str(exc), exc.retryable
            except Exception as exc:
                message = f"destination {channel.id!r}: {destination.describe(exc)}"
                retryable = True
            else:
                channel.outcome.delivered += len(batch)
                return
            if not retryable or attempt == tries:
                break
            delay = min(MAX_RETRY_DELAY_SECONDS, destination.retry_backoff_seconds * 2 ** (attempt - 1))
            log.warning(
                "Muxly: %s; batch %d: try %d of %d in %.1f s", message, index, attempt + 1, tries, delay
            )
            channel.outcome.retries += 1
            time.sleep(delay)
        log.error(
            "Muxly: %s; batch %d (%d records) goes to the dead-letter store", message, index, len(batch)
        )
        channel.outcome.error = message
        if retryable:
            channel.down = message
        self._dead_letter(channel, index, batch, message)

    def _dead_letter(self, channel: _Channel, index: int, records: list[Record], error: str) -> None:
        channel.failed_batches.add(index)
        letter = DeadLetter(destination_id=channel.id, batch_index=index, records=records, error=error)
        target = self.channels.get(channel.dead_letter_to or "")
        if target is not None and target.down is None and target.destination is not None:
            channel.outcome.dead_lettered += len(records)
            self._add(target, letter_records(letter, self.run))
            return
        try:
            self.store.put(letter)
        except Exception as exc:
            channel.outcome.lost += len(records)
            problem = redact(f"{type(exc).__name__}: {exc}", _all_fragments(self))
            channel.outcome.error = f"{error}; the dead-letter store failed too ({problem})"
            log.error("Muxly: dead-letter store %s failed: %s", self.store.name, problem)
        else:
            channel.outcome.dead_lettered += len(records)

    def commit(self) -> None:
        """Commit every destination; then forget earlier tries' letters of batches delivered now."""
        for dest_id, channel in self.channels.items():
            destination = channel.destination
            if destination is None:
                continue
            counts = channel.outcome
            try:
                counts.outputs = destination.commit()
            except Exception as exc:
                message = exc if isinstance(exc, MuxlyError) else destination.describe(exc)
                counts.error = f"destination {dest_id!r}: commit failed: {message}"
                counts.lost += counts.delivered
                counts.delivered = 0
                destination.abort()
                continue
            if counts.lost:
                continue
            try:
                self.store.resolve(dest_id, channel.failed_batches)
            except Exception as exc:
                log.warning("Muxly: could not clear old dead letters of %s: %s", dest_id, type(exc).__name__)

    def abort(self) -> None:
        for channel in self.channels.values():
            if channel.destination is not None:
                channel.destination.abort()


def _all_fragments(delivery: _Delivery) -> list[str]:
    fragments: list[str] = []
    for channel in delivery.channels.values():
        if channel.destination is not None:
            fragments.extend(secret_fragments(channel.destination.context.config))
    return fragments


def _mask(fragments: list[str]) -> None:
    """Mask destination secrets (and the URL parts libraries quote) in task logs."""
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - without the task SDK nothing logs through Airflow
        return
    for fragment in fragments:
        mask_secret(fragment)


def run_job(
    runtime: JobRuntime,
    run: RunInfo,
    data_spec: Mapping[str, Any],
    batch_size: int = DEFAULT_BATCH_SIZE,
    dead_letters: DeadLetterStore | None = None,
    *,
    batches: Iterable[list[Record]] | None = None,
    only: frozenset[str] | None = None,
) -> RunOutcome:
    """Fetch the connector's records and deliver them through the job's routes (or straight, for ``export``).

    A failed destination does not raise here: it shows in ``outcome.failed_destinations`` after the others
    were delivered, and the caller decides (the operator fails the task so that Airflow retries it).

    :param runtime: the job's loaded configuration
    :param run: the run
    :param data_spec: the connector's ``data_spec`` for this run
    :param batch_size: records fetched from the connector at once
    :param dead_letters: the dead-letter store (default: Muxly's ``dead_letters`` table)
    :param batches: records already fetched (staged by the extract task) instead of the connector's
    :param only: deliver to these destinations only (one delivery task per destination)
    """
    from muxly_provider.routing import Router
    from muxly_provider.runtime.loading import lookup_loader

    started = time.monotonic()
    outcome = RunOutcome()
    if only is not None:
        runtime = replace(
            runtime,
            destinations={k: v for k, v in runtime.destinations.items() if k in only},
            disabled_destinations=runtime.disabled_destinations & only,
            export_destination_ids=tuple(d for d in runtime.export_destination_ids if d in only),
        )
    connector = None
    if batches is None:
        connector = get_connector_class(runtime.connector.connector_type)(
            runtime.connector, batch_size=batch_size
        )
        batches = connector.fetch(data_spec)
    router = (
        None if runtime.action_type == "export" else Router(runtime.routes, lookup_loader=lookup_loader())
    )
    delivery = _Delivery(runtime, run, outcome, dead_letters or TableDeadLetterStore(run))

    def mine(routed: Mapping[str, list[Record]]) -> Mapping[str, list[Record]]:
        return routed if only is None else {k: v for k, v in routed.items() if k in only}

    try:
        for batch in batches:
            outcome.records_in += len(batch)
            if router is None:
                delivery.send({dest_id: batch for dest_id in runtime.export_destination_ids})
            else:
                delivery.send(mine(router.route_batch(batch)))
        if router is not None:
            delivery.send(mine(router.finish()))
            outcome.router_stats = router.stats.as_dict()
        delivery.flush()
        delivery.commit()
    except BaseException:
        delivery.abort()
        raise
    finally:
        if connector is not None:
            connector.close()
        outcome.duration_seconds = time.monotonic() - started
    return outcome
