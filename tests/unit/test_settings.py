"""Muxly's database setting: the default SQLite file only while Airflow itself is on SQLite, on one machine."""

from __future__ import annotations

from pathlib import Path

import pytest

from muxly_provider import settings
from muxly_provider.exceptions import MuxlyDatabaseSettingError


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A fresh AIRFLOW_HOME, Airflow on its own SQLite file there, no Muxly URL, LocalExecutor."""
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{tmp_path / 'airflow.db'}")
    monkeypatch.delenv("AIRFLOW__MUXLY__SQL_ALCHEMY_CONN", raising=False)
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
    settings._airflow_url_for.cache_clear()  # looked up once per process; a test is a new "process"
    return tmp_path


def test_default_sqlite_file_while_airflow_is_on_sqlite(home: Path) -> None:
    assert settings.sql_alchemy_conn() == f"sqlite:///{home / 'muxly.db'}"


@pytest.mark.parametrize(
    ("airflow_url", "family"),
    [
        ("postgresql+psycopg2://airflow:hunter2@db.example:5432/airflow", "postgresql"),
        ("postgresql://airflow:hunter2@/airflow?host=/var/run/postgresql", "postgresql"),
        ("mysql+mysqldb://airflow:hunter2@db.example/airflow", "mysql"),
    ],
)
def test_server_airflow_database_without_muxly_url_is_refused(
    home: Path, monkeypatch: pytest.MonkeyPatch, airflow_url: str, family: str
) -> None:
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", airflow_url)

    with pytest.raises(MuxlyDatabaseSettingError) as caught:
        settings.sql_alchemy_conn()

    message = str(caught.value)
    assert message.startswith(f"Airflow runs on {family} (")
    assert "set [muxly] sql_alchemy_conn (AIRFLOW__MUXLY__SQL_ALCHEMY_CONN)" in message
    assert "[muxly] db_schema" in message
    assert "hunter2" not in message


def test_server_airflow_database_with_muxly_url_is_used(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql://a:b@db.example/airflow")
    monkeypatch.setenv("AIRFLOW__MUXLY__SQL_ALCHEMY_CONN", "postgresql://a:b@db.example/airflow")

    assert settings.sql_alchemy_conn() == "postgresql://a:b@db.example/airflow"


def test_hidden_airflow_url_of_a_task_process_is_found_in_airflow_cfg(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Airflow 3 replaces [database] sql_alchemy_conn in task processes; airflow.cfg still names the server.
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "airflow-db-not-allowed:///")
    (home / "airflow.cfg").write_text("[database]\nsql_alchemy_conn = postgresql://a:b@db.example/af\n")
    monkeypatch.setenv("AIRFLOW_CONFIG", str(home / "airflow.cfg"))

    with pytest.raises(MuxlyDatabaseSettingError, match="Airflow runs on postgresql"):
        settings.sql_alchemy_conn()


@pytest.mark.parametrize("executor", ["CeleryExecutor", "LocalExecutor,KubernetesExecutor"])
def test_remote_executor_without_muxly_url_is_refused(
    home: Path, monkeypatch: pytest.MonkeyPatch, executor: str
) -> None:
    # A worker often does not know Airflow's database; its executor says tasks run on several machines.
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", executor)

    with pytest.raises(MuxlyDatabaseSettingError, match=r"\[core\] executor is (Celery|Kubernetes)Executor"):
        settings.sql_alchemy_conn()

    monkeypatch.setenv("AIRFLOW__MUXLY__SQL_ALCHEMY_CONN", "postgresql://a:b@db.example/muxly")
    assert settings.sql_alchemy_conn() == "postgresql://a:b@db.example/muxly"


def test_muxly_url_naming_airflow_sqlite_file_is_refused(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (home / "airflow.db").touch()
    (home / "alias.db").symlink_to(home / "airflow.db")
    for url in (f"sqlite:///{home / 'airflow.db'}", f"sqlite:///{home / 'alias.db'}"):
        monkeypatch.setenv("AIRFLOW__MUXLY__SQL_ALCHEMY_CONN", url)
        with pytest.raises(MuxlyDatabaseSettingError, match="names Airflow's own SQLite file"):
            settings.sql_alchemy_conn()
    monkeypatch.setenv("AIRFLOW__MUXLY__SQL_ALCHEMY_CONN", f"sqlite:///{home / 'other.db'}")
    assert settings.sql_alchemy_conn() == f"sqlite:///{home / 'other.db'}"


def test_default_file_that_is_airflow_own_file_is_refused(
    home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{home / 'muxly.db'}")

    with pytest.raises(MuxlyDatabaseSettingError, match=r"Muxly's default database .* Airflow's own SQLite"):
        settings.sql_alchemy_conn()


def test_in_memory_airflow_sqlite_is_never_the_same_file(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "sqlite://")
    assert settings.sql_alchemy_conn() == f"sqlite:///{home / 'muxly.db'}"


def test_timeouts_default_read_and_refuse_words(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__MUXLY__DB_CONNECT_TIMEOUT", raising=False)
    monkeypatch.delenv("AIRFLOW__MUXLY__DB_STATEMENT_TIMEOUT", raising=False)
    assert (settings.db_connect_timeout(), settings.db_statement_timeout()) == (10, 60)

    monkeypatch.setenv("AIRFLOW__MUXLY__DB_CONNECT_TIMEOUT", "3")
    monkeypatch.setenv("AIRFLOW__MUXLY__DB_STATEMENT_TIMEOUT", "0")
    assert (settings.db_connect_timeout(), settings.db_statement_timeout()) == (3, 0)

    monkeypatch.setenv("AIRFLOW__MUXLY__DB_STATEMENT_TIMEOUT", "soon")
    with pytest.raises(MuxlyDatabaseSettingError, match=r"\[muxly\] db_statement_timeout"):
        settings.db_statement_timeout()


def test_task_sdk_configuration_reads_airflow_cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK's conf is one object per process; a fresh parser shows what a new task process reads.
    from airflow.sdk.configuration import initialize_config

    (tmp_path / "airflow.cfg").write_text("[muxly]\nstaging_path = s3://bucket/from-cfg\n")
    monkeypatch.setenv("AIRFLOW_CONFIG", str(tmp_path / "airflow.cfg"))
    monkeypatch.delenv("AIRFLOW__MUXLY__STAGING_PATH", raising=False)
    fresh = initialize_config()
    monkeypatch.setattr("airflow.sdk.configuration.conf", fresh)

    assert settings.staging_path() == "s3://bucket/from-cfg"
    monkeypatch.setenv("AIRFLOW__MUXLY__STAGING_PATH", "s3://bucket/from-env")
    assert settings.staging_path() == "s3://bucket/from-env"
