"""The ``join`` transformation: enrich records from a lookup table keyed by a field.

Config: ``left_key`` (path in the record), ``right_key`` (path in the lookup rows), ``join_type``
(``left`` default, ``inner``, ``right``), ``prefix_fields`` (bool) and ``prefix``, and the lookup rows from one
of two sources:

* ``lookup``: the rows inline, a list of JSON objects;
* ``join_connector_id`` (+ ``join_data_spec``): rows of another connector (typically a ``database`` query),
  loaded **once per run** through the ``lookup_loader`` the runtime passes to
  :func:`~muxly_provider.routing.transformations.compile_transformations` /
  :class:`~muxly_provider.routing.router.Router`. The routing package does no I/O itself; without a loader such
  a step is a :class:`~muxly_provider.exceptions.MuxlyConfigError` when it is compiled.

Semantics:

* keys match with the condition language's equality on scalars: ``123`` matches ``'123'`` and ``123.0``;
  strings match case-sensitively; booleans match booleans only; dates match their ISO text; null and missing
  keys never match; a lookup row without a scalar key is ignored; when several rows share a key the first wins;
* a match copies every field of the lookup row into a copy of the record, except the ``right_key`` field when it
  is a top-level key (the record keeps its own ``left_key``); lookup values overwrite record fields of the same
  name, unless ``prefix_fields`` is true: then the copied fields are named ``prefix + name`` (``prefix``
  defaulting to ``<join_connector_id>_``, or ``lookup_`` for inline rows);
* ``left``: a record without a match passes unchanged; ``inner``: it is dropped (counted as ``filtered``);
  ``right``: like ``inner`` for records, and at the end of the run every lookup row that matched no record is
  emitted as a record of its own: ``{<left_key>: <its key>, <copied fields>...}`` (through the steps after the
  join, to the rule's destinations).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from muxly_provider.exceptions import MuxlyConfigError
from muxly_provider.routing.condition_values import as_number
from muxly_provider.routing.paths import MISSING, Segment, compile_getter
from muxly_provider.routing.route_specs import TransformationSpec
from muxly_provider.routing.transform_steps import (
    Bind,
    MapStep,
    Record,
    Step,
    StreamStep,
    config_error,
    set_or_fail,
    step_path,
)

__all__ = ["CompileContext", "LookupLoader", "join_key", "join_step", "memoized_loader"]

LookupLoader = Callable[[str, Mapping[str, Any]], Iterable[Mapping[str, Any]]]
"""``(connector_id, data_spec) -> rows``: how the runtime provides a join's lookup rows (called once per run)."""


@dataclass(frozen=True)
class CompileContext:
    """What compiling transformations may use from outside the routing package.

    :param lookup_loader: provides the rows of ``join`` steps with a ``join_connector_id``
    """

    lookup_loader: LookupLoader | None = None


