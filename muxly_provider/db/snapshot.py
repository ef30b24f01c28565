"""Read Muxly's configuration tables as plain row dicts, one query per table.

The DAG factory, the operators and the CLI read configuration through this module, so that each of them
validates the same rows the same way (see :func:`muxly_provider.config.validation.validate_row`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select

from muxly_provider.db.engine import get_engine
from muxly_provider.db.models import CONFIG_TABLES, metadata

Row = dict[str, Any]

_ORDER_BY: Mapping[str, tuple[str, ...]] = {
    "route_rules": ("route_id", "rule_id"),
    "rule_destinations": ("rule_id", "destination_id"),
    "settings": ("key",),
}


@dataclass
class ConfigSnapshot:
    """All rows of the configuration tables, each table's rows sorted by primary key."""

    tables: dict[str, list[Row]] = field(default_factory=dict)

    def rows(self, table: str) -> list[Row]:
        """The rows of ``table`` (an empty list when it was not loaded)."""
        return self.tables.get(table, [])

    def by_id(self, table: str) -> dict[str, Row]:
        """The rows of ``table`` keyed by ``id``."""
        return {row["id"]: row for row in self.rows(table)}


def load_snapshot(engine: Engine | None = None, tables: Iterable[str] = CONFIG_TABLES) -> ConfigSnapshot:
    """Load ``tables`` from Muxly's database in one read transaction.

    :param engine: Muxly's engine (default: :func:`muxly_provider.db.engine.get_engine`)
    :param tables: names of the tables to load
    """
    engine = engine or get_engine()
    snapshot = ConfigSnapshot()
    with engine.connect() as conn:
        for name in tables:
            table = metadata.tables[name]
            order = [table.c[col] for col in _ORDER_BY.get(name, ("id",))]
            result = conn.execute(select(table).order_by(*order))
            snapshot.tables[name] = [dict(row._mapping) for row in result]
    return snapshot
