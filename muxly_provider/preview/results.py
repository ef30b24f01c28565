"""What a preview answers: per destination, the records and rendered items it would receive; the records
whose transformation failed; the counts of the routing (see :func:`muxly_provider.preview.job.preview_job`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from muxly_provider.destinations.base import Record

SHOWN = 20
"""Records and rendered items shown per destination; unmatched records, failures and dead letters shown."""


@dataclass
class DestinationPreview:
    """What one destination would receive."""

    id: str
    name: str
    destination_type: str
    enabled: bool
    routed: int = 0
    records: list[Record] = field(default_factory=list)
    rendered_as: str = "record"
    rendered: list[Any] = field(default_factory=list)
    rendered_total: int = 0
    target: str | None = None
    error: str | None = None
    dead_letter_destination_id: str | None = None


@dataclass
class FailurePreview:
    """A record whose transformation failed, and what a run does with it (``mode`` of its route)."""

    route_id: str
    rule_id: str | None
    transformation_id: str | None
    error: str
    record: Record | None
    mode: str
    dead_letter_destination_id: str | None = None


@dataclass
class JobPreview:
    """The answer of :func:`preview_job` (:meth:`as_dict` is what the API and the CLI print)."""

    job_id: str
    action_type: str
    source: str
    records_in: int = 0
    truncated: bool = False
    timed_out: bool = False
    unmatched: int = 0
    unmatched_records: list[Record] = field(default_factory=list)
    filtered: int = 0
    matched_per_rule: dict[str, int] = field(default_factory=dict)
    destinations: list[DestinationPreview] = field(default_factory=list)
    failures: list[FailurePreview] = field(default_factory=list)
    failures_total: int = 0
    error: str | None = None
    warnings: list[str] = field(default_factory=list)
    duration_seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        """The preview as JSON-able data."""
        from dataclasses import asdict

        return asdict(self)
