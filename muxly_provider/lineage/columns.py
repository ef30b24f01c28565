"""Column lineage of a job's routes: which input fields each destination's fields come from.

Each rule's transformations are followed in ``sequence_order`` over a map *output field -> input fields*:

* ``rename_field``: the new field has the old one's origins (``IDENTITY``); the old field is gone;
* ``set_field``: a constant (no input field); ``remove_field``: gone;
* ``formula``, ``format_string``: the output field comes from the fields they read (``TRANSFORMATION``);
* ``extract``: only the listed fields remain; ``aggregate``: the ``group_by`` fields (``IDENTITY``) and each
  aggregate (``AGGREGATION``) remain; the ``group_by`` fields also shape the whole dataset (``GROUP_BY``);
* ``filter`` steps and the rule's condition decide which records arrive (``FILTER`` on the whole dataset);
* ``join`` and ``array_flatten`` (fields from another source, records multiplied) make the rule's column
  lineage unknown: such a rule contributes nothing, and the destination is marked incomplete.

Fields nothing touched keep their input field (``IDENTITY``) when the input schema has them. A destination
reached by several rules (or as a route's default destination, or by an ``export``) gets the union.
Pure: no Airflow, no OpenLineage.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from muxly_provider.routing.route_specs import RouteSpec, TransformationSpec

IDENTITY = "IDENTITY"
TRANSFORMATION = "TRANSFORMATION"
AGGREGATION = "AGGREGATION"
_STRENGTH = {IDENTITY: 0, TRANSFORMATION: 1, AGGREGATION: 2}

Origin = tuple[str, str]
"""An input field and how the output field derives from it (``IDENTITY``, ``TRANSFORMATION``, ...)."""

_PLACEHOLDER = re.compile(r"\{\{\s*([^{}\s|]+)\s*\}\}")


def canonical(path: str) -> str:
    """A field path in its canonical text (``$.a.b`` -> ``a.b``); unparsable text stays as written."""
    from muxly_provider.routing.paths import PathError, format_path, parse_path

    try:
        return format_path(parse_path(path))
    except (PathError, ValueError):
        return path


def formula_fields(text: str) -> set[str]:
    """The fields a formula reads."""
    from muxly_provider.routing.formula_parser import BinOp, Call, Chain, Field, Neg, parse_formula
    from muxly_provider.routing.paths import format_path

    found: set[str] = set()
    stack: list[Any] = [parse_formula(text)]
    while stack:
        node = stack.pop()
        if isinstance(node, Field):
            found.add(format_path(node.segments))
        elif isinstance(node, Neg):
            stack.append(node.operand)
        elif isinstance(node, BinOp):
            stack += [node.left, node.right]
        elif isinstance(node, Chain):
            stack += [node.first, *(operand for _op, operand in node.rest)]
        elif isinstance(node, Call):
            stack += list(node.args)
    return found


def condition_fields(expression: str | None) -> set[str]:
    """The fields a routing condition reads."""
    from muxly_provider.routing.condition_ast import And, Compare, Exists, In, Not, Or, Path
    from muxly_provider.routing.conditions import parse_condition
    from muxly_provider.routing.paths import format_path

    found: set[str] = set()
    stack: list[Any] = [parse_condition(expression)]
    while stack:
        node = stack.pop()
        if isinstance(node, Path):
            found.add(format_path(node.segments))
        elif isinstance(node, Compare):
            stack += [node.left, node.right]
        elif isinstance(node, In):
            stack.append(node.operand)
        elif isinstance(node, Exists):
            stack.append(node.path)
        elif isinstance(node, Not):
            stack.append(node.operand)
        elif isinstance(node, And | Or):
            stack += list(node.operands)
    return found


def _retag(origins: Iterable[Origin], subtype: str) -> frozenset[Origin]:
    return frozenset(
        (name, subtype if _STRENGTH[subtype] > _STRENGTH[kind] else kind) for name, kind in origins
    )


@dataclass
class _Chain:
    """The field map of one rule's transformations (``None``: the field was removed)."""

    explicit: dict[str, frozenset[Origin] | None] = field(default_factory=dict)
    passthrough: bool = True
    opaque: bool = False
    filters: set[str] = field(default_factory=set)
    group_by: set[str] = field(default_factory=set)

    def resolve(self, name: str) -> frozenset[Origin]:
        if name in self.explicit:
            return self.explicit[name] or frozenset()
        return frozenset({(name, IDENTITY)}) if self.passthrough else frozenset()

    def reads(self, names: Iterable[str], subtype: str) -> frozenset[Origin]:
        return _retag((o for n in names for o in self.resolve(canonical(n))), subtype)

    def lookup(self, name: str, input_fields: set[str] | None) -> frozenset[Origin]:
        if name in self.explicit:
            return self.explicit[name] or frozenset()
        if self.passthrough and (input_fields is None or name in input_fields):
            return frozenset({(name, IDENTITY)})
        return frozenset()


def _rename(chain: _Chain, config: Mapping[str, Any]) -> None:
    source, target = canonical(str(config["from"])), canonical(str(config["to"]))
    if source != target:
        chain.explicit[target] = chain.resolve(source)
        chain.explicit[source] = None


