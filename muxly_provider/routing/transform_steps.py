"""The transformation types: one factory per ``transformation_type``, registered in :data:`FACTORIES`.

A factory checks a step's ``config`` once (raising :class:`~muxly_provider.exceptions.MuxlyConfigError` that
names the row and the key) and returns a compiled step:

* a :class:`MapStep` for one-record-in, at-most-one-out steps (``None`` drops the record: a ``filter``);
* a :class:`StreamStep` for steps that emit several records per input or hold records until the end of the
  stream (``array_flatten``, ``aggregate``).

Steps never modify their input: they copy the containers along the paths they change (see
:mod:`muxly_provider.routing.paths`). A step that cannot handle one record raises :class:`StepFailure` with a
reason naming fields only, never record values.
"""

from __future__ import annotations

import copy
import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from muxly_provider.exceptions import MuxlyConfigError
from muxly_provider.routing.condition_ast import Compare, CompareOp, Exists, In, Literal, Node, Not, Path
from muxly_provider.routing.condition_values import as_number, order
from muxly_provider.routing.conditions import compile_node
from muxly_provider.routing.paths import (
    MISSING,
    PathConflictError,
    PathError,
    Segment,
    compile_getter,
    delete_path,
    format_path,
    parse_path,
    set_path,
)
from muxly_provider.routing.specs import TransformationSpec

Record = Mapping[str, Any]


