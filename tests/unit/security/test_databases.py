"""Muxly's and Airflow's databases are recognised under other spellings, and by content where the URL is hidden."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from muxly_provider.security import databases
from muxly_provider.security.databases import check_url, guard_engine, identity
from muxly_provider.security.errors import MuxlyConfinementError


def same(left: str, right: str) -> bool:
    return identity(left).same_as(identity(right))


def test_sqlite_spellings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    db = tmp_path / "m.db"
    sqlite3.connect(db).close()
    (tmp_path / "link.db").symlink_to(db)
    os.link(db, tmp_path / "hard.db")
    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{db}"
    for alias in (
        f"sqlite:///{tmp_path / 'link.db'}",
        f"sqlite:///{tmp_path / 'hard.db'}",
        "sqlite:///m.db",
        f"sqlite+pysqlite:///{tmp_path}/./sub/../m.db",
        f"sqlite:///file:{db}?uri=true&mode=ro",
        f"sqlite:///file://{db}?uri=true",
        f"sqlite:///{db}-wal",
    ):
        assert same(alias, url), alias
    for other in (
        "sqlite://",
        "sqlite:///:memory:",
        "sqlite:///file::memory:?uri=true",
        f"sqlite:///file:{db}?mode=memory&uri=true",
        f"sqlite:///{tmp_path / 'other.db'}",
    ):
        assert not same(other, url), other


def test_server_spellings() -> None:
    pg = "postgresql+psycopg2://postgres@127.0.0.1:5432/muxly"
    for alias in (
        "postgresql://postgres@localhost/muxly",
        "postgres://u:p@[::1]:5432/muxly",
        "postgresql:///muxly",
        "postgresql:///muxly?host=/var/run/postgresql",
        "postgresql://x@/muxly?host=127.0.0.1&port=5432",
    ):
        assert same(alias, pg), alias
    assert not same("postgresql://postgres@127.0.0.1:5432/other", pg)
    assert not same("postgresql://postgres@127.0.0.1:5433/muxly", pg)
    assert not same("postgresql://postgres@192.0.2.10:5432/muxly", pg)
    mysql = "mysql+pymysql://root@127.0.0.1:3306/airflow"
    # Every database of a MySQL/MariaDB server is one qualified name away.
    assert same("mariadb+pymysql://u@localhost/reports", mysql)
    assert not same("mysql://u@192.0.2.10/airflow", mysql)


def test_check_url_names_the_field_not_the_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__MUXLY__SQL_ALCHEMY_CONN", "postgresql://muxly:s3cret@127.0.0.1/muxly")
    with pytest.raises(MuxlyConfinementError) as caught:
        check_url("postgresql://other:pw@localhost:5432/muxly", "config.connection_string")
    assert caught.value.field == "config.connection_string" and "s3cret" not in str(caught.value)
    assert "Muxly's database" in str(caught.value)
    with pytest.raises(MuxlyConfinementError):
        check_url("not a url", "connection_string")
    check_url("postgresql://other:pw@localhost:5432/reports", "connection_string")


def test_airflow_url_survives_airflows_task_process_block(tmp_path: Path) -> None:
    """Airflow's own block_orm_access() hides the URL from conf and os.environ; Muxly still finds it."""
    url = f"sqlite:///{tmp_path / 'airflow.db'}"
    code = (
        "from airflow.sdk.execution_time.supervisor import block_orm_access\n"
        "import airflow.settings, os\n"
        "block_orm_access()\n"
        "from airflow.configuration import conf\n"
        "assert conf.get('database', 'sql_alchemy_conn').startswith('airflow-db-not-allowed')\n"
        "assert os.environ['AIRFLOW__DATABASE__SQL_ALCHEMY_CONN'].startswith('airflow-db-not-allowed')\n"
        "from muxly_provider.security.databases import airflow_database_url\n"
        "print(airflow_database_url())\n"
    )
    env = {**os.environ, "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url}
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == url


@pytest.mark.usefixtures("airflow_db")
def test_content_check_refuses_airflows_database_when_its_url_is_unknown(
    airflow_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(databases, "airflow_database_url", lambda: None)
    engine = create_engine(f"sqlite:///{airflow_home / 'airflow.db'}")
    try:
        with pytest.raises(MuxlyConfinementError, match="not an Airflow metadata database"):
            guard_engine(engine, "conn_id")
    finally:
        engine.dispose()


def test_content_check_refuses_a_muxly_database_elsewhere(
    muxly_engine: object, db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another Muxly database (a copy, another deployment's) is refused by its tables."""
    from muxly_provider import settings

    engine = create_engine(db_url)
    try:
        with pytest.raises(MuxlyConfinementError):
            guard_engine(engine, "connection_string")
        # Even when Muxly's own setting names something else.
        monkeypatch.setenv("AIRFLOW__MUXLY__SQL_ALCHEMY_CONN", "sqlite://")
        assert settings.sql_alchemy_conn() == "sqlite://"
        with pytest.raises(MuxlyConfinementError, match="not a Muxly database"):
            guard_engine(engine, "connection_string")
    finally:
        engine.dispose()


def test_sqlite_guard_refuses_attach(tmp_path: Path) -> None:
    engine = guard_engine(create_engine(f"sqlite:///{tmp_path / 'ok.db'}"), "connection_string")
    try:
        with engine.connect() as conn, pytest.raises(Exception, match="not authorized"):
            conn.execute(text(f"ATTACH DATABASE '{tmp_path / 'x.db'}' AS x"))
        assert not (tmp_path / "x.db").exists()
    finally:
        engine.dispose()