def memoized_loader(loader: LookupLoader) -> LookupLoader:
    """``loader`` calling its source once per ``(connector_id, data_spec)`` (a router shares it among rules).

    :param loader: the runtime's loader
    """
    cache: dict[tuple[str, str], tuple[Mapping[str, Any], ...]] = {}

    def load(connector_id: str, data_spec: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
        key = (connector_id, json.dumps(data_spec, sort_keys=True, default=str))
        if key not in cache:
            cache[key] = tuple(loader(connector_id, data_spec))
        return cache[key]

    return load


def join_key(value: Any) -> Hashable | None:
    """The hash key of a join value (``None``: matches nothing); equal keys mean equal in conditions."""
    kind = type(value)
    if kind is str:
        number = as_number(value)
        return ("s", value) if number is None else ("n", number)
    if kind is int or kind is float or kind is Decimal:
        return ("n", value)
    if kind is bool:
        return ("b", value)
    if isinstance(value, dt.date | dt.time):
        return join_key(value.isoformat())
    if isinstance(value, str):
        return join_key(str(value))
    if isinstance(value, int | float | Decimal) and not isinstance(value, bool):
        return ("n", value)
    return None


class _Lookup:
    """The lookup rows indexed by key: key -> (fields to copy, the row's key value)."""

    def __init__(self, spec: TransformationSpec, rows: Iterable[Any], source: str) -> None:
        right = step_path(spec, "right_key")
        get_right = compile_getter(right)
        prefix_fields = spec.config.get("prefix_fields", False)
        if not isinstance(prefix_fields, bool):
            raise config_error(spec, "prefix_fields", "true or false")
        prefix = spec.config.get("prefix") or ""
        if not isinstance(prefix, str):
            raise config_error(spec, "prefix", "a string")
        if prefix_fields and not prefix:
            prefix = f"{spec.config.get('join_connector_id') or 'lookup'}_"
        skip = right[0] if len(right) == 1 else None
        self.index: dict[Hashable, tuple[dict[str, Any], Any]] = {}
        for i, row in enumerate(rows):
            if not isinstance(row, Mapping):
                raise config_error(spec, f"{source}[{i}]", "a JSON object (a lookup row)")
            value = get_right(row)
            key = join_key(value)
            if key is None or key in self.index:
                continue
            fields = {
                (prefix + str(name) if prefix_fields else str(name)): item
                for name, item in row.items()
                if name != skip
            }
            self.index[key] = (fields, value)


def _rows(spec: TransformationSpec, context: CompileContext) -> tuple[Iterable[Any], str]:
    inline = spec.config.get("lookup")
    connector_id = spec.config.get("join_connector_id")
    if (inline is None) == (connector_id is None):
        raise config_error(spec, "lookup", "exactly one of 'join_connector_id' or 'lookup' (inline rows)")
    if inline is not None:
        if not isinstance(inline, list):
            raise config_error(spec, "lookup", "a list of JSON objects")
        return inline, "lookup"
    if not isinstance(connector_id, str) or not connector_id.strip():
        raise config_error(spec, "join_connector_id", "a connector id")
    data_spec = spec.config.get("join_data_spec") or {}
    if not isinstance(data_spec, Mapping):
        raise config_error(spec, "join_data_spec", "a JSON object")
    if context.lookup_loader is None:
        raise MuxlyConfigError(
            "rule_transformations",
            spec.id,
            "config.join_connector_id",
            "a lookup loader to read the connector's rows (none was given to the router)",
        )
    return context.lookup_loader(connector_id, data_spec), "join_connector_id"


class _RightJoin(StreamStep):
    def __init__(self, lookup: _Lookup, merge: Callable[[Record], Record | None], left: tuple[Segment, ...]):
        self.lookup = lookup
        self.merge = merge
        self.left = left
        self.get_left = compile_getter(left)
        self.used: set[Hashable] = set()

    def process(self, record: Record) -> Iterable[Record]:
        out = self.merge(record)
        if out is None:
            return ()
        key = join_key(self.get_left(record))
        if key is not None:
            self.used.add(key)
        return (out,)

    def finish(self) -> Iterable[Record]:
        out: list[Record] = []
        for key, (fields, value) in self.lookup.index.items():
            if key not in self.used:
                out.append({**set_or_fail({}, self.left, value), **fields})
        self.used = set()
        return out


def join_step(spec: TransformationSpec, context: CompileContext) -> Step:
    """The ``join`` factory (see the module docstring).

    :param spec: the step
    :param context: gives the lookup loader for ``join_connector_id``
    :raises MuxlyConfigError: on a bad config, a missing loader or a lookup row that is not an object
    """
    left = step_path(spec, "left_key")
    join_type = spec.config.get("join_type", "left")
    if join_type not in ("left", "inner", "right"):
        raise config_error(spec, "join_type", "one of left, inner, right")
    rows, source = _rows(spec, context)
    lookup = _Lookup(spec, rows, source)
    index = lookup.index
    get_left = compile_getter(left)
    keep = join_type == "left"

    def merge(record: Record) -> Record | None:
        key = join_key(get_left(record))
        hit = index.get(key) if key is not None else None
        if hit is None:
            return record if keep else None
        return {**record, **hit[0]}

    if join_type == "right":
        return _RightJoin(lookup, merge, left)
    fields_of = {key: fields for key, (fields, _) in index.items()}

    def inline(bind: Bind) -> list[str]:
        read = f"record.get({bind('k', left[0])}, {bind('M', MISSING)})" if len(left) == 1 else None
        read = read or f"{bind('g', get_left)}(record)"
        hit = f"{bind('idx', fields_of)}.get({bind('key', join_key)}({read}))"
        if keep:
            return [f"if (_j := {hit}) is not None:", "    record.update(_j)"]
        return [f"if (_j := {hit}) is None:", "    return _drop()", "record.update(_j)"]

    return MapStep(merge, inline if isinstance(left[0], str) else None)
