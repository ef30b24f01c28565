"""The ``database`` connector: the rows of a SQL query, streamed with a server-side cursor.

The database is an Airflow connection (``conn_id``: the connection's hook must be a common-sql ``DbApiHook``,
whose ``get_sqlalchemy_engine()`` Muxly uses; ``airflow-provider-muxly[common-sql]`` plus the extra of the
connection's type, see :mod:`muxly_provider.hooks.providers`; ``[muxly] allowed_conn_ids`` applies) or a
SQLAlchemy URL (``connection_string``, a secret stored encrypted).
The query comes from ``data_spec.query`` (the ``query`` action puts ``action_params.query`` there) with bound
parameters: a mapping binds ``:name`` placeholders, a list binds the driver's positional placeholders (``%s``
for psycopg2/pymysql, ``?`` for SQLite). Values are never formatted into the SQL text.

The database may not be Muxly's or Airflow's own (:func:`muxly_provider.security.databases.guard_engine`,
checked by URL and by content before the query runs); SQLite connections refuse ``ATTACH`` and ``VACUUM INTO``.

Rows are streamed with ``stream_results`` and ``yield_per``: a named (server-side) cursor on PostgreSQL, an
unbuffered cursor on MySQL/MariaDB, and SQLite's own incremental stepping, so memory is bounded by the batch
size. Values become JSON-friendly: ``Decimal`` to ``int``/``float``, dates and times to ISO 8601, ``UUID`` to
text, bytes to base64.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from collections.abc import Callable, Iterator, Mapping
from decimal import Decimal
from typing import Any

from sqlalchemy import Engine, create_engine, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError
from sqlalchemy.pool import NullPool

from muxly_provider.connectors.base import MuxlyConnector, Record
from muxly_provider.security.errors import MuxlyConfinementError


def _decimal(value: Decimal) -> int | float:
    return int(value) if value == value.to_integral_value() and abs(value) < 2**63 else float(value)


_CONVERT: dict[type, Callable[[Any], Any]] = {
    Decimal: _decimal,
    dt.datetime: lambda v: v.isoformat(),
    dt.date: lambda v: v.isoformat(),
    dt.time: lambda v: v.isoformat(),
    dt.timedelta: lambda v: v.total_seconds(),
    uuid.UUID: str,
    bytes: lambda v: base64.b64encode(v).decode("ascii"),
    memoryview: lambda v: base64.b64encode(bytes(v)).decode("ascii"),
}
_NATIVE = frozenset({str, int, float, bool, type(None), dict, list})


def to_json_value(value: Any) -> Any:
    """``value`` as a JSON-friendly value (see the module docstring)."""
    kind = type(value)
    if kind in _NATIVE:
        return value
    convert = _CONVERT.get(kind)
    return convert(value) if convert is not None else str(value)


class DatabaseConnector(MuxlyConnector):
    """Stream the rows of a SQL query from any SQLAlchemy-supported database."""

    connector_type = "database"
    supported_actions = frozenset({"sync", "query", "export", "pipeline"})

    _engine: Engine | None = None

    def engine(self) -> Engine:
        """The engine of the configured database (built once per connector instance)."""
        if self._engine is None:
            from muxly_provider.security.databases import guard_engine

            engine = self._build_engine()
            field = "conn_id" if self.context.settings.get("conn_id") else "connection_string"
            try:
                self._engine = guard_engine(engine, field)
            except MuxlyConfinementError as exc:
                engine.dispose()
                raise self.error(f"{exc.field}: {exc.reason}") from None
        return self._engine

    def _build_engine(self) -> Engine:
        settings = self.context.settings
        conn_id = settings.get("conn_id")
        if conn_id:
            return self._engine_from_connection(str(conn_id))
        url = settings.get("connection_string")
        if not url:
            raise self.error("set 'conn_id' or 'connection_string'")
        try:
            parsed = make_url(str(url))
        except ArgumentError:
            raise self.error("connection_string is not a valid SQLAlchemy URL") from None
        try:
            return create_engine(parsed, poolclass=NullPool)
        except (ImportError, SQLAlchemyError, ValueError) as exc:
            raise self.error(
                f"cannot create an engine for {parsed.drivername!r} URL ({type(exc).__name__})"
            ) from None

    def _engine_from_connection(self, conn_id: str) -> Engine:
        from muxly_provider.hooks import providers as provider_hooks

        try:
            return provider_hooks.sql_engine(conn_id, "conn_id", poolclass=NullPool)
        except (provider_hooks.MuxlyConnectionError, provider_hooks.MuxlyProviderMissingError) as exc:
            raise self.error(str(exc)) from None

    def fetch(self, data_spec: Mapping[str, Any]) -> Iterator[list[Record]]:
        """Run ``data_spec.query`` with ``data_spec.parameters`` and yield its rows in batches."""
        query = data_spec.get("query")
        if not isinstance(query, str) or not query.strip():
            raise self.error("no query: set action_params.query (query action) or data_spec.query")
        parameters = data_spec.get("parameters")
        engine = self.engine()
        try:
            with engine.connect() as conn:
                streaming = conn.execution_options(stream_results=True, yield_per=self.batch_size)
                if isinstance(parameters, (list, tuple)):
                    result = streaming.exec_driver_sql(query, tuple(parameters))
                else:
                    result = streaming.execute(text(query), dict(parameters or {}))
                if not result.returns_rows:
                    raise self.error("the query returns no rows")
                keys = list(result.keys())
                for part in result.partitions(self.batch_size):
                    yield [self._record(keys, row) for row in part]
        except SQLAlchemyError as exc:
            raise self.error(f"the query failed: {_reason(exc)}") from None

    @staticmethod
    def _record(keys: list[str], row: Any) -> Record:
        record: Record = {}
        for key, value in zip(keys, row, strict=True):
            kind = type(value)
            if kind in _NATIVE:
                record[key] = value
            else:
                convert = _CONVERT.get(kind)
                record[key] = convert(value) if convert is not None else str(value)
        return record

    def test_connection(self) -> str:
        """Connect and run ``SELECT 1``."""
        engine = self.engine()
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1")).all()
        except SQLAlchemyError as exc:
            raise self.error(f"cannot connect: {_reason(exc)}") from None
        finally:
            self.close()
        return f"database connector {self.context.id!r}: connected to {engine.dialect.name}"

    def close(self) -> None:
        """Dispose of the engine."""
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None


def _reason(exc: SQLAlchemyError) -> str:
    """The database's own message without the SQL statement, parameters or URL SQLAlchemy appends."""
    original = getattr(exc, "orig", None)
    message = str(original) if original is not None else type(exc).__name__
    first = message.strip().splitlines()[0] if message.strip() else type(exc).__name__
    return f"{type(original or exc).__name__}: {first[:300]}"
