"""The database destination on real SQLite, PostgreSQL and MariaDB: create, map, insert, upsert, errors."""

from __future__ import annotations

import json
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from muxly_provider.destinations.base import DestinationContext, MuxlyDeliveryError, RunInfo
from muxly_provider.destinations.database import DatabaseDestination
from tests.db_helpers import airflow_connection_json
from tests.integration.destinations.destination_servers import mariadb_database

RUN = RunInfo(
    dag_id="muxly__j",
    run_id="manual__1",
    job_id="j",
    connector_id="c",
    logical_date=datetime(2026, 11, 26, tzinfo=UTC),
)


@pytest.fixture(scope="module")
def mariadb_url() -> Iterator[str]:
    with mariadb_database() as url:
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres), "mariadb"])
def target_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'target.db'}"
    if request.param == "postgres":
        return str(request.getfixturevalue("postgres_url")).replace("postgresql+psycopg2://", "postgresql://")
    return str(request.getfixturevalue("mariadb_url"))


def _dest(url: str, **config: Any) -> DatabaseDestination:
    table = config.pop("table", f"t_{uuid.uuid4().hex[:8]}")
    ctx = DestinationContext(
        id="db",
        name="DB",
        destination_type="database",
        config={"connection_string": url, "table": table, **config},
    )
    return DatabaseDestination(ctx, RUN)


def _rows(url: str, table: str, order: str = "id") -> list[dict[str, Any]]:
    from muxly_provider.destinations.database_sql import normalize_url

    engine = sa.create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            return [
                dict(r) for r in conn.execute(sa.text(f"SELECT * FROM {table} ORDER BY {order}")).mappings()
            ]
    finally:
        engine.dispose()


def test_create_table_insert_and_upsert_rerun(target_url: str) -> None:
    records = [{"id": i, "name": f"n{i}", "amount": i * 1.5, "tags": ["a", i]} for i in range(1, 6)]
    dest = _dest(target_url, create_table=True, upsert_key="id", batch_size=2)
    table = dest.settings.table
    dest.write_batch(records[:3])
    dest.write_batch(records[3:])
    assert dest.commit() == [f"table {table}"]
    # The same run again, with a changed record: updated, not duplicated.
    again = _dest(target_url, table=table, create_table=True, upsert_key="id")
    again.write_batch([{**records[0], "name": "changed"}, *records[1:]])
    again.commit()
    rows = _rows(target_url, table)
    assert [r["id"] for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0]["name"] == "changed" and rows[1]["amount"] == 3.0
    assert json.loads(rows[2]["tags"]) == ["a", 3]


def test_duplicate_keys_in_one_batch_keep_the_last(target_url: str) -> None:
    dest = _dest(target_url, create_table=True, upsert_key=["k1", "k2"])
    dest.write_batch(
        [{"k1": "a", "k2": 1, "v": 1}, {"k1": "a", "k2": 1, "v": 2}, {"k1": "b", "k2": 1, "v": 3}]
    )
    dest.commit()
    rows = _rows(target_url, dest.settings.table, order="k1")
    assert [(r["k1"], r["v"]) for r in rows] == [("a", 2), ("b", 3)]


def test_column_mapping_and_new_fields(target_url: str) -> None:
    dest = _dest(target_url, create_table=True, column_mapping={"order_id": "id", "customer": "who"})
    dest.write_batch([{"order_id": 1, "customer": "x", "ignored": True}])
    dest.commit()
    plain = _dest(target_url, create_table=True)
    plain.write_batch([{"id": 1}])
    plain.write_batch([{"id": 2, "late": "field"}])
    plain.commit()
    assert _rows(target_url, dest.settings.table) == [{"id": 1, "who": "x"}]
    assert _rows(target_url, plain.settings.table) == [{"id": 1, "late": None}, {"id": 2, "late": "field"}]


