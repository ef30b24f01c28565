"""Login, refresh rotation, logout, expiry, throttling, and secrets that never come back."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from conftest import PASSWORD, bearer, login, make_user
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from muxly_provider.db.engine import session_scope
from muxly_provider.db.models import AuthSession, Connector, Destination, LoginFailure, WebhookTrigger


def test_login_me_and_tokens_stored_only_as_hashes(api_client: TestClient) -> None:
    make_user("alice", ["operator"])
    tokens = login(api_client, "alice")
    assert tokens["token_type"] == "Bearer"
    assert tokens["expires_in"] == 3600
    me = api_client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"])).json()
    assert me["username"] == "alice"
    assert me["roles"] == ["operator"]
    assert "jobs:*" in me["permissions"]
    assert me["auth_method"] == "session"
    with session_scope() as session:
        row = session.scalars(select(AuthSession)).one()
        stored = {row.token_hash, row.refresh_token_hash}
    assert tokens["access_token"] not in stored
    assert tokens["refresh_token"] not in stored
    assert all(len(h or "") == 64 for h in stored)


def test_wrong_password_and_unknown_user_answer_alike(api_client: TestClient) -> None:
    make_user("bob", ["viewer"])
    wrong = api_client.post("/api/v1/auth/login", json={"username": "bob", "password": "nope" * 4})
    unknown = api_client.post("/api/v1/auth/login", json={"username": "nobody", "password": "nope" * 4})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()


def test_refresh_rotates_and_a_replayed_refresh_token_revokes_the_session(api_client: TestClient) -> None:
    make_user("carol", ["viewer"])
    first = login(api_client, "carol")
    second = api_client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}).json()
    assert second["access_token"] != first["access_token"]
    assert second["refresh_token"] != first["refresh_token"]
    assert api_client.get("/api/v1/auth/me", headers=bearer(first["access_token"])).status_code == 401
    assert api_client.get("/api/v1/auth/me", headers=bearer(second["access_token"])).status_code == 200
    replay = api_client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert replay.status_code == 401
    # The replay ended the whole session: the legitimate tokens stop working too.
    assert api_client.get("/api/v1/auth/me", headers=bearer(second["access_token"])).status_code == 401
    again = api_client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    assert again.status_code == 401


def test_a_forged_refresh_token_changes_nothing(api_client: TestClient) -> None:
    make_user("cora", ["viewer"])
    tokens = login(api_client, "cora")
    session_id = tokens["refresh_token"].removeprefix("mxr_").split(".")[0]
    for forged in (f"mxr_{session_id}.AAAA", f"mxr_{session_id}.{tokens['access_token'].split('.')[1]}"):
        response = api_client.post("/api/v1/auth/refresh", json={"refresh_token": forged})
        assert response.status_code == 401
    # The owner's session lives on: both its tokens still work.
    assert api_client.get("/api/v1/auth/me", headers=bearer(tokens["access_token"])).status_code == 200
    rotated = api_client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert rotated.status_code == 200
    # A copy used several rotations later is still recognized as a replay.
    newest = rotated.json()
    for _ in range(3):
        newest = api_client.post(
            "/api/v1/auth/refresh", json={"refresh_token": newest["refresh_token"]}
        ).json()
    replay = api_client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert replay.status_code == 401
    assert api_client.get("/api/v1/auth/me", headers=bearer(newest["access_token"])).status_code == 401


def _shift(column: str, delta: timedelta) -> None:
    with session_scope() as session:
        for row in session.scalars(select(AuthSession)):
            setattr(row, column, getattr(row, column) + delta)


def test_logged_out_and_expired_tokens_get_401(api_client: TestClient) -> None:
    make_user("dave", ["viewer"])
    tokens = login(api_client, "dave")
    headers = bearer(tokens["access_token"])
    assert api_client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    assert api_client.get("/api/v1/connectors", headers=headers).status_code == 401
    refreshed = api_client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]})
    assert refreshed.status_code == 401

    tokens = login(api_client, "dave")
    _shift("expires_at", timedelta(hours=-2))
    expired = api_client.get("/api/v1/connectors", headers=bearer(tokens["access_token"]))
    assert expired.status_code == 401
    assert "expired" in expired.json()["error"]["message"]
    # The refresh token outlives the access token.
    assert (
        api_client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).status_code
        == 200
    )
    _shift("created_at", timedelta(days=-8))
    assert (
        api_client.post("/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}).status_code
        == 401
    )


def test_deactivated_user_and_password_change_end_sessions(
    api_client: TestClient, admin: dict[str, str]
) -> None:
    user_id = make_user("erin", ["viewer"])
    headers = bearer(login(api_client, "erin")["access_token"])
    changed = api_client.patch(
        f"/api/v1/users/{user_id}", headers=admin, json={"password": "another long password"}
    )
    assert changed.status_code == 200
    assert "password" not in changed.text and "hash" not in changed.text
    assert api_client.get("/api/v1/auth/me", headers=headers).status_code == 401
    headers = bearer(login(api_client, "erin", "another long password")["access_token"])
    assert (
        api_client.patch(f"/api/v1/users/{user_id}", headers=admin, json={"is_active": False}).status_code
        == 200
    )
    assert api_client.get("/api/v1/auth/me", headers=headers).status_code == 401
    response = api_client.post(
        "/api/v1/auth/login", json={"username": "erin", "password": "another long password"}
    )
    assert response.status_code == 401


def test_failed_logins_are_throttled(api_client: TestClient) -> None:
    make_user("frank", ["viewer"])
    for attempt in range(5):
        response = api_client.post(
            "/api/v1/auth/login", json={"username": "frank", "password": f"wrong-{attempt}"}
        )
        assert response.status_code == 401
        assert response.headers["X-RateLimit-Remaining"] == str(4 - attempt)
    blocked = api_client.post("/api/v1/auth/login", json={"username": "frank", "password": PASSWORD})
    assert blocked.status_code == 429
    assert int(blocked.headers["Retry-After"]) > 0
    assert blocked.json()["error"]["code"] == "too_many_attempts"


@pytest.fixture
def client_at(sqlite_api_db: str) -> Iterator[Callable[[str], TestClient]]:
    """Clients of Muxly's app whose connections come from a given peer address (same database)."""
    from muxly_provider.api.app import create_app

    clients: list[TestClient] = []

    def make(peer: str) -> TestClient:
        client = TestClient(create_app(), client=(peer, 40000))
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close()


