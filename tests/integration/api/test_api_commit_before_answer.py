"""Every write is committed before its answer is sent (issue 10, part 8), on SQLite and PostgreSQL.

A client that creates a user and logs in at once must get 200: the first answer may only leave once the user
is committed. The probe below looks at the database from another connection at the moment the app starts its
answer (``http.response.start``), which only sees committed rows.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from conftest import bearer, login, make_user
from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from muxly_provider.db.models import AuthSession, Connector, User


class ProbeAtAnswer:
    """ASGI wrapper that runs ``probe`` when the app starts sending an answer and keeps what it returned.

    :param app: the wrapped app
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.probe: Callable[[], Any] | None = None
        self.seen: list[Any] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def probing_send(message: Message) -> None:
            if message["type"] == "http.response.start" and self.probe is not None:
                self.seen.append(self.probe())
            await send(message)

        await self.app(scope, receive, probing_send)


@pytest.fixture
def observer(api_db: str) -> Iterator[Engine]:
    """A second engine on the test database: it sees only what the app has committed."""
    from muxly_provider import settings
    from muxly_provider.db.engine import build_engine

    engine = build_engine(api_db, settings.db_schema(api_db))
    yield engine
    engine.dispose()


@pytest.fixture
def probed(api_db: str) -> Iterator[tuple[TestClient, ProbeAtAnswer]]:
    from muxly_provider.api.app import create_app
    from muxly_provider.auth.throttle import reset_throttle

    reset_throttle()
    wrapper = ProbeAtAnswer(create_app())
    with TestClient(wrapper) as client:
        yield client, wrapper


def _scalar(engine: Engine, statement: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(statement).scalar()


def test_writes_are_committed_when_the_answer_starts(
    probed: tuple[TestClient, ProbeAtAnswer], observer: Engine
) -> None:
    client, wrapper = probed
    make_user("root", ["admin"])
    admin = bearer(login(client, "root")["access_token"])

    def check(response: httpx.Response, status: int) -> Any:
        """What the probe saw when ``response`` started (and switch the probe off)."""
        assert response.status_code == status, response.text
        seen = wrapper.seen.pop()
        wrapper.probe = None
        return seen

    wrapper.probe = lambda: _scalar(observer, select(User.id).where(User.username == "zoe"))
    body = {"username": "zoe", "email": "zoe@example.com", "password": "a long enough password"}
    created = client.post("/api/v1/users", headers=admin, json=body)
    assert check(created, 201) == created.json()["id"]

    wrapper.probe = lambda: _scalar(observer, select(func.count()).select_from(AuthSession))
    sessions_before = _scalar(observer, select(func.count()).select_from(AuthSession))
    logged_in = client.post("/api/v1/auth/login", json={"username": "zoe", "password": body["password"]})
    assert check(logged_in, 200) == sessions_before + 1

    connector = {
        "id": "c1",
        "name": "C",
        "connector_type": "api",
        "connection_settings": {"base_url": "http://x"},
    }
    wrapper.probe = lambda: _scalar(observer, select(Connector.name).where(Connector.id == "c1"))
    assert check(client.post("/api/v1/connectors", headers=admin, json=connector), 201) == "C"
    wrapper.probe = lambda: _scalar(observer, select(Connector.name).where(Connector.id == "c1"))
    renamed = client.patch("/api/v1/connectors/c1", headers=admin, json={"name": "C2"})
    assert check(renamed, 200) == "C2"
    wrapper.probe = lambda: _scalar(observer, select(func.count()).select_from(Connector))
    assert check(client.delete("/api/v1/connectors/c1", headers=admin), 204) == 0

    zoe = bearer(logged_in.json()["access_token"])
    wrapper.probe = lambda: _scalar(observer, select(func.count()).select_from(AuthSession))
    assert check(client.post("/api/v1/auth/logout", headers=zoe), 204) == sessions_before


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def served(sqlite_api_db: str) -> Iterator[str]:
    """Muxly's app served by uvicorn on loopback (a real HTTP server, answers sent as soon as they are ready)."""
    import uvicorn

    from muxly_provider.api.app import create_app
    from muxly_provider.auth.throttle import reset_throttle

    reset_throttle()
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_a_created_user_logs_in_at_once(served: str) -> None:
    make_user("root", ["admin"])
    with httpx.Client(base_url=served, timeout=30) as client:
        token = client.post(
            "/api/v1/auth/login", json={"username": "root", "password": "correct horse battery staple"}
        )
        admin = bearer(token.json()["access_token"])
        for n in range(10):
            body = {"username": f"u{n}", "email": f"u{n}@example.com", "password": "a long enough password"}
            assert client.post("/api/v1/users", headers=admin, json=body).status_code == 201
            logged_in = client.post(
                "/api/v1/auth/login", json={"username": f"u{n}", "password": body["password"]}
            )
            assert logged_in.status_code == 200, logged_in.text
