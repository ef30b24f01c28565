"""Opaque tokens, password hashes, permission wildcards, settings and the login throttle (no database)."""

from __future__ import annotations

import pytest

from muxly_provider.auth.passwords import (
    check_password_strength,
    hash_password,
    needs_rehash,
    verify_password,
)
from muxly_provider.auth.permissions import allows, permission_matches
from muxly_provider.auth.settings import KeycloakSettings, parse_role_mapping
from muxly_provider.auth.throttle import LoginThrottle
from muxly_provider.auth.tokens import (
    REFRESH_HISTORY,
    hash_token,
    hashes_match,
    new_session_id,
    new_token,
    parse_token,
    refresh_match,
    rotated_hashes,
)


def test_tokens_carry_their_session_and_match_only_their_hash() -> None:
    session_id = new_session_id()
    access = new_token("access", session_id)
    refresh = new_token("refresh", session_id)
    assert access.startswith("mxa_") and refresh.startswith("mxr_")
    assert parse_token(access) == parse_token(access)
    parsed = parse_token(access)
    assert parsed is not None and parsed.kind == "access" and parsed.session_id == session_id
    assert hashes_match(access, hash_token(access))
    assert not hashes_match(refresh, hash_token(access))
    assert not hashes_match(access, None)
    assert new_token("access", session_id) != access


def test_refresh_tokens_are_current_rotated_or_unknown() -> None:
    session_id = new_session_id()
    issued = [new_token("refresh", session_id) for _ in range(REFRESH_HISTORY + 3)]
    stored: str | None = None
    for token in issued:
        stored = rotated_hashes(token, stored)
    assert len(str(stored).split()) == REFRESH_HISTORY + 1
    assert refresh_match(issued[-1], stored) == "current"
    assert refresh_match(issued[-2], stored) == "rotated"
    assert refresh_match(issued[-1 - REFRESH_HISTORY], stored) == "rotated"
    assert refresh_match(issued[0], stored) is None  # older than the history
    assert refresh_match(f"mxr_{session_id}.AAAA", stored) is None
    assert refresh_match(issued[-1], None) is None


@pytest.mark.parametrize("token", ["", "mxa_", "mxa_abc", "mxa_.x", "eyJhbGciOi.x.y", "mxa_a." + "x" * 300])
def test_malformed_tokens_are_not_parsed(token: str) -> None:
    assert parse_token(token) is None


def test_passwords_are_argon2id_and_verified() -> None:
    hashed = hash_password("correct horse battery")
    assert hashed.startswith("$argon2id$")
    assert verify_password("correct horse battery", hashed)
    assert not verify_password("wrong", hashed)
    assert not verify_password("anything", None)
    assert not verify_password("anything", "not a hash")
    assert not needs_rehash(hashed)
    assert check_password_strength("short") is not None
    assert check_password_strength("aaaaaaaaaaaaaaaa") is not None
    assert check_password_strength("correct horse battery") is None


@pytest.mark.parametrize(
    ("granted", "resource", "action", "expected"),
    [
        (("*", "*"), "users", "delete", True),
        (("*", "read"), "jobs", "read", True),
        (("*", "read"), "jobs", "update", False),
        (("connectors", "*"), "connectors", "execute", True),
        (("connectors", "*"), "destinations", "read", False),
        (("jobs", "execute"), "jobs", "execute", True),
        (("jobs", "execute"), "jobs", "read", False),
    ],
)
def test_permission_wildcards(granted: tuple[str, str], resource: str, action: str, expected: bool) -> None:
    assert permission_matches(granted, resource, action) is expected
    assert allows([("x", "y"), granted], resource, action) is expected


def test_keycloak_settings() -> None:
    assert parse_role_mapping("kc-admin:admin, ops:operator ,viewer") == {
        "kc-admin": "admin",
        "ops": "operator",
        "viewer": "viewer",
    }
    kc = KeycloakSettings("https://sso.example.com/", "acme", "muxly", "muxly", {"kc-admin": "admin"}, 300)
    assert kc.issuer == "https://sso.example.com/realms/acme"
    assert kc.jwks_url == "https://sso.example.com/realms/acme/protocol/openid-connect/certs"
    assert kc.muxly_roles(["kc-admin", "offline_access"]) == ["admin"]
    identity = KeycloakSettings("https://sso", "r", "c", "c", {}, 300)
    assert identity.muxly_roles(["viewer", "viewer"]) == ["viewer"]


def test_login_throttle_window() -> None:
    now = [1000.0]
    throttle = LoginThrottle(max_failures=3, window_seconds=60, clock=lambda: now[0])
    for _ in range(3):
        assert throttle.check("user:a", "ip:1").allowed
        throttle.failed("user:a", "ip:1")
    state = throttle.check("user:a", "ip:2")
    assert not state.allowed and state.remaining == 0 and 0 < state.retry_after <= 61
    assert not throttle.check("user:b", "ip:1").allowed  # the address is throttled too
    assert throttle.check("user:b", "ip:3").allowed
    now[0] += 61
    assert throttle.check("user:a", "ip:1").allowed
    throttle.failed("user:a")
    throttle.succeeded("user:a")
    assert throttle.check("user:a").remaining == 3