def _fail(client: TestClient, username: str, **headers: str) -> int:
    body = {"username": username, "password": "wrong password"}
    return client.post("/api/v1/auth/login", json=body, headers=headers).status_code


def test_random_user_names_from_one_client_lock_nobody_else_out(
    client_at: Callable[[str], TestClient],
) -> None:
    make_user("grace", ["viewer"])
    office = client_at("192.0.2.10")  # a NAT: everyone of the office shares this address
    for _ in range(30):
        assert _fail(office, f"nobody-{uuid.uuid4().hex}") == 401
    assert login(office, "grace")["access_token"]
    # Failures of grace's name from one client do not lock grace out from another client.
    for _ in range(5):
        assert _fail(office, "grace") == 401
    assert _fail(office, "grace") == 429
    assert login(client_at("198.51.100.7"), "grace")["access_token"]
    # A flood does not grow the table past one window: expired rows go at the next failure.
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(LoginFailure)) == 31
        for row in session.scalars(select(LoginFailure)):  # in Python: SQLite cannot subtract an interval
            row.window_start -= timedelta(hours=1)
    assert _fail(office, "someone-else") == 401
    with session_scope() as session:
        assert session.scalar(select(func.count()).select_from(LoginFailure)) == 1
    assert login(office, "grace")["access_token"]  # grace's window is over


