"""The SQLAlchemy engine of Muxly's database, built from Muxly's own setting (never Airflow's ORM).

Engines are created lazily and cached per URL. On PostgreSQL the schema-less metadata is mapped to
``[muxly] db_schema`` through ``schema_translate_map``; on SQLite foreign keys are switched on (the seed's
``ON DELETE CASCADE`` needs them) and writers wait instead of failing on a busy file. Connections and statements
are bounded by ``[muxly] db_connect_timeout`` and ``[muxly] db_statement_timeout`` (see :func:`build_engine`), so
a slow or unreachable Muxly database fails a caller within a known time instead of holding it.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.orm import Session, sessionmaker

from muxly_provider import settings

_lock = threading.Lock()
_engines: dict[tuple[str, str | None, int, int], Engine] = {}

_SQLITE_DEFAULT_BUSY_SECONDS = 30
_PG_DRIVERS = {"psycopg2", "psycopg"}
_MYSQL_DRIVERS = {"pymysql", "mysqldb"}


def _configure_sqlite(engine: Engine, busy_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_ms)}")
        cursor.close()


def _connect_args(
    parsed: URL, schema: str | None, connect_timeout: int, statement_timeout: int
) -> dict[str, Any]:
    """The driver arguments carrying the schema's search path and the timeouts (see :func:`build_engine`)."""
    backend, driver = parsed.get_backend_name(), parsed.get_driver_name()
    query = parsed.query
    args: dict[str, Any] = {}
    if backend == "sqlite":
        busy = statement_timeout or _SQLITE_DEFAULT_BUSY_SECONDS
        return {"check_same_thread": False, "timeout": busy}
    if backend == "postgresql" and driver in _PG_DRIVERS:
        if connect_timeout and "connect_timeout" not in query:
            # libpq waits at least 2 s (it rounds 1 up to 2).
            args["connect_timeout"] = connect_timeout
        options = []
        if schema:
            # Plain SQL (text()) is not schema-translated: put the schema first on the search path too.
            options.append(f"-c search_path={schema},public")
        if statement_timeout:
            options.append(f"-c statement_timeout={statement_timeout * 1000}")
        if options:
            url_options = query.get("options")
            if url_options:  # the URL's own options come last and win
                options.append(url_options if isinstance(url_options, str) else " ".join(url_options))
            args["options"] = " ".join(options)
    elif backend == "mysql" and driver in _MYSQL_DRIVERS:
        if connect_timeout and "connect_timeout" not in query:
            args["connect_timeout"] = connect_timeout
        if statement_timeout:
            # Socket timeouts: a statement whose answer takes longer fails (the server may still finish it).
            for key in ("read_timeout", "write_timeout"):
                if key not in query:
                    args[key] = statement_timeout
    return args


def build_engine(
    url: str,
    schema: str | None = None,
    *,
    connect_timeout: int | None = None,
    statement_timeout: int | None = None,
) -> Engine:
    """Create an engine for ``url`` whose schema-less tables live in ``schema`` (PostgreSQL only).

    Timeouts (``None``: the settings ``[muxly] db_connect_timeout`` and ``[muxly] db_statement_timeout``; ``0``:
    none) are applied per driver: PostgreSQL (psycopg2, psycopg) gets ``connect_timeout`` and ``-c
    statement_timeout=<ms>`` in ``options`` next to the search path; MySQL/MariaDB (PyMySQL, mysqlclient)
    gets ``connect_timeout`` and read/write socket timeouts of the statement timeout; SQLite waits for a locked
    file up to the statement timeout (30 s when it is 0). A value already in the URL's query wins.
    """
    parsed = make_url(url)
    connect_timeout = settings.db_connect_timeout() if connect_timeout is None else connect_timeout
    statement_timeout = settings.db_statement_timeout() if statement_timeout is None else statement_timeout
    kwargs: dict[str, Any] = {"pool_pre_ping": True, "future": True}
    is_sqlite = parsed.get_backend_name() == "sqlite"
    if is_sqlite:
        kwargs.pop("pool_pre_ping")
    connect_args = _connect_args(parsed, schema, connect_timeout, statement_timeout)
    if connect_args:
        kwargs["connect_args"] = connect_args
    engine = create_engine(url, **kwargs)
    if is_sqlite:
        _configure_sqlite(engine, int(connect_args["timeout"]) * 1000)
    if schema:
        engine = engine.execution_options(schema_translate_map={None: schema})
    return engine


def get_engine(url: str | None = None) -> Engine:
    """The cached engine of Muxly's database (``[muxly] sql_alchemy_conn`` unless ``url`` is given).

    :raises MuxlyDatabaseSettingError: when the setting cannot work here (see
        :func:`muxly_provider.settings.sql_alchemy_conn`)
    """
    url = url or settings.sql_alchemy_conn()
    schema = settings.db_schema(url)
    connect_timeout, statement_timeout = settings.db_connect_timeout(), settings.db_statement_timeout()
    key = (url, schema, connect_timeout, statement_timeout)
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            engine = build_engine(
                url, schema, connect_timeout=connect_timeout, statement_timeout=statement_timeout
            )
            _engines[key] = engine
        return engine


def dispose_engines() -> None:
    """Close every cached engine (tests, and after a fork)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


@contextmanager
def session_scope(engine: Engine | None = None) -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    factory = sessionmaker(bind=engine or get_engine(), expire_on_commit=False)
    session = factory()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()
