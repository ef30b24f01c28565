"""SQL of the ``database`` destination: URLs, column types, ``CREATE``/``ALTER`` and dialect upserts.

Statements are built once per column set and run through the driver's own ``executemany`` (or psycopg2's
``execute_values``), which is as fast as a hand-written batched insert.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import URL, Dialect, make_url

_DRIVERS = {
    "postgresql": "postgresql+psycopg2",
    "postgres": "postgresql+psycopg2",
    "mysql": "mysql+pymysql",
    "mariadb": "mysql+pymysql",
}
_CONN_TYPES = {
    "postgres": "postgresql+psycopg2",
    "postgresql": "postgresql+psycopg2",
    "mysql": "mysql+pymysql",
}
PLACEHOLDERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}


def normalize_url(url: str | URL) -> URL:
    """``url`` with a driver that Muxly installs when it names none (``postgresql://`` -> psycopg2)."""
    parsed = make_url(url)
    if "+" not in parsed.drivername and parsed.drivername in _DRIVERS:
        parsed = parsed.set(drivername=_DRIVERS[parsed.drivername])
    return parsed


def url_from_connection(conn: Any) -> URL:
    """A SQLAlchemy URL from an Airflow connection's fields (``postgres``, ``mysql`` or ``sqlite``).

    :param conn: an :class:`airflow.sdk.Connection`
    :raises ValueError: for another connection type
    """
    conn_type = str(conn.conn_type or "").lower()
    if conn_type == "sqlite":
        return make_url(f"sqlite:///{conn.host or conn.schema or ''}")
    driver = _CONN_TYPES.get(conn_type)
    if driver is None:
        raise ValueError(f"connection type {conn_type!r} is not postgres, mysql or sqlite")
    return URL.create(
        driver,
        username=conn.login or None,
        password=conn.password or None,
        host=conn.host or None,
        port=int(conn.port) if conn.port else None,
        database=conn.schema or None,
    )


def column_type(values: Sequence[Any], *, key: bool, dialect: str) -> sa.types.TypeEngine[Any]:
    """The column type for ``values`` (the first values seen); JSON objects and lists are stored as text."""
    kinds = {type(v) for v in values if v is not None}
    if kinds and kinds <= {bool}:
        return sa.Boolean()
    if kinds and kinds <= {int}:
        return sa.BigInteger()
    if kinds and kinds <= {int, float, Decimal}:
        return sa.Double()
    if kinds and kinds <= {dt.datetime}:
        return sa.DateTime()
    if kinds and kinds <= {dt.date}:
        return sa.Date()
    # MySQL cannot index TEXT without a length: key columns are VARCHAR there.
    return sa.String(255) if key and dialect == "mysql" else sa.Text()


class Statements:
    """The insert (or upsert) statement of one table and column set, for one dialect.

    :param dialect: the engine's dialect
    :param table: the quoted, schema-qualified table
    :param columns: the columns, in row order
    :param keys: the upsert key columns (empty: plain insert)
    """

    def __init__(self, dialect: Dialect, table: str, columns: Sequence[str], keys: Sequence[str]) -> None:
        quote = dialect.identifier_preparer.quote
        self.dialect = dialect.name
        self.use_execute_values = dialect.name == "postgresql" and dialect.driver == "psycopg2"
        placeholder = PLACEHOLDERS.get(str(dialect.paramstyle))
        if placeholder is None:
            raise ValueError(f"driver paramstyle {dialect.paramstyle!r} is not supported")
        cols = ", ".join(quote(c) for c in columns)
        values = "%s" if self.use_execute_values else "(" + ", ".join([placeholder] * len(columns)) + ")"
        sql = f"INSERT INTO {table} ({cols}) VALUES {values}"  # noqa: S608 - identifiers quoted by the dialect
        others = [c for c in columns if c not in keys]
        if keys and dialect.name == "mysql":
            updates = others or list(keys)[:1]
            sql += " ON DUPLICATE KEY UPDATE " + ", ".join(
                f"{quote(c)} = VALUES({quote(c)})" for c in updates
            )
        elif keys:
            target = ", ".join(quote(k) for k in keys)
            if others:
                sets = ", ".join(f"{quote(c)} = excluded.{quote(c)}" for c in others)
                sql += f" ON CONFLICT ({target}) DO UPDATE SET {sets}"
            else:
                sql += f" ON CONFLICT ({target}) DO NOTHING"
        self.sql = sql

    def run(self, cursor: Any, rows: list[tuple[Any, ...]]) -> None:
        """Insert ``rows`` with the driver's batch API."""
        if self.use_execute_values:
            from psycopg2.extras import execute_values

            execute_values(cursor, self.sql, rows, page_size=max(1, len(rows)))
        else:
            cursor.executemany(self.sql, rows)
