"""Settings of Muxly's API authentication, read from ``[muxly]`` with defaults (never at import time).

=====================================  ==========================================================  ==========
option                                 meaning                                                     default
=====================================  ==========================================================  ==========
``access_token_expire_seconds``        lifetime of an access token                                 ``3600``
``refresh_token_expire_seconds``       lifetime of a login session (its refresh tokens)            ``604800``
``login_max_failures``                 failed logins per username or client within the window     ``5``
``login_failure_window_seconds``       window (and lockout) of the login throttle                  ``300``
``airflow_user_role``                  Muxly role of an Airflow UI user; empty refuses them        ``viewer``
``keycloak_server_url``                Keycloak base URL; empty disables Keycloak                  ``""``
``keycloak_realm``                     the realm                                                   ``""``
``keycloak_client_id``                 the client of Muxly in the realm                            ``""``
``keycloak_audience``                  the ``aud`` tokens must carry                               client id
``keycloak_role_mapping``              ``realm-role:muxly-role`` pairs, comma-separated            identity
``keycloak_jwks_cache_seconds``        how long fetched signing keys are kept                      ``300``
=====================================  ==========================================================  ==========
"""

from __future__ import annotations

from dataclasses import dataclass

SECTION = "muxly"


def _get(key: str, fallback: str) -> str:
    from airflow.configuration import conf

    value = conf.get(SECTION, key, fallback=fallback)
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
    :param role_mapping: realm role -> Muxly role; empty maps a realm role to the Muxly role of the same name
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
        """The Muxly role names that ``realm_roles`` grant."""
        if not self.role_mapping:
            return sorted(set(realm_roles))
        return sorted({self.role_mapping[r] for r in realm_roles if r in self.role_mapping})


def parse_role_mapping(raw: str) -> dict[str, str]:
    """``"kc-admin:admin, kc-ops:operator"`` as a dict (entries without ``:`` map a role to itself)."""
    mapping: dict[str, str] = {}
    for entry in raw.split(","):
        entry = entry.strip()
        if not entry:
            continue
        source, _, target = entry.partition(":")
        mapping[source.strip()] = (target or source).strip()
    return mapping


def keycloak_settings() -> KeycloakSettings | None:
    """The Keycloak settings, ``None`` when ``keycloak_server_url`` or ``keycloak_realm`` is not set."""
    server_url = _get("keycloak_server_url", "")
    realm = _get("keycloak_realm", "")
    if not server_url or not realm:
        return None
    client_id = _get("keycloak_client_id", "")
    return KeycloakSettings(
        server_url=server_url,
        realm=realm,
        client_id=client_id,
        audience=_get("keycloak_audience", "") or client_id,
        role_mapping=parse_role_mapping(_get("keycloak_role_mapping", "")),
        jwks_cache_seconds=_int("keycloak_jwks_cache_seconds", 300),
    )
