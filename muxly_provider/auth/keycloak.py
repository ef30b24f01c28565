"""Bearer JWTs of a Keycloak realm: signature (the realm's JWKS), issuer, audience and expiry are checked.

The user is linked by ``users.external_id`` (the token's ``sub``, ``auth_provider = 'keycloak'``) and created
on first sight. Their Muxly roles are the realm roles (``realm_access.roles``) mapped by
``[muxly] keycloak_role_mapping`` (a realm role not in the mapping grants nothing, whatever its name) plus the
roles assigned to the linked user in Muxly. The audience is always checked: Keycloak does not start without
``keycloak_client_id`` or ``keycloak_audience`` (:func:`muxly_provider.auth.settings.keycloak_settings`).
"""

from __future__ import annotations

import threading
import uuid
from typing import Any

import jwt
from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from muxly_provider.auth.sessions import AuthError
from muxly_provider.auth.settings import KeycloakSettings
from muxly_provider.db.models import User

PROVIDER = "keycloak"
ALGORITHMS = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512")
"""Asymmetric algorithms only: a token signed with a shared secret (or ``none``) is never accepted."""

_clients: dict[str, jwt.PyJWKClient] = {}
_clients_lock = threading.Lock()


def _jwks_client(kc: KeycloakSettings) -> jwt.PyJWKClient:
    with _clients_lock:
        client = _clients.get(kc.jwks_url)
        if client is None:
            client = jwt.PyJWKClient(kc.jwks_url, cache_keys=True, lifespan=kc.jwks_cache_seconds, timeout=10)
            _clients[kc.jwks_url] = client
        return client


def clear_jwks_cache() -> None:
    """Forget the fetched signing keys (tests, key rotation)."""
    with _clients_lock:
        _clients.clear()


def unverified_issuer(token: str) -> str | None:
    """The ``iss`` claim of a JWT, read without checking anything (to choose who validates it)."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        return None
    issuer = claims.get("iss")
    return issuer if isinstance(issuer, str) else None


def validate_token(token: str, kc: KeycloakSettings) -> dict[str, Any]:
    """The claims of ``token`` once its signature, issuer, audience and expiry are checked.

    :raises AuthError: when any check fails or the realm's keys cannot be fetched
    """
    try:
        key = _jwks_client(kc).get_signing_key_from_jwt(token)
        claims: dict[str, Any] = jwt.decode(
            token,
            key.key,
            algorithms=list(ALGORITHMS),
            audience=kc.audience,
            issuer=kc.issuer,
            options={"require": ["exp", "iss", "sub", "aud"], "verify_aud": True},
            leeway=10,
        )
    except jwt.ExpiredSignatureError as exc:
        raise AuthError("the token has expired") from exc
    except (jwt.PyJWTError, jwt.PyJWKClientError) as exc:
        raise AuthError() from exc
    return claims


def realm_roles(claims: dict[str, Any]) -> list[str]:
    """The realm roles of a Keycloak token (``realm_access.roles``)."""
    access = claims.get("realm_access")
    roles = access.get("roles") if isinstance(access, dict) else None
    return [r for r in roles if isinstance(r, str)] if isinstance(roles, list) else []


def _free(session: Session, column: Any, value: str) -> bool:
    return session.scalars(select(User.id).where(column == value)).first() is None


def link_user(session: Session, claims: dict[str, Any]) -> User:
    """The Muxly user linked to the token's subject, created on first sight.

    :raises AuthError: when the linked user is deactivated
    """
    subject = str(claims["sub"])
    user = session.scalars(
        select(User).where(User.auth_provider == PROVIDER, User.external_id == subject)
    ).first()
    if user is None:
        wanted_name = str(claims.get("preferred_username") or subject)
        wanted_email = str(claims.get("email") or f"{subject}@{PROVIDER}.invalid")
        taken = session.scalars(
            select(User.id).where(or_(User.username == wanted_name, User.email == wanted_email))
        ).first()
        username = wanted_name if taken is None else f"{PROVIDER}:{subject}"
        email = wanted_email if taken is None else f"{subject}@{PROVIDER}.invalid"
        user = User(
            id=uuid.uuid4().hex,
            username=username,
            email=email,
            display_name=claims.get("name") if isinstance(claims.get("name"), str) else None,
            password_hash=None,
            external_id=subject,
            auth_provider=PROVIDER,
            is_active=True,
        )
        session.add(user)
        session.flush()
    if not user.is_active:
        raise AuthError("this account is deactivated")
    return user
