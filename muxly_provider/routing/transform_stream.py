"""Stream transformations: steps that emit several records per input or hold records until the end.

* ``array_flatten``: one record per element of an array field;
* ``aggregate``: one record per group, emitted by :meth:`StreamStep.finish` at the end of the stream (memory
  bounded by the number of groups).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from decimal import Decimal
from typing import Any

from muxly_provider.routing.condition_values import as_number, order
from muxly_provider.routing.paths import MISSING, Segment, compile_getter, delete_path
from muxly_provider.routing.route_specs import TransformationSpec
from muxly_provider.routing.transform_steps import (
    Record,
    StepFailure,
    StreamStep,
    config_error,
    set_or_fail,
    step_path,
    step_paths,
)

__all__ = ["Aggregate", "ArrayFlatten"]


class ArrayFlatten(StreamStep):
    """``array_flatten``: ``{"array_field", "flatten_fields", "preserve_parent"}``."""

    def __init__(self, spec: TransformationSpec) -> None:
        self.array = step_path(spec, "array_field")
        self.get = compile_getter(self.array)
        fields = spec.config.get("flatten_fields") or []
        self.fields = [(f, compile_getter(f)) for f in (step_paths(spec, "flatten_fields") if fields else [])]
        preserve = spec.config.get("preserve_parent", True)
        if not isinstance(preserve, bool):
            raise config_error(spec, "preserve_parent", "true or false")
        self.preserve = preserve

    def process(self, record: Record) -> Iterable[Record]:
        items = self.get(record)
        if not isinstance(items, list):
            return (record,)
        parent: Record = delete_path(record, self.array) if self.preserve else {}
        out: list[Record] = []
        for item in items:
            if not isinstance(item, Mapping):
                out.append(set_or_fail(parent, self.array, item))
                continue
            lifted: dict[str, Any] = dict(parent)
            if self.fields:
                for segments, get in self.fields:
                    value = get(item)
                    if value is not MISSING:
                        lifted = set_or_fail(lifted, segments, value)
            else:
                lifted.update(item)
            out.append(lifted)
        return out


def _number_of(function: str, value: Any) -> int | float | Decimal:
    """The number to add for ``sum``/``avg`` (0 for other functions and absent values)."""
    if function not in ("sum", "avg") or value is None or value is MISSING:
        return 0
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return value
    number = as_number(value) if isinstance(value, str) else None
    if number is None:
        raise StepFailure(f"aggregate: a value of an aggregated field is not a number ({function})")
    return number


class Aggregate(StreamStep):
    """``aggregate``: ``{"group_by", "aggregations": [{"function", "field", "as"}]}``."""

    _FUNCTIONS = ("sum", "count", "avg", "min", "max")

    def __init__(self, spec: TransformationSpec) -> None:
        group_by = spec.config.get("group_by") or []
        self.group_by = [(g, compile_getter(g)) for g in (step_paths(spec, "group_by") if group_by else [])]
        aggregations = spec.config.get("aggregations")
        if not isinstance(aggregations, list) or not aggregations:
            raise config_error(spec, "aggregations", "a non-empty list of {function, field, as}")
        self.aggregations: list[tuple[str, Callable[[Any], Any] | None, tuple[Segment, ...]]] = []
        for i, agg in enumerate(aggregations):
            function = agg.get("function") if isinstance(agg, Mapping) else None
            if function not in self._FUNCTIONS:
                raise config_error(
                    spec, f"aggregations[{i}].function", f"one of {', '.join(self._FUNCTIONS)}"
                )
            field = agg.get("field", "*")
            getter = (
                None if field == "*" else compile_getter(step_path(spec, f"aggregations[{i}].field", field))
            )
            if getter is None and function != "count":
                raise config_error(spec, f"aggregations[{i}].field", "a field path ('*' is only for count)")
            name = agg.get("as") or (function if field == "*" else f"{function}_{field}")
            self.aggregations.append((function, getter, step_path(spec, f"aggregations[{i}].as", name)))
        self.groups: dict[str, tuple[list[Any], list[Any]]] = {}

    def process(self, record: Record) -> Iterable[Record]:
        keys = [get(record) for _, get in self.group_by]
        values = [None if get is None else get(record) for _, get, _ in self.aggregations]
        numbers = [
            _number_of(function, value)
            for (function, _, _), value in zip(self.aggregations, values, strict=True)
        ]
        group_key = json.dumps([None if k is MISSING else k for k in keys], sort_keys=True, default=str)
        group = self.groups.get(group_key)
        if group is None:
            group = self.groups[group_key] = (keys, [[0, 0, None] for _ in self.aggregations])
        for (function, getter, _), value, number, state in zip(
            self.aggregations, values, numbers, group[1], strict=True
        ):
            if getter is None:
                state[0] += 1
            elif value is not None and value is not MISSING:
                state[0] += 1
                if function in ("sum", "avg"):
                    state[1] += number
                elif function in ("min", "max") and (
                    state[2] is None or order(value, state[2]) == (-1 if function == "min" else 1)
                ):
                    state[2] = value
        return ()

    def finish(self) -> Iterable[Record]:
        out: list[Record] = []
        for keys, states in self.groups.values():
            record: dict[str, Any] = {}
            for (segments, _), key in zip(self.group_by, keys, strict=True):
                record = set_or_fail(record, segments, None if key is MISSING else key)
            for (function, _, target), (count, total, best) in zip(self.aggregations, states, strict=True):
                result = {"count": count, "sum": total, "min": best, "max": best}.get(function)
                if function == "avg":
                    result = total / count if count else None
                record = set_or_fail(record, target, result)
            out.append(record)
        self.groups = {}
        return out
