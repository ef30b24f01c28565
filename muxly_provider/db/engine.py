"""The SQLAlchemy engine of Muxly's database, built from Muxly's own setting (never Airflow's ORM).

Engines are created lazily and cached per URL. On PostgreSQL the schema-less metadata is mapped to
``[muxly] db_schema`` through ``schema_translate_map``; on SQLite foreign keys are switched on (the seed's
``ON DELETE CASCADE`` needs them) and writers wait instead of failing on a busy file.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from muxly_provider import settings

_lock = threading.Lock()
_engines: dict[tuple[str, str | None], Engine] = {}


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()


def build_engine(url: str, schema: str | None = None) -> Engine:
    """Create an engine for ``url`` whose schema-less tables live in ``schema`` (PostgreSQL only)."""
    parsed = make_url(url)
    kwargs: dict[str, Any] = {"pool_pre_ping": True, "future": True}
    if parsed.get_backend_name() == "sqlite":
        kwargs["connect_args"] = {"check_same_thread": False, "timeout": 30}
        kwargs.pop("pool_pre_ping")
    if (
        schema
        and parsed.get_backend_name() == "postgresql"
        and parsed.get_driver_name() in {"psycopg2", "psycopg"}
    ):
        # Plain SQL (text()) is not schema-translated: put the schema first on the search path too.
        kwargs["connect_args"] = {"options": f"-c search_path={schema},public"}
    engine = create_engine(url, **kwargs)
    if parsed.get_backend_name() == "sqlite":
        _configure_sqlite(engine)
    if schema:
        engine = engine.execution_options(schema_translate_map={None: schema})
    return engine


def get_engine(url: str | None = None) -> Engine:
    """The cached engine of Muxly's database (``[muxly] sql_alchemy_conn`` unless ``url`` is given)."""
    url = url or settings.sql_alchemy_conn()
    schema = settings.db_schema(url)
    key = (url, schema)
    with _lock:
        engine = _engines.get(key)
        if engine is None:
            engine = build_engine(url, schema)
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
