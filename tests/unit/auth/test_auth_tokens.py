"""Opaque tokens, password hashes, permission wildcards, settings and the login throttle (no database)."""

from __future__ import annotations

import ipaddress

import pytest

from muxly_provider.auth.passwords import (
    check_password_strength,
    hash_password,
    needs_rehash,
    verify_password,
)
from muxly_provider.auth.permissions import allows, permission_matches
from muxly_provider.auth.settings import (
    AuthSettingsError,
    KeycloakSettings,
    parse_role_mapping,
    trusted_proxies,
)
from muxly_provider.auth.throttle import client_address, throttle_key
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
    assert parse_role_mapping("kc-admin:admin, ops:operator ,") == {"kc-admin": "admin", "ops": "operator"}
    assert parse_role_mapping(" None ") == {}
    kc = KeycloakSettings("https://sso.example.com/", "acme", "muxly", "muxly", {"kc-admin": "admin"}, 300)
    assert kc.issuer == "https://sso.example.com/realms/acme"
    assert kc.jwks_url == "https://sso.example.com/realms/acme/protocol/openid-connect/certs"
    assert kc.muxly_roles(["kc-admin", "offline_access"]) == ["admin"]
    unmapped = KeycloakSettings("https://sso", "r", "c", "c", {}, 300)
    assert unmapped.muxly_roles(["admin", "viewer"]) == []  # never by name


@pytest.mark.parametrize(
    ("raw", "named"), [("", "required"), ("admin", "'admin'"), ("kc:", "'kc:'"), (":admin", "':admin'")]
)
def test_role_mappings_must_be_explicit(raw: str, named: str) -> None:
    with pytest.raises(AuthSettingsError, match=r"\[muxly\] keycloak_role_mapping: .*") as caught:
        parse_role_mapping(raw)
    assert named in str(caught.value)


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.5", "10.0.0.1", "203.0.113.5"),  # untrusted peer: the header is ignored
        ("10.0.0.2", None, "10.0.0.2"),
        ("10.0.0.2", "198.51.100.1", "198.51.100.1"),
        ("10.0.0.2", "6.6.6.6, 198.51.100.1, 10.0.0.3", "198.51.100.1"),  # right-most untrusted hop
        ("10.0.0.2", "10.0.0.7, 10.0.0.3", "10.0.0.7"),  # only proxies: the left-most
        ("10.0.0.2", "198.51.100.1:4711", "198.51.100.1"),
        ("10.0.0.2", "[2001:db8::5]:443", "2001:db8::5"),
        ("10.0.0.2", "not-an-ip", "not-an-ip"),
        ("10.0.0.2", " , ", "10.0.0.2"),
        ("::1", "198.51.100.1", "198.51.100.1"),
        (None, "198.51.100.1", "unknown"),
    ],
)
def test_client_address(peer: str | None, forwarded: str | None, expected: str) -> None:
    proxies = (ipaddress.ip_network("10.0.0.0/8"), ipaddress.ip_network("::1"))
    assert client_address(peer, forwarded, proxies) == expected


def test_throttle_keys_are_per_user_and_client_and_hide_the_name() -> None:
    key = throttle_key("Alice ", "10.0.0.1")
    assert key == throttle_key("alice", "10.0.0.1")
    assert key != throttle_key("alice", "10.0.0.2") and key != throttle_key("bob", "10.0.0.1")
    assert len(key) == 64 and "alice" not in key


def test_trusted_proxies_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__MUXLY__TRUSTED_PROXIES", "10.0.0.0/8, 192.0.2.1 2001:db8::/32")
    assert [str(n) for n in trusted_proxies()] == ["10.0.0.0/8", "192.0.2.1/32", "2001:db8::/32"]
    monkeypatch.setenv("AIRFLOW__MUXLY__TRUSTED_PROXIES", "10.0.0.0/33")
    with pytest.raises(AuthSettingsError, match=r"trusted_proxies: '10.0.0.0/33' is not an IP address"):
        trusted_proxies()
    monkeypatch.delenv("AIRFLOW__MUXLY__TRUSTED_PROXIES")
    assert trusted_proxies() == ()
