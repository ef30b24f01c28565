"""The database connector on SQLite, PostgreSQL and MariaDB: bound parameters, streaming, conversions."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import uuid
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from muxly_provider.connectors.base import ConnectorContext
from muxly_provider.connectors.database import DatabaseConnector, to_json_value
from muxly_provider.connectors.registry import get_connector_class
from muxly_provider.exceptions import MuxlyConnectorError
from tests.db_helpers import airflow_connection_json

MARIADB_URL = os.environ.get("MUXLY_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test")


def _connector(settings: dict[str, Any], batch_size: int = 4) -> DatabaseConnector:
    ctx = ConnectorContext(id="db1", name="DB", connector_type="database", settings=settings)
    return DatabaseConnector(ctx, batch_size=batch_size)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "mariadb"])
def orders_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A database with a table ``orders_<random>`` of 10 rows; yields its URL (the table name in ``.table``)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'src.db'}"
    elif request.param == "postgres":
        url = request.getfixturevalue("postgres_url")
    else:
        url = MARIADB_URL
        try:
            create_engine(url).connect().close()
        except Exception as exc:
            pytest.skip(f"MariaDB unreachable: {exc}")
    table = f"orders_{uuid.uuid4().hex[:8]}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, country VARCHAR(8), "
                "amount NUMERIC(10, 2), created DATE)"
            )
        )
        conn.execute(
            text(f"INSERT INTO {table} (id, country, amount, created) VALUES (:id, :c, :a, :d)"),
            [
                {"id": i, "c": "US" if i % 2 else "DE", "a": i + 0.5, "d": dt.date(2026, 1, i + 1)}
                for i in range(10)
            ],
        )
    request.node.table = table
    yield url
    with engine.begin() as conn:
        conn.execute(text(f"DROP TABLE {table}"))
    engine.dispose()


def test_streams_rows_with_named_parameters(orders_url: str, request: pytest.FixtureRequest) -> None:
    table = request.node.table
    connector = _connector({"connection_string": orders_url})
    batches = list(
        connector.fetch(
            {
                "query": f"SELECT id, country, amount, created FROM {table} WHERE country = :c AND id >= :low ORDER BY id",
                "parameters": {"c": "US", "low": 2},
            }
        )
    )
    connector.close()
    assert [len(b) for b in batches] == [4]
    assert batches[0][0] == {"id": 3, "country": "US", "amount": 3.5, "created": "2026-01-04"}
    assert [r["id"] for r in batches[0]] == [3, 5, 7, 9]


def test_positional_parameters_and_injection_is_bound(
    orders_url: str, request: pytest.FixtureRequest
) -> None:
    table = request.node.table
    marker = "?" if orders_url.startswith("sqlite") else "%s"
    connector = _connector({"connection_string": orders_url}, batch_size=100)
    rows = [
        r
        for b in connector.fetch(
            {"query": f"SELECT id FROM {table} WHERE country = {marker} ORDER BY id", "parameters": ["DE"]}
        )
        for r in b
    ]
    assert [r["id"] for r in rows] == [0, 2, 4, 6, 8]
    evil = [
        r
        for b in connector.fetch(
            {"query": f"SELECT id FROM {table} WHERE country = :c", "parameters": {"c": "DE' OR '1'='1"}}
        )
        for r in b
    ]
    assert evil == []


def test_errors_name_the_connector_without_the_password(tmp_path: Path) -> None:
    connector = _connector({"connection_string": "postgresql+psycopg2://bob:pw-secret@127.0.0.1:1/none"})
    with pytest.raises(MuxlyConnectorError, match=r"'db1'.*OperationalError") as info:
        list(connector.fetch({"query": "SELECT 1"}))
    assert "pw-secret" not in str(info.value)
    sqlite = _connector({"connection_string": f"sqlite:///{tmp_path / 'x.db'}"})
    with pytest.raises(MuxlyConnectorError, match="'db1': the query failed: OperationalError: no such table"):
        list(sqlite.fetch({"query": "SELECT * FROM missing"}))
    with pytest.raises(MuxlyConnectorError, match="no query"):
        list(sqlite.fetch({}))
    with pytest.raises(MuxlyConnectorError, match="not a valid SQLAlchemy URL"):
        list(_connector({"connection_string": "not a url"}).fetch({"query": "SELECT 1"}))
    assert "sqlite" in sqlite.test_connection()


@pytest.mark.parametrize("path", ["conn_id", "connection_string"])
def test_conn_id_through_the_common_sql_hook_and_inline_url(
    orders_url: str, path: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``conn_id`` reads through the engine of the connection type's common-sql hook (PostgresHook,
    MySqlHook, SqliteHook); ``connection_string`` keeps working."""
    monkeypatch.setenv("AIRFLOW_CONN_MUXLY_SRC", airflow_connection_json(orders_url))
    settings = {"conn_id": "muxly_src"} if path == "conn_id" else {"connection_string": orders_url}
    connector = _connector(settings)
    table = request.node.table
    rows = [r for b in connector.fetch({"query": f"SELECT id, country FROM {table} ORDER BY id"}) for r in b]
    assert rows[:2] == [{"id": 0, "country": "DE"}, {"id": 1, "country": "US"}] and len(rows) == 10
    if path == "conn_id":
        assert type(connector.engine()).__name__ == "Engine"
        hook_drivers = {"postgresql": {"psycopg", "psycopg2"}, "mysql": {"mysqldb"}, "sqlite": {"pysqlite"}}
        assert connector.engine().dialect.driver in hook_drivers[connector.engine().dialect.name]
    assert "connected to" in connector.test_connection()


