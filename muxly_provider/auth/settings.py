"""Settings of Muxly's API authentication, read from ``[muxly]`` with defaults (never at import time).

=====================================  ==========================================================  ==========
option                                 meaning                                                     default
=====================================  ==========================================================  ==========
``access_token_expire_seconds``        lifetime of an access token                                 ``3600``
``refresh_token_expire_seconds``       lifetime of a login session (its refresh tokens)            ``604800``
``login_max_failures``                 failed logins per (user name, client) within the window     ``5``
``login_failure_window_seconds``       window (and lockout) of the login throttle                  ``300``
``airflow_user_role``                  Muxly role of an Airflow UI user; empty refuses them        ``viewer``
``keycloak_server_url``                Keycloak base URL; empty disables Keycloak                  ``""``
``keycloak_realm``                     the realm                                                   ``""``
``keycloak_client_id``                 the client of Muxly in the realm (required with Keycloak)   ``""``
``keycloak_audience``                  the ``aud`` tokens must carry                               client id
``keycloak_role_mapping``              ``realm-role:muxly-role`` pairs, or ``none`` (required)     ``""``
``keycloak_jwks_cache_seconds``        how long fetched signing keys are kept                      ``300``
``trusted_proxies``                    addresses/CIDRs whose ``X-Forwarded-For`` is believed       ``""``
=====================================  ==========================================================  ==========

Settings that would leave authentication unsafe raise :class:`AuthSettingsError` when they are read: Keycloak
enabled without an audience (any client of the realm could call Muxly) or without an explicit role mapping
(a realm role named ``admin`` would grant ``*:*``), a malformed role mapping, a malformed ``trusted_proxies``.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from muxly_provider.exceptions import MuxlyError

SECTION = "muxly"

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

NO_ROLE_MAPPING = "none"
"""``keycloak_role_mapping = none``: no realm role grants a Muxly role (roles are assigned in Muxly only)."""


class AuthSettingsError(MuxlyError):
    """An authentication setting is missing or malformed; the message names the ``[muxly]`` option.

    :param option: the option's name
    :param message: what is wrong and how to fix it
    """

    def __init__(self, option: str, message: str) -> None:
        self.option = option
        self.message = f"[{SECTION}] {option}: {message}"
        super().__init__(self.message)


def _get(key: str, fallback: str) -> str:
    # The Task SDK's configuration, like every Muxly setting (see muxly_provider.settings).
    from muxly_provider.settings import airflow_conf

    value = airflow_conf().get(SECTION, key, fallback=fallback)
    return fallback if value is None else str(value).strip()


def _int(key: str, fallback: int) -> int:
    raw = _get(key, str(fallback))
    try:
        value = int(raw)
    except ValueError:
        return fallback
    return value if value > 0 else fallback


def access_token_seconds() -> int:
    """Lifetime of an access token (``[muxly] access_token_expire_seconds``)."""
    return _int("access_token_expire_seconds", 3600)


def refresh_token_seconds() -> int:
    """Lifetime of a login session and so of its refresh tokens (``[muxly] refresh_token_expire_seconds``)."""
    return _int("refresh_token_expire_seconds", 7 * 24 * 3600)


def login_max_failures() -> int:
    """Failed logins allowed per username or client address within the window."""
    return _int("login_max_failures", 5)


def login_failure_window_seconds() -> int:
    """The window of the login throttle, also how long a throttled username or client waits."""
    return _int("login_failure_window_seconds", 300)


def airflow_user_role() -> str | None:
    """The Muxly role of a user authenticated by the Airflow UI's token; ``None`` refuses those tokens."""
    return _get("airflow_user_role", "viewer") or None


