"""Keycloak bearer JWTs against a local OIDC server that signs real RS256 tokens and serves its JWKS."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import jwt
import pytest
from conftest import bearer
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

REALM = "acme"
CLIENT = "muxly-api"


@dataclass
class OidcServer:
    """A realm on loopback: its issuer URL and a way to mint tokens."""

    base_url: str
    key: rsa.RSAPrivateKey
    kid: str = "key-1"

    @property
    def issuer(self) -> str:
        return f"{self.base_url}/realms/{REALM}"

    def token(self, key: rsa.RSAPrivateKey | None = None, algorithm: str = "RS256", **claims: Any) -> str:
        now = int(time.time())
        payload = {
            "iss": self.issuer,
            "aud": CLIENT,
            "sub": "kc-user-1",
            "exp": now + 300,
            "iat": now,
            "preferred_username": "kc.alice",
            "email": "alice@acme.example",
            "name": "Alice Keycloak",
            "realm_access": {"roles": ["muxly-operator", "offline_access"]},
            **claims,
        }
        signing_key: Any = key or self.key
        if algorithm.startswith("HS"):
            signing_key = "a-shared-secret-that-is-long-enough-for-hs256"
        return jwt.encode(payload, signing_key, algorithm=algorithm, headers={"kid": self.kid})


@pytest.fixture(scope="module")
def oidc_server() -> Iterator[OidcServer]:
    """A loopback server publishing the realm's JWKS at Keycloak's path."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    jwk = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key()))
    jwks = json.dumps({"keys": [{**jwk, "kid": "key-1", "use": "sig", "alg": "RS256"}]}).encode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if self.path == f"/realms/{REALM}/protocol/openid-connect/certs":
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(jwks)
            else:
                self.send_response(404)
                self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield OidcServer(f"http://127.0.0.1:{server.server_address[1]}", key)
    server.shutdown()
    server.server_close()


