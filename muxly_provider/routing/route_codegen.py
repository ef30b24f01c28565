"""The router's batch loop, generated once per router: every route's conditions and deliveries inlined.

A hand-written router for known rules is one loop with the conditions written out, one copy per delivery and
an ``append`` per destination. The general router pays, per record and rule, a call per condition, a loop over
rules, attribute counters and a dispatch on the pipeline's kind. This module writes the hand-written loop
instead, from the routes' plans:

* conditions are inlined as expressions (:func:`~muxly_provider.routing.condition_codegen.inline_condition`);
  should one raise on a record of an odd shape, the route's closure forms answer for that record;
* counters are local integers, added to the rules' and the router's counters when the batch ends (also when it
  ends with an exception);
* records that are not plain dicts, and transformation failures, are handed back to the router (``other`` and
  ``fail``), which applies the general semantics.

**User text never reaches the generated source**: it holds fixed templates, generated names and integers
(indexes); keys, constants, pipelines and helpers live in the namespace, whose ``__builtins__`` is empty.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from muxly_provider.routing.condition_ast import Node
from muxly_provider.routing.condition_codegen import inline_condition, new_emitter
from muxly_provider.routing.conditions import Condition, compile_node
from muxly_provider.routing.transformations import Pipeline, TransformStepError

Fail = Callable[[int, int, dict[str, Any], TransformStepError], None]
"""``(route index, rule index, record, error)``: the router's handling of a failed transformation."""

Other = Callable[[Any], None]
"""Routes a record that is not a plain dict through the general path."""

Flush = Callable[[int, tuple[int, ...], tuple[int, ...], tuple[int, ...]], None]
"""``(records, matched per rule, outputs per rule, misses per route)``: adds a batch's counters."""

BatchFunction = Callable[[Iterable[Any], Sequence[list[dict[str, Any]]], Fail, Other, Flush], None]
"""``(records, one list per destination index, fail, other, flush)``: routes a batch into the lists."""


@dataclass(frozen=True)
class RulePlan:
    """A rule as the generator sees it.

    :param node: the condition's tree
    :param closure: the condition's closure form
    :param pipeline: the rule's transformations (``None``: none)
    :param destinations: indexes of the rule's destinations in the list of destinations
    """

    node: Node
    closure: Condition
    pipeline: Pipeline | None
    destinations: tuple[int, ...]


@dataclass(frozen=True)
class RoutePlan:
    """A route as the generator sees it: its rules in order and its default destination's index."""

    rules: tuple[RulePlan, ...]
    default: int | None


def _deliveries(rule: RulePlan, index: int, bind: Callable[[str, Any], str], ri: int, rj: int) -> list[str]:
    """The lines delivering the outputs of rule ``index`` (run when it matched), at the loop body's indent."""
    adds = [f"add{d}" for d in rule.destinations]
    if rule.pipeline is None:
        return [f"o{index} += 1", *(f"{add}(_dict(record))" for add in adds)]
    pipeline = rule.pipeline
    call = bind("p", pipeline.fast_one if not pipeline.streaming else pipeline)
    lines = [
        "try:",
        f"    out = {call}(record)",
        "except _TSE as exc:",
        f"    fail({ri}, {rj}, record, exc)",
        "else:",
    ]
    first, rest = adds[:1], adds[1:]
    if not pipeline.streaming:
        lines += ["    if out is not None:", f"        o{index} += 1"]
        lines += [f"        {add}(out)" for add in first] + [f"        {add}(_dict(out))" for add in rest]
        return lines
    lines += [f"    o{index} += _len(out)", "    for one in out:"]
    lines += [f"        {add}(one)" for add in first] + [f"        {add}(_dict(one))" for add in rest]
    if not adds:
        lines.append("        pass")
    return lines


def build_batch(routes: Sequence[RoutePlan], destinations: int) -> BatchFunction:
    """Generate the batch loop of ``routes``.

    :param routes: the routes' plans, in order
    :param destinations: how many destination indexes there are
    """
    emitter = new_emitter(compile_node)
    bind = emitter.bind
    emitter.namespace.update({"_dict": dict, "_len": len, "_TSE": TransformStepError})
    rule_count = sum(len(route.rules) for route in routes)
    counters = [f"m{i}" for i in range(rule_count)] + [f"o{i}" for i in range(rule_count)]
    counters += [f"x{i}" for i in range(len(routes))]
    body: list[str] = []
    index = 0
    for ri, route in enumerate(routes):
        hits = [f"h{index + rj}" for rj in range(len(route.rules))]
        if hits:
            closures = tuple(rule.closure for rule in route.rules)
            fallback = bind("fb", lambda record, cs=closures: tuple([c(record) for c in cs]))
            body.append("try:")
            body += [
                f"    {hit} = {inline_condition(emitter, rule.node, rule.closure)}"
                for hit, rule in zip(hits, route.rules, strict=True)
            ]
            body += ["except _Error:", f"    {', '.join(hits)}, = {fallback}(record)"]
        for rj, (hit, rule) in enumerate(zip(hits, route.rules, strict=True)):
            body += [f"if {hit}:", f"    m{index} += 1"]
            body += ["    " + line for line in _deliveries(rule, index, bind, ri, rj)]
            index += 1
        miss = [f"if not ({' or '.join(hits)}):"] if hits else ["if True:"]
        miss.append(f"    x{ri} += 1")
        if route.default is not None:
            miss.append(f"    add{route.default}(_dict(record))")
        body += miss
    matched = ", ".join(f"m{i}" for i in range(rule_count))
    outputs = ", ".join(f"o{i}" for i in range(rule_count))
    misses = ", ".join(f"x{i}" for i in range(len(routes)))
    lines = [
        "def _batch(records, lists, fail, other, flush):",
        *(f"    add{d} = lists[{d}].append" for d in range(destinations)),
        "    n = 0",
        *(f"    {name} = 0" for name in counters),
        "    try:",
        "        for record in records:",
        "            if record.__class__ is not _dict:",
        "                other(record)",
        "                continue",
        "            n += 1",
        *("            " + line for line in body),
        "    finally:",
        f"        flush(n, ({matched}{',' if matched else ''}), ({outputs}{',' if outputs else ''}), "
        f"({misses}{',' if misses else ''}))",
    ]
    source = "\n".join(lines) + "\n"
    # Safe: ``source`` holds only the templates above, generated names and integers (see the module docstring).
    exec(compile(source, "<muxly-router>", "exec"), emitter.namespace)  # noqa: S102
    function: BatchFunction = emitter.namespace["_batch"]
    return function