def test_conn_id_errors_name_the_connection_and_the_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(MuxlyConnectorError, match="'db1': conn_id: Airflow connection 'nope' not found"):
        list(_connector({"conn_id": "nope"}).fetch({"query": "SELECT 1"}))
    monkeypatch.setenv("AIRFLOW_CONN_MUXLY_HTTP", json.dumps({"conn_type": "http", "host": "example.com"}))
    with pytest.raises(MuxlyConnectorError, match="'muxly_http' of type 'http' is not a SQL connection"):
        list(_connector({"conn_id": "muxly_http"}).fetch({"query": "SELECT 1"}))
    monkeypatch.setenv("AIRFLOW_CONN_MUXLY_PG", json.dumps({"conn_type": "postgres", "host": "127.0.0.1"}))
    monkeypatch.setitem(sys.modules, "airflow.providers.postgres.hooks.postgres", None)  # not installed
    with pytest.raises(MuxlyConnectorError) as info:
        list(_connector({"conn_id": "muxly_pg"}).fetch({"query": "SELECT 1"}))
    assert str(info.value) == (
        "connector 'db1': conn_id: Airflow connection 'muxly_pg' of type 'postgres' needs the Airflow provider "
        "apache-airflow-providers-postgres: pip install 'airflow-provider-muxly[postgres]'"
    )
    monkeypatch.setenv("AIRFLOW__MUXLY__ALLOWED_CONN_IDS", "warehouse_*")
    with pytest.raises(MuxlyConnectorError, match=r"allowed_conn_ids \(warehouse_\*\), not 'muxly_http'"):
        list(_connector({"conn_id": "muxly_http"}).fetch({"query": "SELECT 1"}))


@pytest.mark.postgres
def test_postgres_uses_a_server_side_cursor(postgres_url: str) -> None:
    """Rows arrive while the query is still open: a named cursor, not a client-side fetchall."""
    connector = _connector({"connection_string": postgres_url}, batch_size=1000)
    stream = connector.fetch(
        {"query": "SELECT g AS n, repeat('x', 100) AS pad FROM generate_series(1, 200000) g"}
    )
    first = next(stream)
    engine = connector.engine()
    with engine.connect() as other:
        cursors = other.execute(
            text(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'FETCH FORWARD % FROM %' "
                "AND state = 'idle in transaction'"
            )
        ).scalar()
    assert len(first) == 1000 and cursors == 1
    assert sum(len(b) for b in stream) == 199_000
    connector.close()


def test_json_values_and_registry() -> None:
    assert to_json_value(Decimal("2")) == 2 and to_json_value(Decimal("2.5")) == 2.5
    assert to_json_value(dt.datetime(2026, 1, 2, 3, 4, 5)) == "2026-01-02T03:04:05"
    assert to_json_value(b"\x00\x01") == "AAE="
    assert to_json_value(uuid.UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    assert get_connector_class("database") is DatabaseConnector
    assert "query" in DatabaseConnector.supported_actions
