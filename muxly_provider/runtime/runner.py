"""Stream one run: connector batches -> router -> destinations, with per-destination counts.

Memory stays bounded by the batch size (file destinations write as they go). A destination that fails stops
receiving records, its records are counted as failed, and the other destinations still get theirs; the run then
fails so Airflow retries it (destinations write idempotently per run).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from muxly_provider.connectors.registry import get_connector_class
from muxly_provider.destinations.base import MuxlyDestination, Record, RunInfo
from muxly_provider.destinations.registry import get_destination_class
from muxly_provider.exceptions import MuxlyError
from muxly_provider.runtime.loading import JobRuntime

log = logging.getLogger(__name__)

DEFAULT_BATCH_SIZE = 1000


@dataclass
class DestinationOutcome:
    """Counts of one destination in one run."""

    delivered: int = 0
    failed: int = 0
    error: str | None = None
    outputs: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        data: dict[str, Any] = {"delivered": self.delivered, "failed": self.failed}
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

    @property
    def failed_destinations(self) -> list[str]:
        return sorted(d for d, o in self.destinations.items() if o.error)

    def as_result(self) -> dict[str, Any]:
        result: dict[str, Any] = {
            "records_in": self.records_in,
            "destinations": {d: o.as_dict() for d, o in sorted(self.destinations.items())},
            "unmatched": int(self.router_stats.get("unmatched", 0)),
            "dead_lettered": int(self.router_stats.get("dead_lettered", 0)),
            "filtered": int(self.router_stats.get("filtered", 0)),
            "failed_records": int(self.router_stats.get("failed", 0)),
            "task_duration_seconds": round(self.duration_seconds, 3),
        }
        return result


class _Delivery:
    """The open destinations of a run, isolating each one's failure."""

    def __init__(self, runtime: JobRuntime, run: RunInfo, outcome: RunOutcome) -> None:
        self.outcome = outcome
        self.open: dict[str, MuxlyDestination] = {}
        for dest_id, context in runtime.destinations.items():
            outcome.destinations[dest_id] = DestinationOutcome()
            try:
                self.open[dest_id] = get_destination_class(context.destination_type)(context, run)
            except MuxlyError as exc:
                outcome.destinations[dest_id].error = str(exc)
        for dest_id in runtime.disabled_destinations:
            outcome.destinations[dest_id] = DestinationOutcome(error="destination is disabled")

    def send(self, routed: Mapping[str, list[Record]]) -> None:
        for dest_id, records in routed.items():
            if not records:
                continue
            counts = self.outcome.destinations.setdefault(
                dest_id, DestinationOutcome(error="unknown destination")
            )
            destination = self.open.get(dest_id)
            if destination is None:
                counts.failed += len(records)
                continue
            try:
                destination.write_batch(records)
                counts.delivered += len(records)
            except Exception as exc:
                log.error("Muxly: destination %s failed: %s", dest_id, exc)
                counts.error = f"{type(exc).__name__}: {exc}"
                counts.failed += counts.delivered + len(records)
                counts.delivered = 0
                destination.abort()
                del self.open[dest_id]

    def commit(self) -> None:
        for dest_id, destination in list(self.open.items()):
            counts = self.outcome.destinations[dest_id]
            try:
                counts.outputs = destination.commit()
            except Exception as exc:
                counts.error = f"{type(exc).__name__}: {exc}"
                counts.failed += counts.delivered
                counts.delivered = 0
                destination.abort()

    def abort(self) -> None:
        for destination in self.open.values():
            destination.abort()


def run_job(
    runtime: JobRuntime, run: RunInfo, data_spec: Mapping[str, Any], batch_size: int = DEFAULT_BATCH_SIZE
) -> RunOutcome:
    """Fetch the connector's records and deliver them through the job's routes (or straight, for ``export``).

    A failed destination does not raise here: it shows in ``outcome.failed_destinations`` after the others
    were delivered, and the caller decides (the operator fails the task so that Airflow retries it).
    """
    from muxly_provider.routing import Router

    started = time.monotonic()
    outcome = RunOutcome()
    connector = get_connector_class(runtime.connector.connector_type)(
        runtime.connector, batch_size=batch_size
    )
    router = None if runtime.action_type == "export" else Router(runtime.routes)
    delivery = _Delivery(runtime, run, outcome)
    try:
        for batch in connector.fetch(data_spec):
            outcome.records_in += len(batch)
            if router is None:
                delivery.send({dest_id: batch for dest_id in runtime.export_destination_ids})
            else:
                delivery.send(router.route_batch(batch))
        if router is not None:
            delivery.send(router.finish())
            outcome.router_stats = router.stats.as_dict()
        delivery.commit()
    except BaseException:
        delivery.abort()
        raise
    finally:
        connector.close()
        outcome.duration_seconds = time.monotonic() - started
    return outcome
