"""Fixtures of the API tests: Muxly's app on a migrated database, and logged-in users of each seeded role."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import Engine

PASSWORD = "correct horse battery staple"
ROLES = ("admin", "operator", "viewer")


@pytest.fixture(autouse=True)
def _cheap_password_hashes(monkeypatch: pytest.MonkeyPatch) -> None:
    """Argon2 with test parameters: the production cost would make each login a noticeable wait."""
    from argon2 import PasswordHasher

    from muxly_provider.auth import passwords

    cheap = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    monkeypatch.setattr(passwords, "_hasher", lambda: cheap)
    monkeypatch.setattr(passwords, "_dummy_hash", lambda: cheap.hash("dummy"))


@pytest.fixture(scope="session")
def _migrated_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite Muxly database migrated to head once per session (each test gets a copy)."""
    from muxly_provider.db.engine import dispose_engines
    from muxly_provider.db.migrate import upgrade

    path = tmp_path_factory.mktemp("muxly-template") / "muxly.db"
    upgrade(f"sqlite:///{path}")
    dispose_engines()
    return path


@pytest.fixture
def api_db(muxly_engine: Engine) -> str:
    """A migrated Muxly database on both backends (for the tests that must cover PostgreSQL)."""
    return str(muxly_engine.url.render_as_string(hide_password=False))


@pytest.fixture
def sqlite_api_db(_migrated_sqlite: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A copy of the migrated SQLite database, set as Muxly's database."""
    from muxly_provider.db.engine import dispose_engines

    path = tmp_path / "muxly.db"
    shutil.copy(_migrated_sqlite, path)
    url = f"sqlite:///{path}"
    monkeypatch.setenv("AIRFLOW__MUXLY__SQL_ALCHEMY_CONN", url)
    yield url
    dispose_engines()


@pytest.fixture
def api_client(sqlite_api_db: str) -> Iterator[TestClient]:
    """A client of Muxly's own FastAPI app (``/api/v1``) on a migrated SQLite database."""
    from muxly_provider.api.app import create_app
    from muxly_provider.auth.throttle import reset_throttle

    reset_throttle()
    with TestClient(create_app()) as client:
        yield client
    reset_throttle()


@pytest.fixture
def airflow_client(
    airflow_db: None, sqlite_api_db: str, monkeypatch: pytest.MonkeyPatch
) -> Iterator[TestClient]:
    """A client of Airflow's api-server app (Muxly mounted at ``/muxly``); sign in with :func:`airflow_token`."""
    from airflow.api_fastapi.app import create_app

    monkeypatch.setenv(
        "AIRFLOW__API_AUTH__JWT_SECRET", "muxly-tests-jwt-secret-long-enough-for-hmac-sha512-signatures-0123"
    )
    with TestClient(create_app()) as client:
        yield client


def airflow_token(username: str) -> str:
    """A JWT of Airflow's api-server for the SimpleAuthManager user ``username`` (Airflow role admin)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    return str(get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=username, role="admin")))


def make_user(username: str, roles: list[str], password: str = PASSWORD) -> str:
    """Create a local user; return its id."""
    from muxly_provider.auth.users import create_user
    from muxly_provider.db.engine import session_scope

    with session_scope() as session:
        return create_user(
            session, username=username, email=f"{username}@example.com", password=password, roles=roles
        ).id


def login(client: TestClient, username: str, password: str = PASSWORD) -> dict[str, Any]:
    """Log in; return the token answer."""
    response = client.post("/api/v1/auth/login", json={"username": username, "password": password})
    assert response.status_code == 200, response.text
    return dict(response.json())


def bearer(token: str) -> dict[str, str]:
    """The Authorization header of ``token``."""
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def role_headers(api_client: TestClient) -> dict[str, dict[str, str]]:
    """Authorization headers of one logged-in user per seeded role, plus ``none`` (a user without roles)."""
    headers = {}
    for role in (*ROLES, "none"):
        make_user(f"user-{role}", [] if role == "none" else [role])
        headers[role] = bearer(login(api_client, f"user-{role}")["access_token"])
    return headers


@pytest.fixture
def admin(role_headers: dict[str, dict[str, str]]) -> dict[str, str]:
    """The admin's Authorization header."""
    return role_headers["admin"]
