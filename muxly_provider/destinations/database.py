"""The ``database`` destination: rows of a table in PostgreSQL, MariaDB/MySQL or SQLite.

Options (SPEC §2, REFERENCE.md): ``conn_id`` (an Airflow connection, ``postgres``, ``mysql``, ``sqlite`` or
any type whose provider has a common-sql ``DbApiHook``: the engine is the hook's ``get_sqlalchemy_engine()``;
``airflow-provider-muxly[common-sql]`` plus the extra of the type, see :mod:`muxly_provider.hooks.providers`)
or ``connection_string`` (a SQLAlchemy URL, stored encrypted; ``postgresql://`` and ``mysql://`` without a
driver use psycopg2 and PyMySQL), ``db_type`` (informative), ``table``, ``schema``, ``create_table``,
``column_mapping`` (record field -> column), ``batch_size`` and ``upsert_key`` (a column or a list of
columns).

Columns: with ``column_mapping`` exactly the mapped fields are written (a missing field is ``NULL``); without
it every field of the records whose column exists. ``create_table`` creates a missing table from the first
batch (types inferred from the values; JSON objects and lists are stored as JSON text; the ``upsert_key``
columns form the primary key) and adds columns for fields that appear later. Without ``create_table`` a field
with no column is left out, and the task log says which (once).

The target may not be Muxly's or Airflow's own database (by URL and by content, at the first batch:
:func:`muxly_provider.security.databases.guard_engine`); such a run fails without retries.

One delivery is one transaction, committed by :meth:`DatabaseDestination.commit` (so a delivery task that is
killed, or fails, leaves no row behind, and its retry writes each record once, in insert mode too); each batch
runs inside a ``SAVEPOINT`` of it, so a batch the database refuses is rolled back alone and can go to the
dead-letter store as a whole while the other batches stay. When the transaction itself is lost (the connection
drops, the server restarts), the batches written before are rolled back with it: every later batch is refused,
and the commit fails, so those records are counted ``lost`` (never ``delivered``) and the delivery task fails and
is retried. On MariaDB/MySQL a ``CREATE``/``ALTER TABLE`` commits implicitly: a column that ``create_table`` adds
in the middle of a delivery commits the rows before it. See ``docs/destinations.md`` ("Retries and
exactly-once").

With ``upsert_key`` a batch is an upsert (``ON CONFLICT ... DO UPDATE`` on PostgreSQL and SQLite, ``ON DUPLICATE
KEY UPDATE`` on MariaDB/MySQL; the key needs a primary key or unique constraint): a re-run updates rows instead
of duplicating them, and within a batch the last record of a key wins.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from muxly_provider.config.destinations import DatabaseDestinationConfig
from muxly_provider.destinations.base import MuxlyDeliveryError, MuxlyDestination, Record
from muxly_provider.destinations.database_sql import Statements, column_type, normalize_url
from muxly_provider.hooks import providers as provider_hooks
from muxly_provider.security.errors import MuxlyConfinementError

log = logging.getLogger(__name__)

_RETRYABLE = {"OperationalError", "InterfaceError", "TimeoutError"}


def _value(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, ensure_ascii=False)
    return value


class DatabaseDestination(MuxlyDestination):
    """Write records as rows of a table."""

    destination_type = "database"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = self.parse_config(DatabaseDestinationConfig)
        key = self.settings.upsert_key
        self.keys: tuple[str, ...] = (key,) if isinstance(key, str) else tuple(key or ())
        self.mapping = dict(self.settings.column_mapping)
        self.idempotent = bool(self.keys)
        self._engine: Engine | None = None
        self._columns: list[str] | None = None  # the table's columns, once known
        self._statements: dict[tuple[str, ...], Statements] = {}
        self._dropped: set[str] = set()
        self._conn: sa.Connection | None = None  # the delivery's connection and transaction, once opened
        self._transaction: sa.RootTransaction | None = None
        self._pending = 0  # records written in the open transaction
        self._lost: str | None = None  # why the open transaction was lost (nothing more is written)
        self._broken = False  # a savepoint could not be rolled back: the transaction cannot be trusted

    # -- connection --------------------------------------------------------------------------------------

    def _create_engine(self) -> Engine:
        """The engine of ``connection_string``, or of the common-sql hook of ``conn_id``'s connection."""
        if self.settings.connection_string:
            try:
                return sa.create_engine(normalize_url(self.settings.connection_string), pool_size=1)
            except sa.exc.ArgumentError:
                raise self.fail("connection_string is not a SQLAlchemy URL", retryable=False) from None
        try:
            return provider_hooks.sql_engine(str(self.settings.conn_id), "conn_id", pool_size=1)
        except provider_hooks.MuxlyProviderMissingError as exc:
            raise self.fail(str(exc), retryable=False) from None
        except provider_hooks.MuxlyConnectionError as exc:
            raise self.fail(str(exc), retryable=not exc.permanent) from None

    @property
    def engine(self) -> Engine:
        """The engine of the target database (created at the first batch, disposed at the end)."""
        if self._engine is None:
            from muxly_provider.security.databases import guard_engine

            engine = self._create_engine()
            if engine.dialect.name == "sqlite":
                _sqlite_transactions(engine)
            field = "connection_string" if self.settings.connection_string else "conn_id"
            try:
                self._engine = guard_engine(engine, field)
            except MuxlyConfinementError as exc:
                engine.dispose()
                raise self.fail(f"{exc.field}: {exc.reason}", retryable=False) from None
        return self._engine

    @property
    def qualified_table(self) -> str:
        """The quoted, schema-qualified table name."""
        preparer = self.engine.dialect.identifier_preparer
        table = preparer.quote(self.settings.table)
        schema = self.settings.schema_ if self.engine.dialect.name != "sqlite" else None
        return f"{preparer.quote_schema(schema)}.{table}" if schema else table

    # -- table -------------------------------------------------------------------------------------------

    def _schema(self) -> str | None:
        return self.settings.schema_ if self.engine.dialect.name != "sqlite" else None

    def _reflect(self, conn: sa.Connection) -> list[str] | None:
        inspector = sa.inspect(conn)
        if not inspector.has_table(self.settings.table, schema=self._schema()):
            return None
        return [str(c["name"]) for c in inspector.get_columns(self.settings.table, schema=self._schema())]

    def _sample(self, rows: list[Record], column: str) -> list[Any]:
        return [row.get(column) for row in rows[:100]]

    def _ensure_table(self, conn: sa.Connection, rows: list[Record], wanted: list[str]) -> list[str]:
        if self._columns is None:
            self._columns = self._reflect(conn)
        dialect = self.engine.dialect.name
        if self._columns is None:
            if not self.settings.create_table:
                raise self.fail(
                    f"table {self.settings.table!r} does not exist (set create_table)", retryable=False
                )
            missing_keys = [k for k in self.keys if k not in wanted]
            if missing_keys:
                raise self.fail(f"upsert_key column(s) {missing_keys} not in the records", retryable=False)
            table = sa.Table(
                self.settings.table,
                sa.MetaData(schema=self._schema()),
                *(
                    sa.Column(
                        c,
                        column_type(self._sample(rows, c), key=c in self.keys, dialect=dialect),
                        nullable=c not in self.keys,
                    )
                    for c in wanted
                ),
                *([sa.PrimaryKeyConstraint(*self.keys)] if self.keys else []),
            )
            table.create(conn, checkfirst=True)
            self._columns = list(wanted)
            log.info("Muxly: destination %s created table %s", self.context.id, self.settings.table)
        new = [c for c in wanted if c not in self._columns]
        if new and self.settings.create_table:
            for column in new:
                sql_type = column_type(self._sample(rows, column), key=False, dialect=dialect)
                type_sql = sql_type.compile(dialect=self.engine.dialect)
                quoted = self.engine.dialect.identifier_preparer.quote(column)
                conn.exec_driver_sql(f"ALTER TABLE {self.qualified_table} ADD COLUMN {quoted} {type_sql}")
                self._columns.append(column)
        elif new and not set(new) <= self._dropped:
            self._dropped.update(new)
            log.warning(
                "Muxly: destination %s: table %s has no column(s) %s; those fields are not written",
                self.context.id,
                self.settings.table,
                ", ".join(sorted(new)),
            )
        return [c for c in wanted if c in self._columns]

    # -- rows --------------------------------------------------------------------------------------------

    def _rows(self, records: Sequence[Record]) -> tuple[list[Record], list[str]]:
        if self.mapping:
            rows = [{col: rec.get(field) for field, col in self.mapping.items()} for rec in records]
            return rows, list(self.mapping.values())
        columns: dict[str, None] = dict.fromkeys(records[0])
        for record in records:
            if len(record) != len(columns) or record.keys() != columns.keys():
                columns.update(dict.fromkeys(record))
        return list(records), list(columns)

    def _dedupe(self, rows: list[Record]) -> list[Record]:
        # One statement may not touch the same key twice (PostgreSQL refuses): the last record of a key wins.
        latest: dict[tuple[Any, ...], Record] = {}
        for row in rows:
            key = tuple(row.get(k) for k in self.keys)
            if any(part is None for part in key):
                raise self.fail(f"a record has no value for upsert_key {list(self.keys)}", retryable=False)
            latest.pop(key, None)
            latest[key] = row
        return list(latest.values())

    @staticmethod
    def _values(rows: list[Record], columns: list[str]) -> list[tuple[Any, ...]]:
        values = [tuple(map(row.get, columns)) for row in rows]
        kinds = {type(v) for row in values for v in row}
        if dict in kinds or list in kinds:
            values = [tuple(map(_value, row)) for row in values]
        return values

    def _connection(self) -> sa.Connection:
        """The delivery's connection, in its one transaction (opened at the first batch)."""
        if self._conn is None:
            conn = self.engine.connect()
            try:
                self._transaction = conn.begin()
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    def _usable(self) -> bool:
        """Whether the delivery's transaction is still open on a live connection."""
        conn, transaction = self._conn, self._transaction
        return (
            not self._broken
            and conn is not None
            and not conn.invalidated
            and not conn.closed
            and transaction is not None
            and transaction.is_active
        )

    def _write(self, conn: sa.Connection, rows: list[Record], wanted: list[str]) -> None:
        """Write one batch inside a savepoint of the delivery's transaction (rolled back alone on error)."""
        mysql = self.engine.dialect.name == "mysql"
        if mysql:
            # DDL commits implicitly on MariaDB/MySQL (and ends any savepoint): never inside one.
            columns = self._ensure_table(conn, rows, wanted)
        savepoint = conn.begin_nested()
        try:
            if not mysql:
                columns = self._ensure_table(conn, rows, wanted)
            statements = self._statements.get(tuple(columns))
            if statements is None:
                keys = [k for k in self.keys if k in columns]
                statements = Statements(
                    self.engine.dialect, self.settings.table, self._schema(), columns, keys
                )
                self._statements[tuple(columns)] = statements
            values = self._values(rows, columns)
            cursor = conn.connection.cursor()
            try:
                statements.run(cursor, values)
            finally:
                cursor.close()
        except BaseException:
            try:
                savepoint.rollback()
            except Exception:  # a lost connection, or a transaction the server aborted: no batch is safe now
                self._broken = True
            raise
        savepoint.commit()

    def _transaction_lost(self, message: str) -> bool:
        """After a failed batch: whether the delivery's transaction, with rows in it, is gone (then remember
        why). A transaction with no rows yet is simply closed, so that the next try opens a new one."""
        if self._usable():
            return False
        if not self._pending:
            self.abort()
            return False
        self._lost = (
            f"the delivery's transaction was lost ({message}), and with it the {self._pending} records "
            "written before; the delivery task's retry writes them again"
        )
        return True

    def write_batch(self, records: list[Record]) -> None:
        """Insert (or upsert) the batch inside the delivery's transaction (nothing is visible before commit)."""
        if not records:
            return
        if self._lost is not None:
            raise self.fail(f"not written: {self._lost}", retryable=False)
        rows, wanted = self._rows(records)
        if self.keys:
            rows = self._dedupe(rows)
        try:
            self._write(self._connection(), rows, wanted)
        except MuxlyDeliveryError as exc:
            self._columns = None  # the savepoint rolled back: look at the table again next time
            if self._transaction_lost(str(exc)):
                raise self.fail(str(self._lost), retryable=False) from None
            raise
        except Exception as exc:
            self._columns = None
            error = getattr(exc, "orig", None) or exc
            message = self.describe(error).strip()
            sqlite = self._engine is not None and self._engine.dialect.name == "sqlite"
            if self._transaction_lost(message):
                raise self.fail(str(self._lost), retryable=False) from None
            retryable = type(error).__name__ in _RETRYABLE
            if retryable and sqlite:
                # SQLite reports schema problems as OperationalError too: only a busy file is worth a retry.
                retryable = any(word in str(error) for word in ("locked", "busy", "unable to open"))
            raise self.fail(message, retryable=retryable) from None
        self.delivered += len(records)
        self._pending += len(records)

    def commit(self) -> list[str]:
        """Commit the delivery's transaction and close the connections.

        :raises MuxlyDeliveryError: when the transaction was lost or the commit failed (nothing was written;
            after a connection lost during the ``COMMIT`` itself, the outcome is unknown)
        """
        try:
            if self._lost is None and self._conn is not None:
                self._transaction_lost("the connection is no longer usable")
            if self._lost is not None:
                raise self.fail(self._lost)
            if self._transaction is not None:
                try:
                    self._transaction.commit()
                except Exception as exc:
                    error = getattr(exc, "orig", None) or exc
                    raise self.fail(
                        f"commit failed ({self.describe(error).strip()}); the {self._pending} records of this "
                        "delivery are not counted as delivered"
                    ) from None
        finally:
            self.abort()
        schema = f"{self.settings.schema_}." if self.settings.schema_ else ""
        return [f"table {schema}{self.settings.table}"]

    def abort(self) -> None:
        """Roll back what is not committed and close the connections."""
        conn, self._conn, transaction, self._transaction = self._conn, None, self._transaction, None
        self._pending = 0
        self._lost = None
        self._broken = False
        if transaction is not None and transaction.is_active:
            with contextlib.suppress(Exception):
                transaction.rollback()
        if conn is not None:
            with contextlib.suppress(Exception):
                conn.close()
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def _sqlite_transactions(engine: Engine) -> None:
    """Let SQLAlchemy, not the ``sqlite3`` module, begin transactions, so that savepoints and DDL stay inside
    the delivery's transaction (SQLAlchemy's documented recipe for pysqlite)."""
    from sqlalchemy import event

    @event.listens_for(engine, "connect")
    def _no_implicit_transactions(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None

    @event.listens_for(engine, "begin")
    def _begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN")
