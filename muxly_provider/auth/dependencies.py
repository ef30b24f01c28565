"""FastAPI dependencies of the management API: the request's DB session, who is calling, and :func:`require`.

A request authenticates with ``Authorization: Bearer <token>`` where the token is one of:

* a Muxly access token (``mxa_...``, from ``POST /api/v1/auth/login``);
* a JWT of the configured Keycloak realm (its ``iss`` is the realm's issuer);
* a JWT of Airflow's auth manager (the Airflow UI's token); the UI's ``_token`` cookie is accepted as well when
  no ``Authorization`` header is sent.

Anything else answers ``401``; a principal lacking the permission of a route answers ``403``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy import select
from sqlalchemy.orm import Session

from muxly_provider.api.errors import MuxlyHTTPError
from muxly_provider.auth import airflow_token, keycloak, settings
from muxly_provider.auth.permissions import Principal, role_permissions, user_role_names
from muxly_provider.auth.sessions import AuthError, authenticate_access_token
from muxly_provider.auth.tokens import looks_like_muxly_token
from muxly_provider.db.engine import session_scope
from muxly_provider.db.models import User

log = logging.getLogger(__name__)

AIRFLOW_COOKIE = "_token"
"""The cookie in which the Airflow UI keeps its JWT."""

bearer_scheme = HTTPBearer(
    auto_error=False,
    description="A Muxly access token (POST /api/v1/auth/login), a Keycloak JWT or the Airflow UI's JWT",
)


def db_session() -> Iterator[Session]:
    """A session on Muxly's database for one request: committed when the handler succeeds.

    Used with ``scope="function"`` (:data:`DbSession`): FastAPI then leaves the ``with`` block right after the
    handler returns and before the answer is sent, so a client never gets an answer for a write that is not
    committed yet (with the default ``request`` scope the commit would run after the answer was sent, and a
    client creating a user and logging in at once would get ``401``). A failed commit answers an error.
    """
    with session_scope() as session:
        yield session


DbSession = Annotated[Session, Depends(db_session, scope="function")]


_reported: set[str] = set()


def auth_ready() -> None:
    """Refuse to authenticate anyone (``503``, and an error in the log) while an auth setting is unsafe.

    Keycloak enabled without an audience or without an explicit role mapping, or a malformed
    ``trusted_proxies``: see :func:`muxly_provider.auth.settings.check_auth_settings`.
    """
    try:
        settings.check_auth_settings()
    except settings.AuthSettingsError as exc:
        if exc.message not in _reported:  # once per process and problem: every request would repeat it
            _reported.add(exc.message)
            log.error("Muxly API: refusing every authenticated request until this is fixed: %s", exc.message)
        raise MuxlyHTTPError(
            503, "auth_misconfigured", exc.message, {"option": f"[{settings.SECTION}] {exc.option}"}
        ) from None


def unauthorized(message: str = "authentication required") -> MuxlyHTTPError:
    """A ``401`` answer asking for a bearer token."""
    return MuxlyHTTPError(401, "unauthorized", message, headers={"WWW-Authenticate": "Bearer"})


def _principal_of(
    session: Session, user: User, method: Any, extra_roles: list[str], sid: str | None
) -> Principal:
    roles = sorted(set(user_role_names(session, user.id)) | set(extra_roles))
    return Principal(
        user_id=user.id,
        username=user.username,
        roles=tuple(roles),
        permissions=role_permissions(session, roles),
        method=method,
        session_id=sid,
        email=user.email,
        display_name=user.display_name,
    )


def _from_keycloak(session: Session, token: str, kc: settings.KeycloakSettings) -> Principal:
    claims = keycloak.validate_token(token, kc)
    user = keycloak.link_user(session, claims)
    return _principal_of(session, user, "keycloak", kc.muxly_roles(keycloak.realm_roles(claims)), None)


def _from_airflow(session: Session, token: str) -> Principal:
    role = settings.airflow_user_role()
    if role is None:
        raise AuthError()
    airflow_id, name = airflow_token.airflow_user(token)
    linked = session.scalars(
        select(User).where(User.auth_provider == airflow_token.PROVIDER, User.external_id == airflow_id)
    ).first()
    if linked is not None:
        if not linked.is_active:
            raise AuthError("this account is deactivated")
        return _principal_of(session, linked, "airflow", [], None)
    return Principal(
        user_id=f"airflow:{airflow_id}",
        username=name,
        roles=(role,),
        permissions=role_permissions(session, [role]),
        method="airflow",
    )


def authenticate(session: Session, token: str) -> Principal:
    """The principal of a bearer token.

    :raises AuthError: when no method accepts the token
    """
    if looks_like_muxly_token(token):
        user, auth_session = authenticate_access_token(session, token)
        return _principal_of(session, user, "session", [], auth_session.id)
    kc = settings.keycloak_settings()
    if kc is not None and keycloak.unverified_issuer(token) == kc.issuer:
        return _from_keycloak(session, token, kc)
    return _from_airflow(session, token)


def current_principal(
    request: Request,
    session: DbSession,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer_scheme)],
) -> Principal:
    """Who makes the request (``401`` when nobody valid, ``503`` while an auth setting is unsafe)."""
    auth_ready()
    token: str | None = None
    if credentials is not None and credentials.scheme.lower() == "bearer":
        token = credentials.credentials
    elif request.headers.get("authorization"):
        raise unauthorized("the Authorization header must be 'Bearer <token>'")
    else:
        token = request.cookies.get(AIRFLOW_COOKIE)
    if not token:
        raise unauthorized()
    try:
        return authenticate(session, token)
    except AuthError as exc:
        log.info("Muxly API: rejected credentials on %s %s", request.method, request.url.path)
        raise unauthorized(exc.message) from None


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def require(resource: str, action: str) -> Any:
    """A dependency that lets only principals allowed to do ``action`` on ``resource`` through.

    Use it as ``principal: Annotated[Principal, require("connectors", "read")]``.
    """

    def checker(principal: CurrentPrincipal) -> Principal:
        if not principal.can(resource, action):
            raise MuxlyHTTPError(
                403,
                "forbidden",
                f"permission {action} on {resource} required",
                {"resource": resource, "action": action},
            )
        return principal

    checker.muxly_permission = (resource, action)  # type: ignore[attr-defined]
    return Depends(checker)


def permission_of(dependency: Callable[..., Any]) -> tuple[str, str] | None:
    """The ``(resource, action)`` a :func:`require` dependency checks (``None`` for other callables)."""
    value = getattr(dependency, "muxly_permission", None)
    return value if isinstance(value, tuple) else None
