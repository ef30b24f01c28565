"""What a run did: the counts each phase of :mod:`muxly_provider.runtime.runner` merges into
``job_executions.result`` (see ``docs/jobs.md``, job_executions)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from muxly_provider.destinations.dead_letter import TableDeadLetterStore
from muxly_provider.runtime.delivery import DestinationOutcome


@dataclass
class RouteOutcome:
    """What routing a run did (the ``extract`` task's part of ``job_executions.result``)."""

    records_in: int = 0
    routed: dict[str, int] = field(default_factory=dict)
    skipped_disabled: dict[str, int] = field(default_factory=dict)
    router_stats: dict[str, Any] = field(default_factory=dict)
    route_seconds: float = 0.0
    transform_letters: int = 0

    def as_result(self, store: str) -> dict[str, Any]:
        """The keys the extract task merges into ``job_executions.result``."""
        return {
            "records_in": self.records_in,
            "routed": self.transform_letters + sum(self.routed.values()),
            "delivered": 0,
            "lost": 0,
            "destinations": {
                d: DestinationOutcome(routed=n).as_dict() for d, n in sorted(self.routed.items())
            },
            "unmatched": int(self.router_stats.get("unmatched", 0)),
            "filtered": int(self.router_stats.get("filtered", 0)),
            "failed_records": int(self.router_stats.get("failed", 0)),
            "dead_lettered": self.transform_letters,
            "dead_letters": {"transform": self.transform_letters, "delivery": 0, "store": store},
            "skipped_disabled": dict(sorted(self.skipped_disabled.items())),
            "route_seconds": round(self.route_seconds, 3),
        }


@dataclass
class RunOutcome:
    """What a whole run did (the single-task path, and the tests); ``as_result()`` goes into the row."""

    records_in: int = 0
    destinations: dict[str, DestinationOutcome] = field(default_factory=dict)
    dead_letter_destinations: dict[str, DestinationOutcome] = field(default_factory=dict)
    route: RouteOutcome = field(default_factory=RouteOutcome)
    duration_seconds: float = 0.0
    dead_letter_store: str = TableDeadLetterStore.name

    @property
    def router_stats(self) -> dict[str, Any]:
        """The router's counters."""
        return self.route.router_stats

    @property
    def failed_destinations(self) -> list[str]:
        """Destinations (dead-letter destinations included) that failed."""
        failed = {d for d, o in self.destinations.items() if o.error}
        failed |= {d for d, o in self.dead_letter_destinations.items() if o.error}
        return sorted(failed)

    def as_result(self) -> dict[str, Any]:
        """The run's counts (see ``docs/jobs.md``, job_executions)."""
        result = self.route.as_result(self.dead_letter_store)
        delivery_letters = sum(o.dead_lettered + o.lost for o in self.destinations.values())
        result.update(
            records_in=self.records_in,
            routed=self.route.transform_letters + sum(o.routed for o in self.destinations.values()),
            delivered=sum(o.delivered for o in self.destinations.values()),
            lost=sum(o.lost for o in self.destinations.values()),
            destinations={d: o.as_dict() for d, o in sorted(self.destinations.items())},
            dead_lettered=self.route.transform_letters + delivery_letters,
            task_duration_seconds=round(self.duration_seconds, 3),
        )
        result["dead_letters"]["delivery"] = delivery_letters
        if self.dead_letter_destinations:
            result["dead_letter_destinations"] = {
                d: o.as_dict() for d, o in sorted(self.dead_letter_destinations.items())
            }
        return result