@pytest.fixture
def kc_client(api_client: TestClient, oidc_server: OidcServer, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    from muxly_provider.auth.keycloak import clear_jwks_cache

    monkeypatch.setenv("AIRFLOW__MUXLY__KEYCLOAK_SERVER_URL", oidc_server.base_url)
    monkeypatch.setenv("AIRFLOW__MUXLY__KEYCLOAK_REALM", REALM)
    monkeypatch.setenv("AIRFLOW__MUXLY__KEYCLOAK_CLIENT_ID", CLIENT)
    monkeypatch.setenv("AIRFLOW__MUXLY__KEYCLOAK_ROLE_MAPPING", "muxly-operator:operator,muxly-admin:admin")
    clear_jwks_cache()
    return api_client


def test_valid_token_links_the_user_and_maps_realm_roles(
    kc_client: TestClient, oidc_server: OidcServer
) -> None:
    headers = bearer(oidc_server.token())
    me = kc_client.get("/api/v1/auth/me", headers=headers)
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["username"] == "kc.alice"
    assert body["roles"] == ["operator"]
    assert body["auth_method"] == "keycloak"
    connector = {"name": "C", "connector_type": "api", "connection_settings": {"base_url": "http://x"}}
    assert kc_client.post("/api/v1/connectors", headers=headers, json=connector).status_code == 201
    assert kc_client.get("/api/v1/users", headers=headers).status_code == 403
    # The same subject is the same user on every request.
    again = kc_client.get("/api/v1/auth/me", headers=bearer(oidc_server.token(preferred_username="renamed")))
    assert again.json()["id"] == body["id"]

    admin = bearer(
        oidc_server.token(sub="kc-admin", email="root@acme.example", realm_access={"roles": ["muxly-admin"]})
    )
    users = kc_client.get("/api/v1/users", headers=admin)
    assert users.status_code == 200
    linked = {u["username"]: u for u in users.json()["items"]}
    assert linked["kc.alice"]["auth_provider"] == "keycloak"
    assert linked["kc.alice"]["external_id"] == "kc-user-1"


def test_a_token_without_mapped_roles_may_do_nothing(kc_client: TestClient, oidc_server: OidcServer) -> None:
    headers = bearer(oidc_server.token(realm_access={"roles": ["offline_access"]}))
    assert kc_client.get("/api/v1/auth/me", headers=headers).json()["roles"] == []
    assert kc_client.get("/api/v1/connectors", headers=headers).status_code == 403


@pytest.mark.parametrize(
    "case",
    ["expired", "wrong_audience", "wrong_issuer", "other_key", "hs256", "no_sub", "garbage"],
)
def test_invalid_tokens_get_401(kc_client: TestClient, oidc_server: OidcServer, case: str) -> None:
    other = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    tokens = {
        "expired": lambda: oidc_server.token(exp=int(time.time()) - 120),
        "wrong_audience": lambda: oidc_server.token(aud="another-client"),
        "wrong_issuer": lambda: oidc_server.token(iss=f"{oidc_server.base_url}/realms/other"),
        "other_key": lambda: oidc_server.token(key=other),
        "hs256": lambda: oidc_server.token(algorithm="HS256"),
        "no_sub": lambda: oidc_server.token(sub=None),
        "garbage": lambda: "a.b.c",
    }
    response = kc_client.get("/api/v1/connectors", headers=bearer(tokens[case]()))
    assert response.status_code == 401, response.text
    assert response.json()["error"]["code"] == "unauthorized"


def test_keycloak_is_off_without_settings(api_client: TestClient, oidc_server: OidcServer) -> None:
    response = api_client.get("/api/v1/auth/me", headers=bearer(oidc_server.token()))
    assert response.status_code == 401


@pytest.fixture
def kc_env(api_client: TestClient, oidc_server: OidcServer, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    """Keycloak switched on (server and realm) with nothing else: each test adds what it needs."""
    from muxly_provider.auth.keycloak import clear_jwks_cache

    monkeypatch.setenv("AIRFLOW__MUXLY__KEYCLOAK_SERVER_URL", oidc_server.base_url)
    monkeypatch.setenv("AIRFLOW__MUXLY__KEYCLOAK_REALM", REALM)
    clear_jwks_cache()
    return api_client


@pytest.mark.parametrize(
    ("env", "option"),
    [
        ({"KEYCLOAK_ROLE_MAPPING": "muxly-admin:admin"}, "keycloak_client_id"),
        ({"KEYCLOAK_CLIENT_ID": CLIENT}, "keycloak_role_mapping"),
        ({"KEYCLOAK_CLIENT_ID": CLIENT, "KEYCLOAK_ROLE_MAPPING": "admin"}, "keycloak_role_mapping"),
    ],
)
def test_keycloak_without_audience_or_explicit_mapping_refuses_to_start(
    kc_env: TestClient,
    oidc_server: OidcServer,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    env: dict[str, str],
    option: str,
) -> None:
    for key, value in env.items():
        monkeypatch.setenv(f"AIRFLOW__MUXLY__{key}", value)
    # A token for another client of the realm, carrying a realm role that happens to be named "admin".
    token = oidc_server.token(aud="some-other-client", realm_access={"roles": ["admin"]})
    caplog.set_level("ERROR")
    for response in (
        kc_env.get("/api/v1/users", headers=bearer(token)),
        kc_env.post("/api/v1/auth/login", json={"username": "root", "password": "whatever pw"}),
    ):
        assert response.status_code == 503, response.text
        error = response.json()["error"]
        assert error["code"] == "auth_misconfigured"
        assert error["message"].startswith(f"[muxly] {option}: ")
        assert error["details"] == {"option": f"[muxly] {option}"}
    assert f"[muxly] {option}" in caplog.text


def test_realm_roles_grant_only_through_the_mapping(
    kc_env: TestClient, oidc_server: OidcServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__MUXLY__KEYCLOAK_CLIENT_ID", CLIENT)
    monkeypatch.setenv("AIRFLOW__MUXLY__KEYCLOAK_ROLE_MAPPING", "muxly-ops:operator")
    named_admin = bearer(
        oidc_server.token(sub="kc-2", email="b@acme.example", realm_access={"roles": ["admin"]})
    )
    me = kc_env.get("/api/v1/auth/me", headers=named_admin)
    assert me.status_code == 200 and me.json()["roles"] == []
    assert kc_env.get("/api/v1/users", headers=named_admin).status_code == 403
    # The audience is checked: a token of another client of the realm is refused.
    other_client = oidc_server.token(aud="some-other-client", realm_access={"roles": ["muxly-ops"]})
    assert kc_env.get("/api/v1/auth/me", headers=bearer(other_client)).status_code == 401
    no_audience = oidc_server.token(aud=None, realm_access={"roles": ["muxly-ops"]})
    assert kc_env.get("/api/v1/auth/me", headers=bearer(no_audience)).status_code == 401
    # "none": no realm role grants anything; roles come from Muxly only.
    monkeypatch.setenv("AIRFLOW__MUXLY__KEYCLOAK_ROLE_MAPPING", "none")
    ops = bearer(oidc_server.token(realm_access={"roles": ["muxly-ops", "admin"]}))
    assert kc_env.get("/api/v1/auth/me", headers=ops).json()["roles"] == []