def test_forwarded_for_counts_only_from_trusted_proxies(
    client_at: Callable[[str], TestClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    make_user("heidi", ["viewer"])
    direct = client_at("203.0.113.5")
    # An untrusted peer cannot dodge the throttle by inventing X-Forwarded-For addresses.
    for n in range(5):
        assert _fail(direct, "heidi", **{"X-Forwarded-For": f"10.9.9.{n}"}) == 401
    assert _fail(direct, "heidi", **{"X-Forwarded-For": "10.9.9.99"}) == 429

    monkeypatch.setenv("AIRFLOW__MUXLY__TRUSTED_PROXIES", "192.0.2.0/24, 2001:db8::1")
    proxy = client_at("192.0.2.1")
    # Behind a trusted proxy each client is its own: the right-most untrusted X-Forwarded-For entry.
    for _ in range(5):
        assert _fail(proxy, "heidi", **{"X-Forwarded-For": "1.1.1.1, 198.51.100.1, 192.0.2.7"}) == 401
    assert (
        _fail(proxy, "heidi", **{"X-Forwarded-For": "6.6.6.6, 198.51.100.1"}) == 429
    )  # the forged left part
    ok = proxy.post(
        "/api/v1/auth/login",
        json={"username": "heidi", "password": PASSWORD},
        headers={"X-Forwarded-For": "198.51.100.2"},
    )
    assert ok.status_code == 200


def test_a_malformed_trusted_proxies_setting_is_a_clear_503(
    api_client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__MUXLY__TRUSTED_PROXIES", "10.0.0.0/8, proxy.example.com")
    response = api_client.post("/api/v1/auth/login", json={"username": "x", "password": "y"})
    assert response.status_code == 503
    assert "trusted_proxies" in response.json()["error"]["message"]
    assert "proxy.example.com" in response.json()["error"]["message"]


@pytest.fixture
def two_workers(api_db: str) -> Iterator[tuple[TestClient, TestClient]]:
    """Two app instances on one database, each with the state a fresh api-server worker process has."""
    from muxly_provider.api.app import create_app
    from muxly_provider.auth.throttle import reset_throttle

    reset_throttle()
    with TestClient(create_app()) as first, TestClient(create_app()) as second:
        yield first, second
    reset_throttle()


def test_failure_counts_are_shared_by_all_workers(two_workers: tuple[TestClient, TestClient]) -> None:
    from muxly_provider.auth.throttle import reset_throttle

    first, second = two_workers
    make_user("ivan", ["viewer"])
    for _ in range(3):
        assert _fail(first, "ivan") == 401
    reset_throttle()  # nothing the process kept may matter: the counts are in the database
    for _ in range(2):
        assert _fail(second, "ivan") == 401
    blocked = first.post("/api/v1/auth/login", json={"username": "ivan", "password": PASSWORD})
    assert blocked.status_code == 429
    assert (
        second.post("/api/v1/auth/login", json={"username": "ivan", "password": PASSWORD}).status_code == 429
    )


def test_weak_password_and_duplicate_user_are_refused(api_client: TestClient, admin: dict[str, str]) -> None:
    body = {"username": "gina", "email": "gina@example.com", "password": "short", "roles": ["viewer"]}
    weak = api_client.post("/api/v1/users", headers=admin, json=body)
    assert weak.status_code == 422
    assert weak.json()["error"]["details"]["field"] == "password"
    body["password"] = "a long enough password"
    assert api_client.post("/api/v1/users", headers=admin, json=body).status_code == 201
    duplicate = api_client.post("/api/v1/users", headers=admin, json=body)
    assert duplicate.status_code == 409
    unknown_role = api_client.post(
        "/api/v1/users",
        headers=admin,
        json={**body, "username": "h", "email": "h@example.com", "roles": ["nope"]},
    )
    assert unknown_role.status_code == 422


SECRETS = ("tok-SECRET-1", "pw-SECRET-2", "hook-SECRET-3", "slack-SECRET-4")


def test_secrets_are_write_only(
    api_client: TestClient, admin: dict[str, str], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    texts = []
    connector = {
        "id": "c1",
        "name": "C",
        "connector_type": "api",
        "auth_settings": {"auth_type": "bearer", "params": {"token": SECRETS[0]}},
        "connection_settings": {"base_url": "http://127.0.0.1:9/data"},
    }
    texts.append(api_client.post("/api/v1/connectors", headers=admin, json=connector).text)
    destination = {
        "id": "d1",
        "name": "D",
        "destination_type": "email",
        "config": {
            "smtp_host": "127.0.0.1",
            "smtp_password": SECRETS[1],
            "from_email": "a@example.com",
            "to_emails": ["b@example.com"],
        },
    }
    created = api_client.post("/api/v1/destinations", headers=admin, json=destination)
    assert created.status_code == 201, created.text
    texts.append(created.text)
    slack = {"id": "d2", "name": "S", "destination_type": "slack", "config": {"webhook_url": SECRETS[3]}}
    texts.append(api_client.post("/api/v1/destinations", headers=admin, json=slack).text)
    job = {"id": "j1", "name": "J", "job_type": "webhook", "connector_id": "c1", "action_type": "sync"}
    assert api_client.post("/api/v1/jobs", headers=admin, json=job).status_code == 201
    hook = {"id": "w1", "job_id": "j1", "endpoint_path": "orders", "secret_key": SECRETS[2]}
    texts.append(api_client.post("/api/v1/webhooks", headers=admin, json=hook).text)
    # "***" sent back keeps the stored secret; a missing secret cannot be "***".
    kept = api_client.patch(
        "/api/v1/connectors/c1",
        headers=admin,
        json={"auth_settings": {"auth_type": "bearer", "params": {"token": "***"}}, "name": "C2"},
    )
    assert kept.status_code == 200
    texts.append(kept.text)
    bad = api_client.post(
        "/api/v1/connectors",
        headers=admin,
        json={**connector, "id": "c9", "auth_settings": {"auth_type": "bearer", "params": {"token": "***"}}},
    )
    assert bad.status_code == 422
    assert bad.json()["error"]["details"]["field"] == "auth_settings.params.token"
    for path in ("connectors", "connectors/c1", "destinations", "destinations/d1", "webhooks", "webhooks/w1"):
        response = api_client.get(f"/api/v1/{path}", headers=admin)
        assert response.status_code == 200
        texts.append(response.text)
    text = "\n".join(texts) + caplog.text
    for secret in SECRETS:
        assert secret not in text
    assert '"token":"***"' in texts[0]
    with session_scope() as session:
        stored = [
            session.get(Connector, "c1").auth_settings,  # type: ignore[union-attr]
            session.get(Destination, "d1").config,  # type: ignore[union-attr]
            session.get(WebhookTrigger, "w1").secret_key,  # type: ignore[union-attr]
        ]
    for value in stored:
        assert "fernet:v1:" in str(value)
    assert all(secret not in str(stored) for secret in SECRETS)
    from muxly_provider.crypto import decrypt_secret

    assert decrypt_secret(str(stored[2])) == SECRETS[2]