class StepFailure(Exception):
    """A step cannot transform one record; ``reason`` names fields only."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(reason)


@dataclass(frozen=True, slots=True)
class MapStep:
    """A step turning one record into one record, or ``None`` to drop it."""

    apply: Callable[[Record], Record | None]


class StreamStep(ABC):
    """A step over the stream of records: any number of outputs per input, plus a flush at the end."""

    @abstractmethod
    def process(self, record: Record) -> Iterable[Record]:
        """The records to pass on for ``record`` (possibly none, while the step holds it)."""

    def finish(self) -> Iterable[Record]:
        """The records held until the end of the stream."""
        return ()


Step = MapStep | StreamStep
StepFactory = Callable[[TransformationSpec], Step]


def _bad(spec: TransformationSpec, key: str, expected: str) -> MuxlyConfigError:
    return MuxlyConfigError("rule_transformations", spec.id, f"config.{key}", expected)


def _str(spec: TransformationSpec, key: str, *, allow_empty: bool = False) -> str:
    value = spec.config.get(key)
    if not isinstance(value, str) or (not allow_empty and not value.strip()):
        raise _bad(spec, key, "a non-empty string" if not allow_empty else "a string")
    return value


def _path(spec: TransformationSpec, key: str, text: str | None = None) -> tuple[Segment, ...]:
    raw = _str(spec, key) if text is None else text
    try:
        return parse_path(raw.strip())
    except PathError as exc:
        raise _bad(spec, key, f"a field path ({exc})") from exc


def _paths(spec: TransformationSpec, key: str) -> list[tuple[Segment, ...]]:
    value = spec.config.get(key)
    if not isinstance(value, list | tuple) or not all(isinstance(v, str) and v.strip() for v in value):
        raise _bad(spec, key, "a list of field paths")
    return [_path(spec, key, v) for v in value]


def _set(record: Record, segments: tuple[Segment, ...], value: Any) -> dict[str, Any]:
    try:
        return set_path(record, segments, value)
    except PathConflictError as exc:
        raise StepFailure(str(exc)) from exc


def rename_field(spec: TransformationSpec) -> Step:
    """``{"from": path, "to": path}``: moves a value; a record without ``from`` passes unchanged."""
    source, target = _path(spec, "from"), _path(spec, "to")
    get = compile_getter(source)

    def apply(record: Record) -> Record:
        value = get(record)
        if value is MISSING or source == target:
            return record
        return _set(delete_path(record, source), target, value)

    return MapStep(apply)


def set_field(spec: TransformationSpec) -> Step:
    """``{"field": path, "value": json}``: sets a constant, creating missing intermediate objects."""
    target = _path(spec, "field")
    value = spec.config.get("value")
    mutable = isinstance(value, dict | list)

    def apply(record: Record) -> Record:
        # A container value is copied so that records never share (and destinations never alter) the config.
        return _set(record, target, copy.deepcopy(value) if mutable else value)

    return MapStep(apply)


def remove_field(spec: TransformationSpec) -> Step:
    """``{"field": path}``: removes a value (nothing happens when it is absent)."""
    target = _path(spec, "field")
    return MapStep(lambda record: delete_path(record, target))


_FILTER_OPERATORS: dict[str, CompareOp] = {
    ">": ">",
    "<": "<",
    ">=": ">=",
    "<=": "<=",
    "=": "==",
    "==": "==",
    "!=": "!=",
    "contains": "CONTAINS",
    "not_contains": "NOT CONTAINS",
    "starts_with": "STARTS WITH",
    "ends_with": "ENDS WITH",
}
_SCALARS = (str, int, float, bool, type(None))


def filter_records(spec: TransformationSpec) -> Step:
    """``{"field", "operator", "value"}``: keeps records for which the test holds (condition semantics).

    Operators: ``>``, ``<``, ``>=``, ``<=``, ``=``/``==``, ``!=``, ``contains``, ``not_contains``,
    ``starts_with``, ``ends_with``, and also ``in``/``not_in`` (``value`` a list) and ``exists``/``not_exists``.
    """
    path = Path(_path(spec, "field"))
    operator = str(spec.config.get("operator", "")).strip().lower()
    value = spec.config.get("value")
    node: Node
    if operator in ("exists", "not_exists"):
        node = Exists(path) if operator == "exists" else Not(Exists(path))
    elif operator in ("in", "not_in"):
        if not isinstance(value, list) or not all(isinstance(v, _SCALARS) for v in value):
            raise _bad(spec, "value", f"a list of values for operator {operator!r}")
        node = In(path, tuple(Literal(v) for v in value), operator == "not_in")
    elif operator in _FILTER_OPERATORS:
        if not isinstance(value, _SCALARS):
            raise _bad(spec, "value", "a string, number, boolean or null")
        node = Compare(_FILTER_OPERATORS[operator], path, Literal(value))
    else:
        names = ", ".join([*_FILTER_OPERATORS, "in", "not_in", "exists", "not_exists"])
        raise _bad(spec, "operator", f"one of {names}")
    matches = compile_node(node)
    return MapStep(lambda record: record if matches(record) else None)


def extract(spec: TransformationSpec) -> Step:
    """``{"fields": [paths]}``: keeps only these paths (nested objects keep their shape; absent ones are skipped)."""
    targets = _paths(spec, "fields")
    if not targets:
        raise _bad(spec, "fields", "at least one field path")
    for target in targets:
        if any(isinstance(s, int) for s in target):
            raise _bad(spec, "fields", f"paths without list indices (got {format_path(target)!r})")
    getters = [(target, compile_getter(target)) for target in targets]

    def apply(record: Record) -> Record:
        out: dict[str, Any] = {}
        for target, get in getters:
            value = get(record)
            if value is not MISSING:
                if len(target) == 1:
                    out[target[0]] = value  # type: ignore[index]
                else:
                    out = _set(out, target, value)
        return out

    return MapStep(apply)


_PLACEHOLDER = re.compile(r"\{\{\s*(.*?)\s*\}\}")


def _text(value: Any) -> str:
    if value is None or value is MISSING:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), default=str)


def format_string(spec: TransformationSpec) -> Step:
    """``{"template", "output_field"}``: fills ``{{field}}``/``{{a.b}}`` placeholders (missing or null: empty)."""
    template = _str(spec, "template", allow_empty=True)
    target = _path(spec, "output_field")
    parts: list[str | Callable[[Any], Any]] = []
    last = 0
    for match in _PLACEHOLDER.finditer(template):
        parts.append(template[last : match.start()])
        parts.append(compile_getter(_path(spec, "template", match.group(1))))
        last = match.end()
    parts.append(template[last:])

    def apply(record: Record) -> Record:
        text = "".join(part if isinstance(part, str) else _text(part(record)) for part in parts)
        return _set(record, target, text)

    return MapStep(apply)


class _ArrayFlatten(StreamStep):
    def __init__(self, spec: TransformationSpec) -> None:
        self.array = _path(spec, "array_field")
        self.get = compile_getter(self.array)
        fields = spec.config.get("flatten_fields") or []
        self.fields = [(f, compile_getter(f)) for f in (_paths(spec, "flatten_fields") if fields else [])]
        preserve = spec.config.get("preserve_parent", True)
        if not isinstance(preserve, bool):
            raise _bad(spec, "preserve_parent", "true or false")
        self.preserve = preserve

    def process(self, record: Record) -> Iterable[Record]:
        items = self.get(record)
        if not isinstance(items, list):
            return (record,)
        parent: Record = delete_path(record, self.array) if self.preserve else {}
        out: list[Record] = []
        for item in items:
            if not isinstance(item, Mapping):
                out.append(_set(parent, self.array, item))
                continue
            lifted: dict[str, Any] = dict(parent)
            if self.fields:
                for segments, get in self.fields:
                    value = get(item)
                    if value is not MISSING:
                        lifted = _set(lifted, segments, value)
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


class _Aggregate(StreamStep):
    _FUNCTIONS = ("sum", "count", "avg", "min", "max")

    def __init__(self, spec: TransformationSpec) -> None:
        group_by = spec.config.get("group_by") or []
        self.group_by = [(g, compile_getter(g)) for g in (_paths(spec, "group_by") if group_by else [])]
        aggregations = spec.config.get("aggregations")
        if not isinstance(aggregations, list) or not aggregations:
            raise _bad(spec, "aggregations", "a non-empty list of {function, field, as}")
        self.aggregations: list[tuple[str, Callable[[Any], Any] | None, tuple[Segment, ...]]] = []
        for i, agg in enumerate(aggregations):
            function = agg.get("function") if isinstance(agg, Mapping) else None
            if function not in self._FUNCTIONS:
                raise _bad(spec, f"aggregations[{i}].function", f"one of {', '.join(self._FUNCTIONS)}")
            field = agg.get("field", "*")
            getter = None if field == "*" else compile_getter(_path(spec, f"aggregations[{i}].field", field))
            if getter is None and function != "count":
                raise _bad(spec, f"aggregations[{i}].field", "a field path ('*' is only for count)")
            name = agg.get("as") or (function if field == "*" else f"{function}_{field}")
            self.aggregations.append((function, getter, _path(spec, f"aggregations[{i}].as", name)))
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
                record = _set(record, segments, None if key is MISSING else key)
            for (function, _, target), (count, total, best) in zip(self.aggregations, states, strict=True):
                result = {"count": count, "sum": total, "min": best, "max": best}.get(function)
                if function == "avg":
                    result = total / count if count else None
                record = _set(record, target, result)
            out.append(record)
        self.groups = {}
        return out


def _not_yet(spec: TransformationSpec) -> Step:
    raise MuxlyConfigError(
        "rule_transformations",
        spec.id,
        "transformation_type",
        f"{spec.transformation_type!r} is not supported by this version of the router yet",
    )


FACTORIES: dict[str, StepFactory] = {
    "rename_field": rename_field,
    "set_field": set_field,
    "remove_field": remove_field,
    "filter": filter_records,
    "extract": extract,
    "format_string": format_string,
    "array_flatten": _ArrayFlatten,
    "aggregate": _Aggregate,
    "formula": _not_yet,
    "join": _not_yet,
}
"""The factory of every ``transformation_type`` (extend with
:func:`muxly_provider.routing.transformations.register_transformation`)."""
