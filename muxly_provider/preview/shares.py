"""Routing a preview's records into each destination's share, as a run's router would, keeping every
transformation failure with its error (see :func:`muxly_provider.preview.job.preview_job`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from muxly_provider.destinations.base import Record, RunInfo
from muxly_provider.exceptions import MuxlyTransformError
from muxly_provider.preview.results import SHOWN, FailurePreview, JobPreview
from muxly_provider.routing.route_specs import RouteSpec
from muxly_provider.routing.transform_join import LookupLoader
from muxly_provider.runtime.loading import JobRuntime

FAILURES = "\x00preview-failures:"
"""Prefix of the destination that collects a route's transformation failures during a preview."""


def capturing(route: RouteSpec) -> RouteSpec:
    """``route`` whose transformation failures all go to a destination of the preview, with their error."""
    handling = route.error_handling
    limit = None if handling.mode == "fail" else handling.max_failed_records
    captured = replace(
        handling,
        mode="dead_letter",
        dead_letter_destination_id=FAILURES + route.id,
        max_failed_records=limit,
    )
    return replace(route, error_handling=captured)


class Shares:
    """Each destination's share of the routed records, classified as :func:`route_and_stage` does."""

    def __init__(self, runtime: JobRuntime, run: RunInfo, preview: JobPreview) -> None:
        self.runtime, self.run, self.preview = runtime, run, preview
        self.routes = {route.id: route for route in runtime.routes}
        self.records: dict[str, list[Record]] = {}
        self.skipped: dict[str, int] = {}
        regular = set(runtime.export_destination_ids)
        for route in runtime.routes:
            regular.update(d for rule in route.rules for d in rule.destination_ids)
            if route.error_handling.default_destination_id:
                regular.add(route.error_handling.default_destination_id)
        letters = {r.error_handling.dead_letter_destination_id for r in runtime.routes}
        self.letter_only = {d for d in letters if d} - regular

    def add(self, dest_id: str, records: list[Record]) -> None:
        if dest_id in self.runtime.disabled_destinations:
            self.skipped[dest_id] = self.skipped.get(dest_id, 0) + len(records)
        else:
            self.records.setdefault(dest_id, []).extend(records)

    def add_routed(self, routed: Mapping[str, list[Record]]) -> None:
        """Add one routing step's output; a failure of a ``fail`` route sets the preview's ``error``."""
        from muxly_provider.destinations.dead_letter import complete_letter

        for dest_id, records in routed.items():
            if not dest_id.startswith(FAILURES):
                self.add(dest_id, records)
                continue
            route = self.routes[dest_id.removeprefix(FAILURES)]
            handling = route.error_handling
            for letter in records:
                target = handling.dead_letter_destination_id if handling.mode == "dead_letter" else None
                self.preview.failures_total += 1
                if len(self.preview.failures) < SHOWN:
                    self.preview.failures.append(
                        FailurePreview(
                            route_id=route.id,
                            rule_id=letter.get("rule_id"),
                            transformation_id=letter.get("transformation_id"),
                            error=str(letter.get("error")),
                            record=letter.get("record"),
                            mode=handling.mode,
                            dead_letter_destination_id=target,
                        )
                    )
                if handling.mode == "fail" and self.preview.error is None:
                    self.preview.error = (
                        f"the run would fail: route {route.id!r}, rule {letter.get('rule_id')!r}: "
                        f"{letter.get('error')}"
                    )
                elif target is not None:
                    # A dead-letter destination that only takes letters gets them completed; one that is also
                    # a regular destination gets them as the router made them (as in a run).
                    self.add(
                        target, [complete_letter(letter, self.run) if target in self.letter_only else letter]
                    )


def route_records(
    runtime: JobRuntime, records: Sequence[Record], shares: Shares, loader: LookupLoader
) -> None:
    """Route ``records`` one by one through the run's router (so a failure keeps what came before)."""
    from muxly_provider.routing import Router

    preview = shares.preview
    if runtime.action_type == "export":
        for record in records:
            shares.add_routed({dest_id: [dict(record)] for dest_id in runtime.export_destination_ids})
        return
    router = Router([capturing(route) for route in runtime.routes], lookup_loader=loader)
    try:
        for record in records:
            before = router.stats.unmatched
            shares.add_routed(router.route_batch([record]))
            if preview.error is not None:
                return
            if router.stats.unmatched > before and len(preview.unmatched_records) < SHOWN:
                preview.unmatched_records.append(dict(record))
        shares.add_routed(router.finish())
    except MuxlyTransformError as exc:  # past max_failed_records
        preview.error = f"the run would fail: {exc}"
    finally:
        stats = router.stats
        preview.unmatched = stats.unmatched
        preview.filtered = stats.filtered
        preview.matched_per_rule = dict(stats.matched_per_rule)