def test_existing_table_without_create_drops_unknown_fields(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE orders (id INTEGER PRIMARY KEY, amount REAL)")
    engine.dispose()
    dest = _dest(url, table="orders", upsert_key="id")
    dest.write_batch([{"id": 1, "amount": 2.5, "extra": "x"}])
    dest.write_batch([{"id": 1, "amount": 3.5}])
    dest.commit()
    assert _rows(url, "orders") == [{"id": 1, "amount": 3.5}]


def test_missing_table_and_missing_key_are_permanent_errors(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'x.db'}"
    with pytest.raises(MuxlyDeliveryError, match="does not exist") as info:
        _dest(url, table="nope").write_batch([{"id": 1}])
    assert not info.value.retryable and "'db' (database)" in str(info.value)
    with pytest.raises(MuxlyDeliveryError, match="no value for upsert_key") as info:
        _dest(url, create_table=True, upsert_key="id").write_batch([{"name": "no id"}])
    assert not info.value.retryable


def test_unreachable_server_is_retryable_and_hides_the_password() -> None:
    dest = _dest("postgresql://muxly:pa55word-secret@127.0.0.1:9/db", create_table=True)
    with pytest.raises(MuxlyDeliveryError) as info:
        dest.write_batch([{"id": 1}])
    assert info.value.retryable
    assert "pa55word-secret" not in str(info.value)


def test_airflow_connection(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "conn.db"
    monkeypatch.setenv("AIRFLOW_CONN_MUXLY_TARGET", json.dumps({"conn_type": "sqlite", "host": str(path)}))
    ctx = DestinationContext(
        id="db",
        name="DB",
        destination_type="database",
        config={"conn_id": "muxly_target", "table": "events", "create_table": True},
    )
    dest = DatabaseDestination(ctx, RUN)
    dest.write_batch([{"id": 1, "kind": "x"}])
    dest.commit()
    assert _rows(f"sqlite:///{path}", "events") == [{"id": 1, "kind": "x"}]


@pytest.mark.parametrize("path", ["conn_id", "connection_string"])
def test_conn_id_and_inline_url_write_the_same_rows(
    target_url: str, path: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``conn_id`` goes through the connection type's common-sql hook (PostgresHook, MySqlHook, SqliteHook);
    ``connection_string`` keeps working for configs from the original Muxly."""
    monkeypatch.setenv("AIRFLOW_CONN_MUXLY_DB_TARGET", airflow_connection_json(target_url))
    source = {"conn_id": "muxly_db_target"} if path == "conn_id" else {"connection_string": target_url}
    table = f"t_{uuid.uuid4().hex[:8]}"
    ctx = DestinationContext(
        id="db",
        name="DB",
        destination_type="database",
        config={**source, "table": table, "create_table": True, "upsert_key": "id"},
    )
    dest = DatabaseDestination(ctx, RUN)
    dest.write_batch([{"id": 1, "name": "a"}, {"id": 2, "name": "b"}])
    if path == "conn_id":
        # The hook's engine: PostgresHook picks psycopg 3 when installed, MySqlHook mysqlclient by default.
        hook_drivers = {"postgresql": {"psycopg", "psycopg2"}, "mysql": {"mysqldb"}, "sqlite": {"pysqlite"}}
        assert dest.engine.dialect.driver in hook_drivers[dest.engine.dialect.name]
    assert dest.commit() == [f"table {table}"]
    assert _rows(target_url, table) == [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]


def test_conn_id_without_the_provider_of_its_type_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_MUXLY_MARIA", json.dumps({"conn_type": "mysql", "host": "127.0.0.1", "schema": "test"})
    )
    monkeypatch.setitem(sys.modules, "airflow.providers.mysql.hooks.mysql", None)  # not installed
    dest = DatabaseDestination(
        DestinationContext(
            id="db", name="DB", destination_type="database", config={"conn_id": "muxly_maria", "table": "t"}
        ),
        RUN,
    )
    with pytest.raises(MuxlyDeliveryError) as info:
        dest.write_batch([{"id": 1}])
    assert not info.value.retryable
    assert "apache-airflow-providers-mysql: pip install 'airflow-provider-muxly[mysql]'" in str(info.value)
    assert "'muxly_maria' of type 'mysql'" in str(info.value)


def test_conn_id_refused_by_the_allow_list_at_run_time(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_REPORTING", airflow_connection_json(f"sqlite:///{tmp_path / 'r.db'}"))
    monkeypatch.setenv("AIRFLOW__MUXLY__ALLOWED_CONN_IDS", "muxly_*, warehouse")
    dest = DatabaseDestination(
        DestinationContext(
            id="db", name="DB", destination_type="database", config={"conn_id": "reporting", "table": "t"}
        ),
        RUN,
    )
    with pytest.raises(MuxlyDeliveryError, match=r"allowed_conn_ids \(muxly_\*, warehouse\)") as info:
        dest.write_batch([{"id": 1}])
    assert not info.value.retryable and not (tmp_path / "r.db").exists()


def _create(url: str, table: str) -> None:
    from muxly_provider.destinations.database_sql import normalize_url

    engine = sa.create_engine(normalize_url(url))
    with engine.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {table} (id INTEGER PRIMARY KEY, name VARCHAR(20))")
    engine.dispose()


def _visible(url: str, table: str) -> list[dict[str, Any]]:
    """The rows another session sees (none when it does not see the table either)."""
    try:
        return _rows(url, table)
    except sa.exc.SQLAlchemyError:
        return []


@pytest.mark.parametrize("upsert", [False, True], ids=["insert", "upsert"])
def test_one_delivery_is_one_transaction_nothing_shows_before_commit(target_url: str, upsert: bool) -> None:
    keys = {"upsert_key": "id"} if upsert else {}
    # A column added mid-delivery stays in the transaction, except on MariaDB where DDL commits implicitly.
    late = {} if target_url.startswith("mysql") else {"late": "new column"}
    batches = [[{"id": 1, "name": "a"}, {"id": 2, "name": "b"}], [{"id": 3, "name": "c", **late}]]
    dest = _dest(target_url, create_table=True, **keys)
    table = dest.settings.table
    try:
        for batch in batches:
            dest.write_batch(batch)
        assert _visible(target_url, table) == []
    finally:
        dest.abort()  # the delivery task failed (or was killed): nothing stays
    assert _visible(target_url, table) == []

    retry = _dest(target_url, table=table, create_table=True, **keys)
    for batch in batches:
        retry.write_batch(batch)
    retry.commit()
    assert [r["id"] for r in _rows(target_url, table)] == [1, 2, 3]


def test_a_refused_batch_is_rolled_back_alone(target_url: str) -> None:
    from muxly_provider.runtime.delivery import Delivery

    table = f"t_{uuid.uuid4().hex[:8]}"
    _create(target_url, table)
    store = _ListStore()
    ctx = DestinationContext(
        "db", "DB", "database", {"connection_string": target_url, "table": table, "batch_size": 2}
    )
    delivery = Delivery({"db": ctx}, RUN, store)
    # The second batch repeats id 2 (a primary-key violation in insert mode): refused, and only it.
    delivery.send({"db": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]})
    delivery.send({"db": [{"id": 3, "name": "c"}, {"id": 2, "name": "again"}]})
    delivery.send({"db": [{"id": 4, "name": "d"}]})
    delivery.flush()
    delivery.commit()
    counts = delivery.outcomes["db"]
    assert (counts.routed, counts.delivered, counts.dead_lettered, counts.lost) == (5, 3, 2, 0)
    assert [r["id"] for r in _rows(target_url, table)] == [1, 2, 4]
    assert [[r["id"] for r in letter.records] for letter in store.letters] == [[3, 2]]


class _ListStore:
    name = "list"

    def __init__(self) -> None:
        self.letters: list[Any] = []

    def put(self, letter: Any) -> None:
        self.letters.append(letter)

    def resolve(self, destination_id: str, failed_batches: Any) -> int:
        return 0


@pytest.mark.postgres
@pytest.mark.parametrize("upsert", [False, True], ids=["insert", "upsert"])
def test_a_connection_lost_mid_delivery_counts_nothing_delivered(postgres_url: str, upsert: bool) -> None:
    """The server ends the delivery's connection between two batches: the batches before are rolled back with
    the transaction, so they count as lost (never delivered), the later ones are dead-lettered unwritten, and
    the delivery task's retry writes every record once."""
    from muxly_provider.runtime.delivery import Delivery

    url = postgres_url.replace("postgresql+psycopg2://", "postgresql://")
    table = f"t_{uuid.uuid4().hex[:8]}"
    name = f"muxly-test-{table}"  # only this delivery's connection is ended, not other tests' pooled ones
    config: dict[str, Any] = {
        "connection_string": f"{url}?application_name={name}",
        "table": table,
        "create_table": True,
        "batch_size": 2,
    }
    if upsert:
        config["upsert_key"] = "id"
    ctx = DestinationContext("db", "DB", "database", config)
    records = [{"id": i, "name": f"n{i}"} for i in range(1, 8)]
    store = _ListStore()
    delivery = Delivery({"db": ctx}, RUN, store)
    delivery.send({"db": records[:4]})  # two batches written in the open transaction
    admin = sa.create_engine(postgres_url)
    with admin.begin() as conn:
        ended = conn.execute(
            sa.text(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = :name"
            ),
            {"name": name},
        ).scalar()
    admin.dispose()
    assert ended == 1
    delivery.send({"db": records[4:]})
    delivery.flush()
    delivery.commit()
    counts = delivery.outcomes["db"]
    assert counts.delivered == 0
    assert (counts.routed, counts.lost, counts.dead_lettered) == (7, 4, 3)
    assert "transaction was lost" in str(counts.error) and "4 records written before" in str(counts.error)
    assert [len(letter.records) for letter in store.letters] == [2, 1]
    with pytest.raises(sa.exc.ProgrammingError):
        _rows(url, table)  # not even the table: it was created in the lost transaction

    retry = Delivery({"db": ctx}, RUN, _ListStore())
    retry.send({"db": records})
    retry.flush()
    retry.commit()
    assert retry.outcomes["db"].delivered == 7 and retry.outcomes["db"].error is None
    assert [r["id"] for r in _rows(url, table)] == list(range(1, 8))


@pytest.mark.postgres
def test_a_connection_lost_inside_a_batch_counts_nothing_delivered(postgres_url: str) -> None:
    """The server ends the connection while a batch's INSERT runs (a trigger makes it slow): the batch's
    savepoint cannot be rolled back, and the batch before it is rolled back with the transaction."""
    import threading

    from muxly_provider.runtime.delivery import Delivery

    url = postgres_url.replace("postgresql+psycopg2://", "postgresql://")
    table = f"t_{uuid.uuid4().hex[:8]}"
    name = f"muxly-test-{table}"
    admin = sa.create_engine(postgres_url)
    with admin.begin() as conn:
        conn.exec_driver_sql(f"CREATE TABLE {table} (id BIGINT, name TEXT)")
        conn.exec_driver_sql(
            f"CREATE FUNCTION {table}_slow() RETURNS trigger AS $$ BEGIN "
            "IF NEW.name = 'slow' THEN PERFORM pg_sleep(5); END IF; RETURN NEW; END $$ LANGUAGE plpgsql"
        )
        conn.exec_driver_sql(
            f"CREATE TRIGGER {table}_slow BEFORE INSERT ON {table} FOR EACH ROW EXECUTE FUNCTION {table}_slow()"
        )

    def terminate() -> None:
        with admin.begin() as conn:
            for _ in range(100):
                ended = conn.execute(
                    sa.text(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                        "WHERE application_name = :name AND wait_event = 'PgSleep'"
                    ),
                    {"name": name},
                ).scalar()
                if ended:
                    return
                conn.exec_driver_sql("SELECT pg_sleep(0.05)")

    ctx = DestinationContext(
        "db",
        "DB",
        "database",
        {"connection_string": f"{url}?application_name={name}", "table": table, "batch_size": 2},
    )
    delivery = Delivery({"db": ctx}, RUN, _ListStore())
    delivery.send({"db": [{"id": 1, "name": "a"}, {"id": 2, "name": "b"}]})
    killer = threading.Thread(target=terminate)
    killer.start()
    delivery.send({"db": [{"id": 3, "name": "slow"}, {"id": 4, "name": "d"}]})
    killer.join()
    delivery.flush()
    delivery.commit()
    counts = delivery.outcomes["db"]
    assert (counts.routed, counts.delivered, counts.lost, counts.dead_lettered) == (4, 0, 2, 2)
    assert "transaction was lost" in str(counts.error)
    assert _rows(url, table) == []
    admin.dispose()
