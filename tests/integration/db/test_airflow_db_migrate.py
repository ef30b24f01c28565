"""``airflow db migrate`` (through MuxlyDBManager) and ``airflow muxly db ...`` on Muxly's own database.

The CLI tests start real ``airflow`` processes (several seconds each), so they are few and each checks a lot.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import pytest
from sqlalchemy import create_engine, inspect, text
from sqlalchemy.engine import make_url

from muxly_provider.db import migrate, models
from muxly_provider.db.manager import MuxlyDBManager

AIRFLOW = Path(sys.executable).with_name("airflow")
MUXLY_TABLE_COUNT = len(
    models.metadata.tables
)  # every table the migrations create, as the models declare them


@dataclass
class Setup:
    """A fresh AIRFLOW_HOME with Airflow's and Muxly's database URLs."""

    env: dict[str, str]
    airflow_url: str
    muxly_url: str
    schema: str | None


def _env(home: Path, airflow_url: str, muxly_url: str, schema: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=airflow_url,
        AIRFLOW__MUXLY__SQL_ALCHEMY_CONN=muxly_url,
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(home / "dags"),
    )
    if schema:
        env["AIRFLOW__MUXLY__DB_SCHEMA"] = schema
    return env


def _airflow(setup: Setup, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(AIRFLOW), *args], env=setup.env, capture_output=True, text=True, timeout=300, check=False
    )


def _muxly_tables(setup: Setup) -> set[str]:
    engine = create_engine(setup.muxly_url)
    try:
        return set(inspect(engine).get_table_names(schema=setup.schema)) - {migrate.VERSION_TABLE}
    finally:
        engine.dispose()


def _table(setup: Setup, name: str) -> str:
    return f'"{setup.schema}".{name}' if setup.schema else name


@pytest.fixture
def sqlite_setup(tmp_path: Path) -> Setup:
    """Airflow and Muxly each in their own SQLite file (Muxly's default layout)."""
    home = tmp_path / "home"
    home.mkdir()
    airflow_url, muxly_url = f"sqlite:///{home / 'airflow.db'}", f"sqlite:///{home / 'muxly.db'}"
    return Setup(_env(home, airflow_url, muxly_url, None), airflow_url, muxly_url, None)


@pytest.fixture
def postgres_setup(tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Setup]:
    """Airflow in a new PostgreSQL database, Muxly's tables in a schema of that same database."""
    admin = create_engine(postgres_url, isolation_level="AUTOCOMMIT")
    name = f"muxly_af_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(postgres_url).set(database=name).render_as_string(hide_password=False)
    home = tmp_path / "home"
    home.mkdir()
    schema = f"muxly_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("AIRFLOW__MUXLY__DB_SCHEMA", schema)  # for this process's checks too
    yield Setup(_env(home, url, url, schema), url, url, schema)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


@pytest.mark.parametrize("backend", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_airflow_db_migrate_migrates_muxly_database_once(
    backend: str, request: pytest.FixtureRequest
) -> None:
    setup: Setup = request.getfixturevalue(f"{backend}_setup")

    first = _airflow(setup, "db", "migrate")

    assert first.returncode == 0, first.stdout + first.stderr
    assert len(_muxly_tables(setup)) == MUXLY_TABLE_COUNT
    assert migrate.current_revision(setup.muxly_url) == migrate.head_revision()
    airflow_engine = create_engine(setup.airflow_url)
    try:
        airflow_tables = set(inspect(airflow_engine).get_table_names())
    finally:
        airflow_engine.dispose()
    assert "dag_run" in airflow_tables
    assert "connectors" not in airflow_tables  # Muxly's tables went to Muxly's database / schema
    muxly_engine = create_engine(setup.muxly_url)
    with muxly_engine.begin() as conn:
        conn.execute(text(f"INSERT INTO {_table(setup, 'settings')} (key, value) VALUES ('k', 'v')"))

    second = _airflow(setup, "db", "migrate")

    assert second.returncode == 0, second.stdout + second.stderr
    assert "already at revision" in second.stdout + second.stderr
    assert "Running upgrade" not in second.stdout + second.stderr
    assert migrate.current_revision(setup.muxly_url) == migrate.head_revision()
    with muxly_engine.connect() as conn:
        assert conn.execute(text(f"SELECT value FROM {_table(setup, 'settings')}")).scalar_one() == "v"
    muxly_engine.dispose()

    check = _airflow(setup, "muxly", "db", "check")
    assert check.returncode == 0, check.stdout + check.stderr


def test_muxly_db_commands_check_downgrade_and_migrate(sqlite_setup: Setup) -> None:
    setup = sqlite_setup

    check = _airflow(setup, "muxly", "db", "check")
    assert check.returncode != 0
    assert "airflow muxly db migrate" in check.stdout
    assert not Path(make_url(setup.muxly_url).database or "").exists()  # checking creates no empty file

    migrated = _airflow(setup, "muxly", "db", "migrate")
    assert migrated.returncode == 0, migrated.stdout + migrated.stderr
    assert len(_muxly_tables(setup)) == MUXLY_TABLE_COUNT

    downgraded = _airflow(setup, "muxly", "db", "downgrade", "--to-revision", "base", "-y")
    assert downgraded.returncode == 0, downgraded.stdout + downgraded.stderr
    assert _muxly_tables(setup) == set()

    again = _airflow(setup, "muxly", "db", "migrate")
    assert again.returncode == 0, again.stdout + again.stderr
    assert len(_muxly_tables(setup)) == MUXLY_TABLE_COUNT
    assert migrate.is_up_to_date(setup.muxly_url)


# In-process checks of the manager (no CLI start).


def _session(dialect: str) -> SimpleNamespace:
    """A stand-in for Airflow's session: only its dialect matters to the manager."""
    bind = SimpleNamespace(dialect=SimpleNamespace(name=dialect))
    return SimpleNamespace(get_bind=lambda: bind)


def test_manager_passes_airflow_validation() -> None:
    from airflow.utils.db_manager import RunDBManager

    RunDBManager._validate(MuxlyDBManager)
    assert MuxlyDBManager.version_table_name == "alembic_version_muxly"
    assert MuxlyDBManager.supports_table_dropping is False
    assert MuxlyDBManager.revision_heads_map["0.1.0"] == migrate.head_revision()
    assert "version_table=" in (Path(MuxlyDBManager.migration_dir) / "env.py").read_text()


def test_manager_runs_muxly_migrations_on_muxly_url(db_url: str) -> None:
    manager = MuxlyDBManager(_session("sqlite"))
    assert manager.get_current_revision() is None
    assert not manager.check_migration()

    manager.initdb()

    assert manager.get_current_revision() == migrate.head_revision()
    assert manager.check_migration()
    manager.upgradedb()  # a second migration is a no-op
    manager.drop_tables(connection=None)  # ``airflow db reset`` keeps Muxly's tables
    assert manager.check_migration()

    manager.downgrade(to_revision="base")

    assert manager.get_current_revision() is None
    manager.create_db_from_orm()  # runs the revisions, never create_all + stamp
    assert manager.get_current_revision() == migrate.head_revision()


@pytest.mark.parametrize(
    ("airflow_url", "muxly_url_set", "refused"),
    [
        ("postgresql+psycopg2://airflow:pw@db.example:5432/airflow", False, True),
        ("mysql+pymysql://airflow:pw@db.example/airflow", False, True),
        ("postgresql+psycopg2://airflow:pw@db.example:5432/airflow", True, False),
        ("sqlite:///{home}/airflow.db", False, False),
    ],
)
def test_manager_refuses_a_per_machine_sqlite_next_to_a_server_database(
    airflow_url: str, muxly_url_set: bool, refused: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from muxly_provider.exceptions import MuxlyDatabaseSettingError

    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", airflow_url.format(home=tmp_path))
    if muxly_url_set:
        monkeypatch.setenv("AIRFLOW__MUXLY__SQL_ALCHEMY_CONN", f"sqlite:///{tmp_path / 'shared.db'}")
    else:
        monkeypatch.delenv("AIRFLOW__MUXLY__SQL_ALCHEMY_CONN", raising=False)
    upgrade = mock.Mock()
    monkeypatch.setattr(migrate, "upgrade", upgrade)
    manager = MuxlyDBManager(_session(make_url(airflow_url).get_backend_name()))

    if refused:
        with pytest.raises(MuxlyDatabaseSettingError) as caught:
            manager.upgradedb()
        message = str(caught.value)
        assert "[muxly] sql_alchemy_conn (AIRFLOW__MUXLY__SQL_ALCHEMY_CONN)" in message
        assert make_url(airflow_url).get_backend_name() in message
        assert "pw" not in message  # Airflow's password is masked
        upgrade.assert_not_called()
        with pytest.raises(MuxlyDatabaseSettingError):
            manager.check_migration()
        return
    manager.upgradedb()
    (url,), kwargs = upgrade.call_args
    assert kwargs == {"revision": "heads", "sql": False}
    expected = "shared.db" if muxly_url_set else "muxly.db"
    assert url == f"sqlite:///{tmp_path / expected}"


def test_manager_refuses_muxly_on_airflow_own_sqlite_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from muxly_provider.exceptions import MuxlyDatabaseSettingError

    (tmp_path / "link").symlink_to(tmp_path, target_is_directory=True)
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{tmp_path / 'airflow.db'}")
    monkeypatch.setenv("AIRFLOW__MUXLY__SQL_ALCHEMY_CONN", f"sqlite:///{tmp_path / 'link' / 'airflow.db'}")
    upgrade = mock.Mock()
    monkeypatch.setattr(migrate, "upgrade", upgrade)

    with pytest.raises(
        MuxlyDatabaseSettingError, match=r"names Airflow's own SQLite file .*\[muxly\] sql_alchemy_conn"
    ):
        MuxlyDBManager(_session("sqlite")).upgradedb()
    upgrade.assert_not_called()

    # The default file is refused the same way when Airflow's file is AIRFLOW_HOME/muxly.db.
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", f"sqlite:///{tmp_path / 'muxly.db'}")
    monkeypatch.delenv("AIRFLOW__MUXLY__SQL_ALCHEMY_CONN")
    with pytest.raises(MuxlyDatabaseSettingError, match="Muxly's default database"):
        MuxlyDBManager(_session("sqlite")).upgradedb()


def test_airflow_db_migrate_fails_naming_the_setting_on_postgres_without_muxly_url(
    postgres_setup: Setup,
) -> None:
    setup = postgres_setup
    setup.env.pop("AIRFLOW__MUXLY__SQL_ALCHEMY_CONN")
    setup.env.pop("AIRFLOW__MUXLY__DB_SCHEMA", None)

    result = _airflow(setup, "db", "migrate")

    assert result.returncode != 0
    output = result.stdout + result.stderr
    assert "MuxlyDatabaseSettingError" in output
    assert "Airflow runs on postgresql" in output
    assert "set [muxly] sql_alchemy_conn (AIRFLOW__MUXLY__SQL_ALCHEMY_CONN)" in output
    assert not (Path(setup.env["AIRFLOW_HOME"]) / "muxly.db").exists()  # no per-machine file was created