def _set(chain: _Chain, config: Mapping[str, Any]) -> None:
    chain.explicit[canonical(str(config["field"]))] = frozenset()


def _remove(chain: _Chain, config: Mapping[str, Any]) -> None:
    chain.explicit[canonical(str(config["field"]))] = None


def _formula(chain: _Chain, config: Mapping[str, Any]) -> None:
    origins = chain.reads(formula_fields(str(config["formula"])), TRANSFORMATION)
    chain.explicit[canonical(str(config["output_field"]))] = origins


def _format_string(chain: _Chain, config: Mapping[str, Any]) -> None:
    origins = chain.reads(_PLACEHOLDER.findall(str(config.get("template") or "")), TRANSFORMATION)
    chain.explicit[canonical(str(config["output_field"]))] = origins


def _filter(chain: _Chain, config: Mapping[str, Any]) -> None:
    chain.filters.update(name for name, _kind in chain.resolve(canonical(str(config["field"]))))


def _extract(chain: _Chain, config: Mapping[str, Any]) -> None:
    kept = {canonical(str(f)): chain.resolve(canonical(str(f))) for f in config.get("fields") or []}
    chain.explicit, chain.passthrough = dict(kept), False


def _aggregate(chain: _Chain, config: Mapping[str, Any]) -> None:
    groups = [canonical(str(g)) for g in config.get("group_by") or []]
    kept: dict[str, frozenset[Origin] | None] = {g: chain.resolve(g) for g in groups}
    chain.group_by.update(name for g in groups for name, _kind in chain.resolve(g))
    for agg in config.get("aggregations") or []:
        function, source = str(agg.get("function")), str(agg.get("field") or "*")
        output = agg.get("as") or (function if source == "*" else f"{function}_{source}")
        origins = frozenset() if source == "*" else chain.reads([source], AGGREGATION)
        kept[canonical(str(output))] = origins
    chain.explicit, chain.passthrough = kept, False


STEPS: Mapping[str, Callable[[_Chain, Mapping[str, Any]], None]] = {
    "rename_field": _rename,
    "set_field": _set,
    "remove_field": _remove,
    "formula": _formula,
    "format_string": _format_string,
    "filter": _filter,
    "extract": _extract,
    "aggregate": _aggregate,
}
"""Transformation types whose column lineage is known; any other type makes a rule's lineage unknown."""


def _chain(steps: Iterable[TransformationSpec]) -> _Chain:
    chain = _Chain()
    for step in sorted(steps, key=lambda s: (s.sequence_order, s.id)):
        handler = STEPS.get(step.transformation_type)
        try:
            if handler is None:
                raise KeyError(step.transformation_type)
            handler(chain, step.config)
        except (KeyError, TypeError, ValueError):  # unknown type or a config this reading cannot follow
            chain.opaque = True
            break
    return chain


@dataclass(frozen=True)
class DestinationColumns:
    """The column lineage of one destination, in input field names.

    :param fields: output field -> its origins (input field, subtype); fields with no input are left out
    :param filters: input fields that decide which records reach the destination
    :param group_by: input fields the records are grouped by
    :param complete: ``False`` when a rule reaching it has a transformation whose lineage is unknown
    """

    fields: Mapping[str, frozenset[Origin]]
    filters: frozenset[str] = frozenset()
    group_by: frozenset[str] = frozenset()
    complete: bool = True


def destination_columns(
    routes: Iterable[RouteSpec],
    destination_id: str,
    *,
    export: bool = False,
    output_fields: Iterable[str] = (),
    input_fields: Iterable[str] | None = None,
) -> DestinationColumns:
    """The column lineage of ``destination_id``.

    :param routes: the job's routes
    :param export: whether the job exports its records to the destination unchanged
    :param output_fields: the fields seen in the records routed there (their lineage is looked up)
    :param input_fields: the fields seen in the connector's records (``None``: unknown; untouched fields
        are then named only when they are in ``output_fields``)
    """
    chains = [_Chain()] if export else []
    for route in routes:
        conditions = set().union(*(condition_fields(rule.condition) for rule in route.rules))
        for rule in route.rules:
            if destination_id in rule.destination_ids:
                chain = _chain(rule.transformations)
                chain.filters.update(condition_fields(rule.condition))
                chains.append(chain)
        if route.error_handling.default_destination_id == destination_id:
            chains.append(_Chain(filters=conditions))  # unmatched records: every condition was false
    known = [c for c in chains if not c.opaque]
    inputs = set(input_fields) if input_fields is not None else None
    names = set(output_fields) | {name for c in known for name, origins in c.explicit.items() if origins}
    result: dict[str, frozenset[Origin]] = {}
    for name in sorted(names):
        origins = frozenset().union(*(c.lookup(name, inputs) for c in known))
        if origins:
            result[name] = origins
    return DestinationColumns(
        fields=result,
        filters=frozenset().union(*(c.filters for c in known)),
        group_by=frozenset().union(*(c.group_by for c in known)),
        complete=len(known) == len(chains),
    )
