"""Read Muxly's configuration tables as plain row dicts, one query per table.

The DAG factory, the operators and the CLI read configuration through this module, so that each of them
validates the same rows the same way (see :func:`muxly_provider.config.validation.validate_row`).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, select

from muxly_provider.db.engine import get_engine

CONFIG_TABLES: tuple[str, ...] = (
    "connectors",
    "destinations",
    "routing_rules",
    "rule_transformations",
    "rule_destinations",
    "routes",
    "route_rules",
    "scheduler_jobs",
    "webhook_triggers",
    "settings",
)
"""Tables that hold configuration (exported and imported as code), parents before children. It lives here, not
in :mod:`muxly_provider.db.models`, so that the DAG factory does not import the ORM models at every parse and
the models do not import this module (only :func:`load_snapshot` reads the models, when it runs)."""

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
    from muxly_provider.db.models import metadata

    engine = engine or get_engine()
    snapshot = ConfigSnapshot()
    with engine.connect() as conn:
        for name in tables:
            table = metadata.tables[name]
            order = [table.c[col] for col in _ORDER_BY.get(name, ("id",))]
            result = conn.execute(select(table).order_by(*order))
            snapshot.tables[name] = [dict(row._mapping) for row in result]
    return snapshot


FACTORY_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "scheduler_jobs": (
        "id",
        "name",
        "job_type",
        "schedule",
        "connector_id",
        "action_type",
        "action_params",
        "enabled",
        "max_retries",
        "backoff_strategy",
        "timeout_seconds",
    ),
    "connectors": ("id", "name", "connector_type", "enabled", "auth_settings", "connection_settings"),
    "destinations": ("id", "name", "destination_type", "enabled"),
    "routes": ("id", "name", "connector_id", "enabled", "error_handling"),
    "route_rules": ("route_id", "rule_id"),
    "rule_destinations": ("rule_id", "destination_id"),
}
"""What the DAG factory reads of each table (never a destination's config, so never its secrets)."""


_BOOLEAN_COLUMNS = frozenset({"enabled"})
_INTEGER_COLUMNS = frozenset({"max_retries", "timeout_seconds"})


def _converter(column: str) -> Any:
    if column in _BOOLEAN_COLUMNS:
        return lambda v: None if v is None else v.strip().lower() in {"1", "true", "t"}
    if column in _INTEGER_COLUMNS:
        return lambda v: None if v is None else int(v)
    return None


def load_factory_snapshot(
    engine: Engine | None = None, jobs: Callable[[str], bool] | None = None
) -> ConfigSnapshot:
    """Everything the DAG factory needs, in ONE query (a ``UNION ALL`` of the tables, cast to text).

    Parsing a DAG file then costs one round trip to Muxly's database, whatever the number of jobs. It uses
    lightweight table clauses, not the ORM models, so a parse does not pay for mapping them.

    :param jobs: when given (a shard file), only the jobs whose id it accepts are loaded whole, with only the
        connectors they reference: a first query reads ``id``, ``enabled`` and ``connector_id`` of every job
        (the other jobs appear with those three columns only, enough to tell duplicate DAG ids and the
        ``depends_on`` upstream), then the ``UNION ALL`` reads the rest for the accepted ids, in the same
        transaction. A shard of 100 jobs out of 10,000 then reads 100 rows, not 10,000.
    """
    from sqlalchemy import Text, cast, column, literal, null, table, union_all

    engine = engine or get_engine()
    width = max(len(cols) for cols in FACTORY_COLUMNS.values())
    snapshot = ConfigSnapshot(tables={name: [] for name in FACTORY_COLUMNS})
    enabled = _converter("enabled")
    with engine.connect() as conn, conn.begin():
        where: dict[str, Any] = {}
        if jobs is not None:
            job_table = table("scheduler_jobs", column("id"), column("enabled"), column("connector_id"))
            stubs = conn.execute(
                select(job_table.c.id, cast(job_table.c.enabled, Text), job_table.c.connector_id)
            ).all()
            ids = [str(job_id) for job_id, _, _ in stubs if jobs(str(job_id))]
            wanted = set(ids)
            snapshot.tables["scheduler_jobs"] = [
                {"id": job_id, "enabled": enabled(flag), "connector_id": connector}
                for job_id, flag, connector in stubs
                if job_id not in wanted
            ]
            where = {
                "scheduler_jobs": lambda c: c.id.in_(ids),
                "connectors": lambda c: c.id.in_(sorted({str(x) for i, _, x in stubs if i in wanted})),
            }
        selects = []
        for name, columns in FACTORY_COLUMNS.items():
            clause = table(name, *(column(c) for c in columns))
            values = [cast(clause.c[c], Text).label(f"c{i}") for i, c in enumerate(columns)]
            values += [cast(null(), Text).label(f"c{i}") for i in range(len(columns), width)]
            query = select(literal(name).label("t"), *values)
            if name in where:
                query = query.where(where[name](clause.c))
            selects.append(query)
        plans = {
            name: [(i + 1, c, _converter(c)) for i, c in enumerate(columns)]
            for name, columns in FACTORY_COLUMNS.items()
        }
        for row in conn.execute(union_all(*selects)):
            record: Row = {}
            for position, name, convert in plans[row[0]]:
                value = row[position]
                record[name] = convert(value) if convert is not None else value
            snapshot.tables[row[0]].append(record)
    for name, rows in snapshot.tables.items():
        keys = _ORDER_BY.get(name, ("id",))
        rows.sort(key=lambda r: tuple(r[k] for k in keys))
    return snapshot
