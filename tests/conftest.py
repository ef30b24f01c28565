"""Shared fixtures: an isolated AIRFLOW_HOME, a fresh PostgreSQL database, and migrated Muxly databases.

The environment is set at import, before any test imports Airflow, because Airflow reads its configuration
when it is first imported.
"""

from __future__ import annotations

import os
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

# One moto S3 server for the whole session: a fixture imported into several modules would start one server per
# module, and Airflow caches a connection's filesystem per process, so a second server behind the same conn id
# would be unreachable through it.
from tests.s3_helpers import moto_s3  # noqa: F401

_HOME = Path(tempfile.mkdtemp(prefix="muxly-airflow-home-"))
os.environ["AIRFLOW_HOME"] = str(_HOME)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ.setdefault("AIRFLOW__CORE__DAGS_FOLDER", str(Path(__file__).resolve().parents[1] / "dags"))
os.environ["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME / 'airflow.db'}"
os.environ["AIRFLOW__MUXLY__SQL_ALCHEMY_CONN"] = f"sqlite:///{_HOME / 'muxly.db'}"
os.environ.setdefault("AIRFLOW__CORE__FERNET_KEY", "Yp4wW0n2qBvF3b2xJx0u6gFqzM7n0rZkWvJc5aQy8sM=")
os.environ.setdefault("AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION", "False")
os.environ.setdefault("AIRFLOW__API_AUTH__JWT_SECRET", "muxly-tests-jwt-secret-" + "0" * 48)

PG_ADMIN_DSN = os.environ.get("MUXLY_TEST_PG_DSN", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "postgres: needs PostgreSQL on 127.0.0.1:5432")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Run the browser tests (tests/browser) last.

    Playwright's sync API keeps an event loop running in the main thread while its browser is open, and every
    ``asyncio.run`` after it fails ("cannot be called from a running event loop"). The browser and the live
    Airflow behind it are shared by all browser modules for the session, so those tests go to the end.
    """
    browser_dir = Path(__file__).resolve().parent / "browser"
    items.sort(key=lambda item: Path(str(item.path)).is_relative_to(browser_dir))


@pytest.fixture(scope="session")
def airflow_home() -> Path:
    """The AIRFLOW_HOME of this test session."""
    return _HOME


def _pg_admin_engine():  # type: ignore[no-untyped-def]
    from sqlalchemy import create_engine

    return create_engine(PG_ADMIN_DSN, isolation_level="AUTOCOMMIT")


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL of a PostgreSQL database created for this session and dropped after it.

    Skips when the server is unreachable, unless ``MUXLY_REQUIRE_POSTGRES=1`` (CI) makes that a failure.
    """
    from sqlalchemy import text

    name = f"muxly_test_{uuid.uuid4().hex[:10]}"
    try:
        admin = _pg_admin_engine()
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
    except Exception as exc:
        if os.environ.get("MUXLY_REQUIRE_POSTGRES") == "1":
            raise
        pytest.skip(f"PostgreSQL unreachable: {exc}")
    url = PG_ADMIN_DSN.rsplit("/", 1)[0] + f"/{name}"
    try:
        yield url
    finally:
        from muxly_provider.db.engine import dispose_engines

        dispose_engines()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A Muxly database URL, on SQLite (a new file) and on PostgreSQL (a new schema), set as Muxly's setting."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'muxly.db'}"
        schema = None
    else:
        url = request.getfixturevalue("postgres_url")
        schema = f"muxly_{uuid.uuid4().hex[:8]}"
        monkeypatch.setenv("AIRFLOW__MUXLY__DB_SCHEMA", schema)
    monkeypatch.setenv("AIRFLOW__MUXLY__SQL_ALCHEMY_CONN", url)
    yield url
    from muxly_provider.db.engine import dispose_engines

    dispose_engines()
    if schema:
        from sqlalchemy import create_engine, text

        engine = create_engine(url)
        with engine.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()


@pytest.fixture
def muxly_engine(db_url: str):  # type: ignore[no-untyped-def]
    """Muxly's engine on a database migrated to head by the real Alembic migrations."""
    from muxly_provider.db.engine import get_engine
    from muxly_provider.db.migrate import upgrade

    upgrade(db_url)
    return get_engine(db_url)


@pytest.fixture
def files_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """``[muxly] files_root`` set to this test's ``tmp_path`` (local paths in configs must stay under it)."""
    monkeypatch.setenv("AIRFLOW__MUXLY__FILES_ROOT", str(tmp_path))
    return tmp_path


@pytest.fixture(scope="session")
def airflow_db() -> None:
    """Airflow's own metadata database of this session, migrated once (``dag.test()`` needs it)."""
    import subprocess
    import sys

    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], check=True, capture_output=True, env=dict(os.environ))
