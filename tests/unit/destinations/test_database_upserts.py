"""Every write mode of the database destination on every dialect, through SQLAlchemy's dialect constructs.

Modes: plain insert, upsert updating the other columns, upsert on a composite key, upsert where every column is a
key (nothing to update), odd identifiers (reserved words, spaces, ``%``, mixed case). Dialects: SQLite,
PostgreSQL through psycopg2 (``execute_values``) and through psycopg 3 (``COPY`` for inserts, ``executemany`` for
upserts),
MariaDB through PyMySQL.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from muxly_provider.destinations.base import DestinationContext, MuxlyDeliveryError, RunInfo
from muxly_provider.destinations.database import DatabaseDestination
from muxly_provider.destinations.database_sql import Statements, insert_statement, normalize_url
from tests.integration.destinations.destination_servers import mariadb_database

RUN = RunInfo(
    dag_id="muxly__j",
    run_id="manual__1",
    job_id="j",
    connector_id="c",
    logical_date=datetime(2026, 12, 3, tzinfo=UTC),
)


@pytest.fixture(scope="module")
def mariadb_url() -> Iterator[str]:
    with mariadb_database() as url:
        yield url


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("psycopg2", marks=pytest.mark.postgres),
        pytest.param("psycopg", marks=pytest.mark.postgres),
        "mariadb",
    ]
)
def target_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'target.db'}"
    if request.param.startswith("psycopg"):
        url = str(request.getfixturevalue("postgres_url"))
        return url.replace("postgresql+psycopg2://", f"postgresql+{request.param}://")
    return str(request.getfixturevalue("mariadb_url"))


def _deliver(url: str, table: str, batches: list[list[dict[str, Any]]], **config: Any) -> None:
    ctx = DestinationContext(
        id="db",
        name="DB",
        destination_type="database",
        config={"connection_string": url, "table": table, "create_table": True, **config},
    )
    dest = DatabaseDestination(ctx, RUN)
    for batch in batches:
        dest.write_batch(batch)
    dest.commit()


def _rows(url: str, table: str, order: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            target = sa.Table(table, sa.MetaData(), autoload_with=conn)
            return [tuple(r) for r in conn.execute(sa.select(target).order_by(target.c[order]))]
    finally:
        engine.dispose()


def _table() -> str:
    return f"t_{uuid.uuid4().hex[:8]}"


def test_insert_appends_every_record(target_url: str) -> None:
    table = _table()
    _deliver(target_url, table, [[{"id": 1, "v": "a"}, {"id": 1, "v": "b"}], [{"id": 2, "v": None}]])
    assert _rows(target_url, table, "v") == [(2, None), (1, "a"), (1, "b")] or _rows(
        target_url, table, "v"
    ) == [(1, "a"), (1, "b"), (2, None)]  # NULLs sort first on some databases, last on others


def test_upsert_updates_the_other_columns(target_url: str) -> None:
    table = _table()
    _deliver(target_url, table, [[{"id": 1, "v": "a", "n": 1}, {"id": 2, "v": "b", "n": 2}]], upsert_key="id")
    _deliver(
        target_url, table, [[{"id": 2, "v": "B", "n": 20}, {"id": 3, "v": "c", "n": 3}]], upsert_key="id"
    )
    assert _rows(target_url, table, "id") == [(1, "a", 1), (2, "B", 20), (3, "c", 3)]


def test_upsert_on_a_composite_key(target_url: str) -> None:
    table = _table()
    keys = ["k1", "k2"]
    _deliver(
        target_url, table, [[{"k1": "a", "k2": 1, "v": 1}, {"k1": "a", "k2": 2, "v": 2}]], upsert_key=keys
    )
    _deliver(
        target_url, table, [[{"k1": "a", "k2": 2, "v": 22}, {"k1": "b", "k2": 1, "v": 3}]], upsert_key=keys
    )
    assert sorted(_rows(target_url, table, "v")) == [("a", 1, 1), ("a", 2, 22), ("b", 1, 3)]


def test_upsert_when_every_column_is_a_key_keeps_the_rows(target_url: str) -> None:
    table = _table()
    _deliver(target_url, table, [[{"id": 1}, {"id": 2}]], upsert_key="id")
    _deliver(target_url, table, [[{"id": 2}, {"id": 3}], [{"id": 1}]], upsert_key="id")
    assert _rows(target_url, table, "id") == [(1,), (2,), (3,)]


def test_odd_identifiers_are_quoted_by_the_dialect(target_url: str) -> None:
    table = f"Order Items {uuid.uuid4().hex[:6]}"
    # PyMySQL's executemany leaves the ON DUPLICATE KEY part unformatted: no '%' in MariaDB identifiers.
    percent = "100 off" if target_url.startswith("mysql") else "100% off"
    first = {"select": 1, "first name": "Ann", percent: True, "MixedCase": 1.5}
    _deliver(target_url, table, [[first]], upsert_key="select")
    _deliver(
        target_url, table, [[{**first, "first name": "Bob"}, {**first, "select": 2}]], upsert_key="select"
    )
    rows = _rows(target_url, table, "select")
    assert [(r[0], r[1], r[3]) for r in rows] == [(1, "Bob", 1.5), (2, "Ann", 1.5)]
    assert all(bool(r[2]) for r in rows)


@pytest.mark.postgres
def test_psycopg3_inserts_through_copy(postgres_url: str) -> None:
    """psycopg 3 (a conn_id's engine) inserts through COPY; a bad batch fails alone and loses nothing else."""
    url = postgres_url.replace("postgresql+psycopg2://", "postgresql+psycopg://")
    dialect = sa.create_engine(url).dialect
    assert Statements(dialect, "t", None, ["id", "v"], []).copy is not None
    assert Statements(dialect, "t", None, ["id", "v"], ["id"]).copy is None  # upserts keep executemany
    table = f"Copy % Target {uuid.uuid4().hex[:6]}"
    ctx = DestinationContext(
        id="db",
        name="DB",
        destination_type="database",
        config={"connection_string": url, "table": table, "create_table": True},
    )
    dest = DatabaseDestination(ctx, RUN)
    dest.write_batch([{"id": index, "odd name": f"r{index}", "v": None} for index in range(700)])
    with pytest.raises(MuxlyDeliveryError, match="id"):
        dest.write_batch([{"id": "not a number", "odd name": "x", "v": None}])
    dest.write_batch([{"id": 700, "odd name": "tab\there\nand 'quotes'", "v": 1.5}])
    dest.commit()
    stored = _rows(url, table, "id")
    assert [r[0] for r in stored] == list(range(701))
    # v was created as text (only nulls in the first batch): 1.5 is stored as '1.5', as an INSERT stores it.
    assert stored[700][1:] == ("tab\there\nand 'quotes'", "1.5")


@pytest.mark.postgres
def test_upsert_in_a_schema(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    with engine.begin() as conn:
        conn.exec_driver_sql('CREATE SCHEMA IF NOT EXISTS "Sales Data"')
    engine.dispose()
    table = _table()
    for value in ("a", "b"):
        _deliver(postgres_url, table, [[{"id": 1, "v": value}]], upsert_key="id", schema="Sales Data")
    engine = sa.create_engine(postgres_url)
    try:
        with engine.connect() as conn:
            rows = conn.exec_driver_sql(f'SELECT id, v FROM "Sales Data".{table}').all()
    finally:
        engine.dispose()
    assert [tuple(r) for r in rows] == [(1, "b")]


@pytest.mark.parametrize(
    ("dialect", "keys", "expected"),
    [
        ("postgresql", ["id"], "ON CONFLICT (id) DO UPDATE SET v = excluded.v"),
        ("postgresql", ["id", "v"], "ON CONFLICT (id, v) DO NOTHING"),
        ("sqlite", ["id"], "ON CONFLICT (id) DO UPDATE SET v = excluded.v"),
        ("mysql", ["id"], "ON DUPLICATE KEY UPDATE v = VALUES(v)"),
        ("mysql", ["id", "v"], "ON DUPLICATE KEY UPDATE id = VALUES(id)"),
        ("postgresql", [], "VALUES (%s, %s)"),
    ],
)
def test_statements_are_the_dialect_constructs(dialect: str, keys: list[str], expected: str) -> None:
    urls = {"postgresql": "postgresql+psycopg2://h/d", "sqlite": "sqlite://", "mysql": "mysql+pymysql://h/d"}
    statements = Statements(sa.create_engine(urls[dialect]).dialect, "t", None, ["id", "v"], keys)
    assert statements.sql.endswith(expected)
    if dialect == "postgresql":  # psycopg2: one multi-row VALUES per batch
        assert statements.execute_values_sql is not None and "VALUES %s" in statements.execute_values_sql


def test_an_upsert_on_another_database_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="upsert_key is supported on PostgreSQL, SQLite and MariaDB/MySQL"):
        insert_statement("mssql", "t", None, ["id"], ["id"])
    assert "INSERT INTO" in str(insert_statement("mssql", "t", None, ["id"], []))


def test_a_key_missing_from_a_record_fails_the_batch(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'target.db'}"
    with pytest.raises(MuxlyDeliveryError, match="upsert_key"):
        _deliver(url, _table(), [[{"id": 1, "v": 1}], [{"v": 2}]], upsert_key="id")
