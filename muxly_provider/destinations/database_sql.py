"""SQL of the ``database`` destination: URLs, column types, and the insert or upsert of each batch.

The insert is SQLAlchemy's dialect construct on a :class:`sqlalchemy.Table` built for the batch's columns:
``sqlalchemy.dialects.postgresql.insert(...).on_conflict_do_update`` (``on_conflict_do_nothing`` when every
column is a key), the same on SQLite, ``sqlalchemy.dialects.mysql.insert(...).on_duplicate_key_update`` on
MariaDB/MySQL, and a plain ``sqlalchemy.insert`` without ``upsert_key`` on any database. It is compiled once per
column set by the engine's dialect (which quotes every identifier) and run through the driver's own batch API:
``executemany``, or psycopg2's ``execute_values`` (one multi-row ``VALUES`` per batch), as fast as a
hand-written batched insert. A plain insert through psycopg 3 (the engine of a PostgreSQL ``conn_id``) is a
``COPY ... FROM STDIN`` instead (psycopg 3 has no ``execute_values``; its ``executemany`` is 0.8x of it for
inserts, 1.3x for upserts). (SQLAlchemy's own ``executemany`` runs an ``ON CONFLICT`` insert row by row on
psycopg2, about five times slower.) The columns are untyped (``NullType``): values reach the driver as they
are, as with a hand-written insert.
"""

from __future__ import annotations

import copy
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


def normalize_url(url: str | URL) -> URL:
    """``url`` with a driver that Muxly installs when it names none (``postgresql://`` -> psycopg2)."""
    parsed = make_url(url)
    if "+" not in parsed.drivername and parsed.drivername in _DRIVERS:
        parsed = parsed.set(drivername=_DRIVERS[parsed.drivername])
    return parsed


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


def _dialect_insert(dialect: str) -> Any:
    """The ``insert`` construct of ``dialect`` that can upsert, or ``None``."""
    if dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert
    if dialect in ("mysql", "mariadb"):
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        return mysql_insert
    return None


def insert_statement(
    dialect: str, table: str, schema: str | None, columns: Sequence[str], keys: Sequence[str]
) -> Any:
    """The insert (``keys`` empty) or upsert of ``columns`` into ``schema.table``, as a SQLAlchemy construct.

    Values are bound as ``p0``, ``p1``, ... in column order. On a key conflict the other columns are updated;
    when every column is a key the row is left as it is.

    :raises ValueError: for an upsert on a database other than PostgreSQL, SQLite and MariaDB/MySQL
    """
    target = sa.Table(table, sa.MetaData(schema=schema), *(sa.Column(column) for column in columns))
    values: dict[str, Any] = {column: sa.bindparam(f"p{index}") for index, column in enumerate(columns)}
    if not keys:
        return sa.insert(target).values(values)
    insert = _dialect_insert(dialect)
    if insert is None:
        raise ValueError(f"upsert_key is supported on PostgreSQL, SQLite and MariaDB/MySQL, not {dialect!r}")
    statement = insert(target).values(values)
    others = [column for column in columns if column not in keys]
    if dialect in ("mysql", "mariadb"):
        updates = others or list(keys)[:1]  # MySQL has no DO NOTHING: a key set to itself
        return statement.on_duplicate_key_update({column: statement.inserted[column] for column in updates})
    if not others:
        return statement.on_conflict_do_nothing(index_elements=list(keys))
    return statement.on_conflict_do_update(
        index_elements=list(keys), set_={column: statement.excluded[column] for column in others}
    )


def _positional(dialect: Dialect) -> Dialect:
    """``dialect``, compiling ``%s`` placeholders instead of ``%(name)s``: rows then go to the driver as tuples
    (a dict per row costs PyMySQL about a fifth of an upsert's time). Every driver with ``pyformat`` also takes
    ``format``; identifiers double their ``%`` under both."""
    if dialect.paramstyle != "pyformat":
        return dialect
    positional = copy.copy(dialect)
    positional.paramstyle = "format"
    positional.positional = True
    return positional


class Statements:
    """The insert (or upsert) of one table and column set, compiled for one dialect.

    :param dialect: the engine's dialect
    :param table: the table's name (unquoted)
    :param schema: its schema (``None``: the connection's default)
    :param columns: the columns, in row order
    :param keys: the upsert key columns (empty: plain insert)
    """

    def __init__(
        self, dialect: Dialect, table: str, schema: str | None, columns: Sequence[str], keys: Sequence[str]
    ) -> None:
        statement = insert_statement(dialect.name, table, schema, columns, keys)
        compiled = statement.compile(dialect=_positional(dialect))
        names = [f"p{index}" for index in range(len(columns))]
        self.sql = compiled.string
        self.names = names
        self.positional = bool(compiled.positional)
        if self.positional and list(compiled.positiontup or ()) != names:
            raise ValueError(f"unexpected parameter order {compiled.positiontup} in the insert of {table!r}")
        self.execute_values_sql: str | None = None
        self.copy: Any = None
        """psycopg 3's ``COPY ... FROM STDIN`` of a plain insert (a ``psycopg.sql.Composed``), or ``None``."""
        if dialect.name == "postgresql" and dialect.driver == "psycopg2":
            # execute_values sends one multi-row VALUES: its page placeholder takes the place of the row tuple.
            row = "(" + ", ".join(compiled.bindtemplate % {"name": name} for name in names) + ")"
            if self.sql.count(row) == 1:
                self.execute_values_sql = self.sql.replace(row, "%s")
        elif dialect.name == "postgresql" and dialect.driver == "psycopg" and not keys:
            # psycopg 3 (a common-sql conn_id's engine) has no execute_values, and its pipelined executemany
            # (one statement per row) is 0.8x psycopg2's multi-row VALUES; a plain insert goes through COPY.
            # (Its executemany is the faster one for upserts.)
            from psycopg import sql

            target = sql.Identifier(schema, table) if schema else sql.Identifier(table)
            self.copy = sql.SQL("COPY {} ({}) FROM STDIN").format(
                target, sql.SQL(", ").join(map(sql.Identifier, columns))
            )

    def run(self, cursor: Any, rows: list[tuple[Any, ...]]) -> None:
        """Insert ``rows`` (tuples in column order) with the driver's batch API."""
        if self.execute_values_sql is not None:
            from psycopg2.extras import execute_values

            # No template: psycopg2 builds its own as bytes (a str one is encoded again for every row).
            execute_values(cursor, self.execute_values_sql, rows, page_size=max(1, len(rows)))
        elif self.copy is not None:
            with cursor.copy(self.copy) as copy:
                for row in rows:
                    copy.write_row(row)
        elif self.positional:
            cursor.executemany(self.sql, rows)
        else:
            names = self.names
            cursor.executemany(self.sql, [dict(zip(names, row, strict=True)) for row in rows])
