"""The router: compiled once from route specs, then fed records; it says which destination gets which record.

Semantics (SPEC §2, ``docs/routing.md``):

* every route sees every record; its rules are tried in ascending ``priority``, then ``sequence_order``, then
  id; **every** matching rule sends its own transformed copy of the record to each of its destinations;
* a record no rule of a route matches goes to the route's ``default_destination_id``, else it is counted in
  ``unmatched``; a record is never silently lost;
* a transformation failing for a record follows the route's ``error_handling.mode``: ``continue`` counts it in
  ``failed`` (per rule too) and skips it for that rule; ``dead_letter`` sends
  ``{"record", "error", "rule_id", "route_id", "transformation_id"}`` to ``dead_letter_destination_id`` and
  counts it in ``dead_lettered``; ``fail`` raises :class:`~muxly_provider.exceptions.MuxlyTransformError`;
* more than ``max_failed_records`` failures in a route (``continue`` and ``dead_letter`` alike) raise
  :class:`~muxly_provider.exceptions.MuxlyTransformError`;
* a record dropped by a ``filter`` step counts in ``filtered``, not as a failure.

:meth:`Router.route_batch` runs a loop generated once per router (:mod:`muxly_provider.routing.route_codegen`)
with the same semantics as :meth:`Router.route_record`; ``join`` steps on a connector get their rows from the
``lookup_loader`` given to the router, called once per run (per router) and per connector and data spec.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from muxly_provider.exceptions import MuxlyConditionError, MuxlyConfigError, MuxlyTransformError
from muxly_provider.routing.condition_ast import Always
from muxly_provider.routing.conditions import Condition, compile_condition, compile_node, parse_condition
from muxly_provider.routing.route_codegen import RoutePlan, RulePlan, build_batch
from muxly_provider.routing.route_specs import ErrorHandlingSpec, RouteSpec, RuleSpec
from muxly_provider.routing.transform_join import LookupLoader, memoized_loader
from muxly_provider.routing.transformations import Pipeline, TransformStepError, compile_transformations

Delivery = tuple[str, dict[str, Any]]


@dataclass
class RouterStats:
    """What the router did so far.

    ``delivered_per_destination`` counts records handed to each destination (rule outputs, default and
    dead-letter deliveries); ``matched_per_rule`` counts records whose condition matched each rule.
    """

    records_in: int = 0
    unmatched: int = 0
    defaulted: int = 0
    dead_lettered: int = 0
    failed: int = 0
    filtered: int = 0
    delivered_per_destination: dict[str, int] = field(default_factory=dict)
    matched_per_rule: dict[str, int] = field(default_factory=dict)
    failed_per_rule: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        """The stats as plain JSON-able data."""
        return {
            "records_in": self.records_in,
            "unmatched": self.unmatched,
            "defaulted": self.defaulted,
            "dead_lettered": self.dead_lettered,
            "failed": self.failed,
            "filtered": self.filtered,
            "delivered_per_destination": dict(self.delivered_per_destination),
            "matched_per_rule": dict(self.matched_per_rule),
            "failed_per_rule": dict(self.failed_per_rule),
        }


class _Rule:
    """A compiled rule with its counters (plain attributes: the hot loop increments them)."""

    __slots__ = ("condition", "destinations", "failed", "id", "matched", "node", "outputs", "pipeline")

    def __init__(self, route: RouteSpec, rule: RuleSpec, lookup_loader: LookupLoader | None) -> None:
        self.id = rule.id
        self.destinations = tuple(rule.destination_ids)
        try:
            self.node = parse_condition(rule.condition)
            always = isinstance(self.node, Always)
            self.condition: Condition | None = None if always else compile_condition(rule.condition)
        except MuxlyConditionError as exc:
            raise MuxlyConfigError(
                "routing_rules",
                rule.id,
                "condition",
                f"a valid condition: {exc.message} at position {exc.position}",
            ) from exc
        pipeline = compile_transformations(rule.transformations, lookup_loader=lookup_loader)
        self.pipeline: Pipeline | None = pipeline if len(pipeline) else None
        self.matched = 0
        self.outputs = 0
        self.failed = 0


class _Route:
    __slots__ = ("failures", "handling", "id", "rules")

    def __init__(self, route: RouteSpec, lookup_loader: LookupLoader | None) -> None:
        self.id = route.id
        self.handling: ErrorHandlingSpec = route.error_handling
        if self.handling.mode == "dead_letter" and not self.handling.dead_letter_destination_id:
            raise MuxlyConfigError(
                "routes",
                route.id,
                "error_handling.dead_letter_destination_id",
                "required when mode is 'dead_letter'",
            )
        ordered = sorted(route.rules, key=lambda r: (r.priority, r.sequence_order, r.id))
        self.rules = tuple(_Rule(route, rule, lookup_loader) for rule in ordered)
        self.failures = 0


class Router:
    """Routes records through compiled routes (see the module docstring).

    :param routes: the routes of a run (each route's rules in any order)
    :param lookup_loader: ``(connector_id, data_spec) -> rows`` for ``join`` steps with a ``join_connector_id``
        (the runtime reads the connector); called while the router is built, once per connector and data spec
    :raises MuxlyConfigError: when a condition, a transformation or an error handling is invalid, or a ``join``
        needs a lookup loader and none is given
    """

    def __init__(self, routes: Sequence[RouteSpec], *, lookup_loader: LookupLoader | None = None) -> None:
        loader = memoized_loader(lookup_loader) if lookup_loader is not None else None
        self._routes = tuple(_Route(route, loader) for route in routes)
        self._stats = RouterStats()
        self._extra: dict[str, int] = {}  # default and dead-letter deliveries per destination
        self._rules = tuple(rule for route in self._routes for rule in route.rules)
        self._destinations = sorted(self.destination_ids())
        position = {dest: i for i, dest in enumerate(self._destinations)}
        plans = [
            RoutePlan(
                rules=tuple(
                    RulePlan(
                        node=rule.node,
                        closure=compile_node(rule.node),
                        pipeline=rule.pipeline,
                        destinations=tuple(position[d] for d in rule.destinations),
                    )
                    for rule in route.rules
                ),
                default=position.get(route.handling.default_destination_id or ""),
            )
            for route in self._routes
        ]
        self._batch = build_batch(plans, len(self._destinations))

    def destination_ids(self) -> set[str]:
        """Every destination a record can reach: rules' destinations, defaults and dead letters."""
        ids: set[str] = set()
        for route in self._routes:
            for rule in route.rules:
                ids.update(rule.destinations)
            for extra in (route.handling.default_destination_id, route.handling.dead_letter_destination_id):
                if extra:
                    ids.add(extra)
        return ids

    @property
    def stats(self) -> RouterStats:
        """The counters so far (refreshed on each access)."""
        stats = self._stats
        delivered = dict(self._extra)
        stats.filtered = 0
        for route in self._routes:
            for rule in route.rules:
                stats.matched_per_rule[rule.id] = rule.matched
                stats.failed_per_rule[rule.id] = rule.failed
                if rule.pipeline is not None:
                    stats.filtered += rule.pipeline.filtered
                for dest in rule.destinations:
                    delivered[dest] = delivered.get(dest, 0) + rule.outputs
        stats.delivered_per_destination = delivered
        return stats

    def _extra_delivery(self, out: list[Delivery], dest: str, record: dict[str, Any]) -> None:
        self._extra[dest] = self._extra.get(dest, 0) + 1
        out.append((dest, record))

    def _failure(
        self,
        route: _Route,
        rule: _Rule | None,
        record: Mapping[str, Any] | None,
        exc: Exception,
        out: list[Delivery],
    ) -> None:
        handling = route.handling
        rule_id = rule.id if rule is not None else None
        message = str(exc)
        if handling.mode == "fail":
            raise MuxlyTransformError(f"route {route.id!r}, rule {rule_id!r}: {message}") from exc
        route.failures += 1
        if handling.mode == "dead_letter" and handling.dead_letter_destination_id:
            self._stats.dead_lettered += 1
            letter: dict[str, Any] = {
                "record": None if record is None else dict(record),
                "error": message,
                "rule_id": rule_id,
                "route_id": route.id,
                "transformation_id": getattr(exc, "step_id", None),
            }
            self._extra_delivery(out, handling.dead_letter_destination_id, letter)
        else:
            self._stats.failed += 1
            if rule is not None:
                rule.failed += 1
        limit = handling.max_failed_records
        if limit is not None and route.failures > limit:
            raise MuxlyTransformError(
                f"route {route.id!r}: more than max_failed_records={limit} records failed (last: {message})"
            ) from exc

    def route_record(self, record: Mapping[str, Any]) -> list[Delivery]:
        """The deliveries for one record, as ``(destination_id, record)`` in rule order.

        :param record: the record (never modified)
        :raises MuxlyTransformError: in ``fail`` mode, or past ``max_failed_records``
        """
        out: list[Delivery] = []
        self._stats.records_in += 1
        if not isinstance(record, Mapping):
            for route in self._routes:
                self._failure(route, None, None, MuxlyTransformError("the record is not a JSON object"), out)
            return out
        for route in self._routes:
            matched = False
            for rule in route.rules:
                condition = rule.condition
                if condition is not None and not condition(record):
                    continue
                matched = True
                rule.matched += 1
                pipeline = rule.pipeline
                if pipeline is None:
                    outputs = [dict(record)]
                else:
                    try:
                        outputs = pipeline(record)
                    except TransformStepError as exc:
                        self._failure(route, rule, record, exc, out)
                        continue
                if outputs:
                    rule.outputs += len(outputs)
                    for output in outputs:
                        first = True
                        for dest in rule.destinations:
                            out.append((dest, output if first else dict(output)))
                            first = False
            if not matched:
                default = route.handling.default_destination_id
                if default:
                    self._stats.defaulted += 1
                    self._extra_delivery(out, default, dict(record))
                else:
                    self._stats.unmatched += 1
        return out

    def route_batch(self, records: Iterable[Mapping[str, Any]]) -> dict[str, list[dict[str, Any]]]:
        """The records per destination for a batch (each destination's list in input order).

        Same semantics as :meth:`route_record`, through the generated loop of the router.

        :param records: the records (never modified)
        :raises MuxlyTransformError: in ``fail`` mode, or past ``max_failed_records``
        """
        batches: dict[str, list[dict[str, Any]]] = {dest: [] for dest in self._destinations}
        routes = self._routes

        def fail(route_index: int, rule_index: int, record: dict[str, Any], exc: TransformStepError) -> None:
            route = routes[route_index]
            letters: list[Delivery] = []
            self._failure(route, route.rules[rule_index], record, exc, letters)
            for dest, letter in letters:
                batches.setdefault(dest, []).append(letter)

        def other(record: Any) -> None:
            for dest, output in self.route_record(record):
                batches.setdefault(dest, []).append(output)

        self._batch(records, [batches[dest] for dest in self._destinations], fail, other, self._flush)
        return {dest: batch for dest, batch in batches.items() if batch}

    def _flush(
        self, records: int, matched: tuple[int, ...], outputs: tuple[int, ...], misses: tuple[int, ...]
    ) -> None:
        """Add the counters of a batch of the generated loop."""
        self._stats.records_in += records
        for rule, hits, produced in zip(self._rules, matched, outputs, strict=True):
            rule.matched += hits
            rule.outputs += produced
        for route, missed in zip(self._routes, misses, strict=True):
            default = route.handling.default_destination_id
            if default:
                self._stats.defaulted += missed
                self._extra[default] = self._extra.get(default, 0) + missed
            else:
                self._stats.unmatched += missed

    def finish(self) -> dict[str, list[dict[str, Any]]]:
        """Flush end-of-stream transformations (``aggregate``): their records per destination.

        :raises MuxlyTransformError: in ``fail`` mode, or past ``max_failed_records``
        """
        out: list[Delivery] = []
        for route in self._routes:
            for rule in route.rules:
                if rule.pipeline is None or not rule.pipeline.streaming:
                    continue
                try:
                    outputs = rule.pipeline.finish()
                except TransformStepError as exc:
                    self._failure(route, rule, None, exc, out)
                    continue
                rule.outputs += len(outputs)
                for output in outputs:
                    for i, dest in enumerate(rule.destinations):
                        out.append((dest, output if i == 0 else dict(output)))
        batches: dict[str, list[dict[str, Any]]] = {}
        for dest, output in out:
            batches.setdefault(dest, []).append(output)
        return batches
