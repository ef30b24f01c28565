"""Field names and types of the records a run sees, sampled cheaply for OpenLineage's ``schema`` facet.

A :class:`SchemaCollector` looks at about :data:`SAMPLE_PER_BATCH` records of each batch (all of a small
batch), so its cost does not grow with the batch size: a field's type is that of the first non-null value
sampled (``string``, ``integer``, ``double``, ``boolean``, ``struct``, ``array``, ``null`` while only nulls were
seen); a ``struct`` lists its own fields (:data:`MAX_DEPTH` levels). At most :data:`MAX_FIELDS` fields are kept
per level. Only names and types are kept, never values. The schema travels in the run manifest (XCom) as
:meth:`SchemaCollector.as_json`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

SAMPLE_PER_BATCH = 32
MAX_FIELDS = 500
MAX_DEPTH = 3

_TYPES: Mapping[type, str] = {
    str: "string",
    bool: "boolean",
    int: "integer",
    float: "double",
    dict: "struct",
    list: "array",
    type(None): "null",
}

Schema = dict[str, Any]
"""A schema as JSON: field name -> its type, or the schema of its fields for a ``struct``."""


class SchemaCollector:
    """The fields of the records given to :meth:`observe` (a sample of each batch)."""

    __slots__ = ("fields", "nested")

    def __init__(self) -> None:
        self.fields: dict[str, str] = {}
        self.nested: dict[str, SchemaCollector] = {}

    def observe(self, batch: Sequence[Mapping[str, Any]]) -> None:
        """Look at a sample of ``batch``."""
        step = len(batch) // SAMPLE_PER_BATCH
        for record in batch[::step] if step > 1 else batch:
            self._record(record, 0)

    def _record(self, record: Mapping[str, Any], depth: int) -> None:
        fields = self.fields
        for key, value in record.items():
            kind = fields.get(key)
            if kind is None or kind == "null":
                if kind is None and len(fields) >= MAX_FIELDS:
                    continue
                kind = fields[key] = _TYPES.get(type(value), "string")
            if kind == "struct" and depth < MAX_DEPTH and type(value) is dict:
                nested = self.nested.get(key)
                if nested is None:
                    nested = self.nested[key] = SchemaCollector()
                nested._record(value, depth + 1)

    def as_json(self) -> Schema:
        """The schema as JSON (for the run manifest)."""
        return {
            name: self.nested[name].as_json() if name in self.nested else kind
            for name, kind in self.fields.items()
        }


class OutputSchemas:
    """One :class:`SchemaCollector` per destination; :meth:`observe` is the router's share callback."""

    __slots__ = ("collectors",)

    def __init__(self) -> None:
        self.collectors: dict[str, SchemaCollector] = {}

    def observe(self, destination_id: str, records: Sequence[Mapping[str, Any]]) -> None:
        """Look at a sample of ``records`` routed to ``destination_id``."""
        collector = self.collectors.get(destination_id)
        if collector is None:
            collector = self.collectors[destination_id] = SchemaCollector()
        collector.observe(records)

    def as_json(self) -> dict[str, Schema]:
        """Each destination's schema as JSON."""
        return {dest_id: collector.as_json() for dest_id, collector in sorted(self.collectors.items())}


def observed(
    batches: Iterable[list[dict[str, Any]]], collector: SchemaCollector
) -> Iterator[list[dict[str, Any]]]:
    """``batches`` unchanged, each one sampled by ``collector`` on its way."""
    for batch in batches:
        collector.observe(batch)
        yield batch