@dataclass(frozen=True)
class KeycloakSettings:
    """Where a Keycloak realm is and what its tokens must carry.

    :param server_url: the Keycloak base URL (``https://sso.example.com``)
    :param realm: the realm's name
    :param client_id: Muxly's client in the realm
    :param audience: the ``aud`` value tokens must carry
    :param role_mapping: realm role -> Muxly role; realm roles not in it grant nothing
    :param jwks_cache_seconds: how long fetched signing keys are kept
    """

    server_url: str
    realm: str
    client_id: str
    audience: str
    role_mapping: dict[str, str]
    jwks_cache_seconds: int

    @property
    def issuer(self) -> str:
        """The ``iss`` of the realm's tokens."""
        return f"{self.server_url.rstrip('/')}/realms/{self.realm}"

    @property
    def jwks_url(self) -> str:
        """The realm's JWKS endpoint."""
        return f"{self.issuer}/protocol/openid-connect/certs"

    def muxly_roles(self, realm_roles: list[str]) -> list[str]:
        """The Muxly role names that ``realm_roles`` grant (only through the mapping, never by name)."""
        return sorted({self.role_mapping[r] for r in realm_roles if r in self.role_mapping})


def parse_role_mapping(raw: str) -> dict[str, str]:
    """``"kc-admin:admin, kc-ops:operator"`` as a dict; ``none`` is the explicit empty mapping.

    :raises AuthSettingsError: when the mapping is empty or an entry is not ``realm-role:muxly-role``
    """
    option = "keycloak_role_mapping"
    if raw.strip().lower() == NO_ROLE_MAPPING:
        return {}
    mapping: dict[str, str] = {}
    for entry in raw.split(","):
        if not entry.strip():
            continue
        source, colon, target = (part.strip() for part in entry.partition(":"))
        if not colon or not source or not target:
            raise AuthSettingsError(
                option,
                f"entry {entry.strip()!r} is not 'realm-role:muxly-role' (realm roles map only explicitly)",
            )
        mapping[source] = target
    if not mapping:
        raise AuthSettingsError(
            option,
            "required when Keycloak is enabled: list 'realm-role:muxly-role' pairs "
            "(for example 'muxly-admins:admin,muxly-ops:operator'), or 'none' to grant roles in Muxly only",
        )
    return mapping


def keycloak_settings() -> KeycloakSettings | None:
    """The Keycloak settings, ``None`` when ``keycloak_server_url`` or ``keycloak_realm`` is not set.

    :raises AuthSettingsError: when Keycloak is enabled without an audience (``keycloak_client_id`` or
        ``keycloak_audience``) or without a valid ``keycloak_role_mapping``
    """
    server_url = _get("keycloak_server_url", "")
    realm = _get("keycloak_realm", "")
    if not server_url or not realm:
        return None
    client_id = _get("keycloak_client_id", "")
    audience = _get("keycloak_audience", "") or client_id
    if not audience:
        raise AuthSettingsError(
            "keycloak_client_id",
            "required when Keycloak is enabled (or set keycloak_audience): without it a token the realm "
            "issued to any client would be accepted",
        )
    return KeycloakSettings(
        server_url=server_url,
        realm=realm,
        client_id=client_id,
        audience=audience,
        role_mapping=parse_role_mapping(_get("keycloak_role_mapping", "")),
        jwks_cache_seconds=_int("keycloak_jwks_cache_seconds", 300),
    )


def trusted_proxies() -> tuple[IPNetwork, ...]:
    """The proxies whose ``X-Forwarded-For`` header is believed (``[muxly] trusted_proxies``, default none).

    :raises AuthSettingsError: when an entry is not an IP address or a CIDR network
    """
    networks: list[IPNetwork] = []
    for entry in _get("trusted_proxies", "").replace(",", " ").split():
        try:
            networks.append(ipaddress.ip_network(entry, strict=False))
        except ValueError:
            raise AuthSettingsError(
                "trusted_proxies", f"{entry!r} is not an IP address or a CIDR network (like 10.0.0.0/8)"
            ) from None
    return tuple(networks)


def check_auth_settings() -> None:
    """Read every authentication setting once, so that a bad one is reported before anything is trusted.

    :raises AuthSettingsError: naming the first bad option
    """
    keycloak_settings()
    trusted_proxies()
