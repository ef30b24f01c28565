"""``/auth``: log in (local users), refresh (rotating), log out, and ``me``."""

from __future__ import annotations

import logging
from typing import Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, Field

from muxly_provider.api.errors import MuxlyHTTPError
from muxly_provider.api.v1.common import StrictRequest
from muxly_provider.auth import sessions, settings
from muxly_provider.auth.dependencies import CurrentPrincipal, DbSession, auth_ready, unauthorized
from muxly_provider.auth.throttle import client_address, get_throttle, throttle_key

log = logging.getLogger(__name__)

router = APIRouter(prefix="/auth", tags=["auth"])


class LoginRequest(StrictRequest):
    """The credentials of a local user."""

    username: str = Field(min_length=1, max_length=200)
    password: str = Field(min_length=1, max_length=1000)


class RefreshRequest(StrictRequest):
    """A refresh token from a login or an earlier refresh (each works once)."""

    refresh_token: str = Field(min_length=1, max_length=1000)


class TokenResponse(BaseModel):
    """The tokens of a session; send ``Authorization: Bearer <access_token>``."""

    access_token: str
    refresh_token: str
    token_type: Literal["Bearer"] = "Bearer"  # noqa: S105 - the scheme name, not a secret
    expires_in: int = Field(description="Seconds until the access token expires")


class MeResponse(BaseModel):
    """Who the caller is and what they may do."""

    id: str
    username: str
    email: str | None
    display_name: str | None
    roles: list[str]
    permissions: list[str] = Field(description="'resource:action' pairs, '*' a wildcard")
    auth_method: str


def _client(request: Request) -> str:
    """The client's address: ``X-Forwarded-For`` counts only from ``[muxly] trusted_proxies``."""
    peer = request.client.host if request.client is not None else None
    return client_address(peer, request.headers.get("x-forwarded-for"), settings.trusted_proxies())


def _rate_headers(limit: int, remaining: int, reset: int) -> dict[str, str]:
    return {
        "X-RateLimit-Limit": str(limit),
        "X-RateLimit-Remaining": str(remaining),
        "X-RateLimit-Reset": str(reset),
    }


@router.post(
    "/login",
    response_model=TokenResponse,
    summary="Log in with a username and password",
    responses={
        401: {"description": "Invalid credentials"},
        429: {"description": "Too many failed logins of this user name from this client"},
        503: {"description": "An authentication setting is unsafe (see the log)"},
    },
    dependencies=[Depends(auth_ready)],
)
def login(body: LoginRequest, request: Request, response: Response, session: DbSession) -> TokenResponse:
    throttle = get_throttle()
    client = _client(request)
    key = throttle_key(body.username, client)
    state = throttle.check(key)
    if not state.allowed:
        raise MuxlyHTTPError(
            429,
            "too_many_attempts",
            "too many failed logins; try again later",
            {"retry_after": state.retry_after},
            headers={
                "Retry-After": str(state.retry_after),
                **_rate_headers(state.limit, 0, state.retry_after),
            },
        )
    try:
        issued = sessions.login(session, body.username, body.password)
    except sessions.AuthError as exc:
        after = throttle.failed(key)
        log.info("Muxly API: failed login from %s", client)
        error = unauthorized(exc.message)
        error.headers = {
            **(error.headers or {}),
            **_rate_headers(after.limit, after.remaining, after.retry_after),
        }
        raise error from None
    throttle.succeeded(key, session)
    response.headers.update(_rate_headers(state.limit, state.limit, 0))
    return TokenResponse(
        access_token=issued.access_token, refresh_token=issued.refresh_token, expires_in=issued.expires_in
    )


@router.post(
    "/refresh",
    response_model=TokenResponse,
    summary="Exchange a refresh token for new tokens",
    responses={
        401: {"description": "Unknown, expired or reused refresh token"},
        503: {"description": "An authentication setting is unsafe (see the log)"},
    },
    dependencies=[Depends(auth_ready)],
)
def refresh(body: RefreshRequest, session: DbSession) -> TokenResponse:
    try:
        issued = sessions.refresh(session, body.refresh_token)
    except sessions.AuthError as exc:
        session.commit()  # keep the revocation of a session whose refresh token was replayed
        raise unauthorized(exc.message) from None
    return TokenResponse(
        access_token=issued.access_token, refresh_token=issued.refresh_token, expires_in=issued.expires_in
    )


@router.post("/logout", status_code=204, summary="End the session of the access token")
def logout(principal: CurrentPrincipal, session: DbSession) -> Response:
    if principal.session_id is not None:
        sessions.logout(session, principal.session_id)
    return Response(status_code=204)


@router.get("/me", response_model=MeResponse, summary="Who am I")
def me(principal: CurrentPrincipal) -> MeResponse:
    return MeResponse(
        id=principal.user_id,
        username=principal.username,
        email=principal.email,
        display_name=principal.display_name,
        roles=list(principal.roles),
        permissions=sorted(f"{r}:{a}" for r, a in principal.permissions),
        auth_method=principal.method,
    )
