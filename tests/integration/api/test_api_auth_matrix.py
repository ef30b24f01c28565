"""Every route of ``/api/v1`` checks a permission: each seeded role against each route, and ``401`` without auth."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from sqlalchemy import select

from muxly_provider.auth.dependencies import permission_of
from muxly_provider.auth.permissions import allows

OPEN_ROUTES = {("POST", "/api/v1/auth/login"), ("POST", "/api/v1/auth/refresh")}
SELF_ROUTES = {("POST", "/api/v1/auth/logout"), ("GET", "/api/v1/auth/me")}


def _routes(client: TestClient) -> list[tuple[str, str, tuple[str, str] | None]]:
    found = []
    for route in client.app.routes:  # type: ignore[attr-defined]
        if not isinstance(route, APIRoute) or not route.path.startswith("/api/v1"):
            continue
        permissions = [p for d in route.dependant.dependencies if (p := permission_of(d.call)) is not None]
        for method in sorted(route.methods):
            found.append((method, route.path, permissions[0] if permissions else None))
    return found


def _seeded_permissions() -> dict[str, set[tuple[str, str]]]:
    from muxly_provider.auth.permissions import role_permissions
    from muxly_provider.db.engine import session_scope
    from muxly_provider.db.models import Role

    with session_scope() as session:
        names = session.scalars(select(Role.name)).all()
        return {name: set(role_permissions(session, [name])) for name in names}


def _call(client: TestClient, method: str, path: str, headers: dict[str, str]) -> Any:
    url = re.sub(r"\{[^}]+\}", "missing-id", path)
    body = {} if method in {"POST", "PATCH", "PUT"} else None
    return client.request(method, url, headers=headers, json=body)


def test_every_route_but_login_and_refresh_declares_a_permission(api_client: TestClient) -> None:
    routes = _routes(api_client)
    assert len(routes) > 50
    for method, path, permission in routes:
        if (method, path) in OPEN_ROUTES | SELF_ROUTES:
            assert permission is None
        else:
            assert permission is not None, f"{method} {path} checks no permission"


def test_unauthenticated_requests_get_401(api_client: TestClient) -> None:
    for method, path, _ in _routes(api_client):
        if (method, path) in OPEN_ROUTES:
            continue
        for headers in ({}, {"Authorization": "Bearer mxa_nope.nope"}, {"Authorization": "Basic YTpi"}):
            response = _call(api_client, method, path, headers)
            assert response.status_code == 401, (method, path, headers, response.text)
            assert response.json()["error"]["code"] == "unauthorized"
            assert response.headers["WWW-Authenticate"] == "Bearer"


def test_authorization_matrix(api_client: TestClient, role_headers: dict[str, dict[str, str]]) -> None:
    """Each seeded role (and a user without roles) against each route: 403 exactly when not permitted."""
    seeded = _seeded_permissions()
    assert set(seeded) == {"admin", "operator", "viewer"}
    seeded["none"] = set()
    checked = 0
    for method, path, permission in _routes(api_client):
        if permission is None:
            continue
        for role, headers in role_headers.items():
            allowed = allows(seeded[role], *permission)
            response = _call(api_client, method, path, headers)
            assert response.status_code != 401, (role, method, path)
            if allowed:
                assert response.status_code != 403, (role, method, path, response.text)
                assert response.status_code < 500, (role, method, path, response.text)
            else:
                assert response.status_code == 403, (role, method, path, response.text)
                assert response.json()["error"]["details"] == {
                    "resource": permission[0],
                    "action": permission[1],
                }
            checked += 1
    assert checked > 200


@pytest.mark.parametrize(
    ("role", "resource", "action", "allowed"),
    [
        ("admin", "users", "delete", True),
        ("operator", "jobs", "execute", True),
        ("operator", "connectors", "create", True),
        ("operator", "users", "read", False),
        ("operator", "settings", "update", False),
        ("viewer", "connectors", "read", True),
        ("viewer", "connectors", "create", False),
        ("viewer", "jobs", "execute", False),
        ("viewer", "users", "read", False),
    ],
)
def test_seeded_roles(api_client: TestClient, role: str, resource: str, action: str, allowed: bool) -> None:
    assert allows(_seeded_permissions()[role], resource, action) is allowed


def test_viewer_writing_gets_403(api_client: TestClient, role_headers: dict[str, dict[str, str]]) -> None:
    response = api_client.post(
        "/api/v1/connectors",
        headers=role_headers["viewer"],
        json={"name": "x", "connector_type": "api", "connection_settings": {"base_url": "http://x"}},
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
