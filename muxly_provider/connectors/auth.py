"""Turn ``auth_settings`` into a configured :class:`requests.Session` for the HTTP-based connectors.

``none``, ``bearer``, ``basic`` and ``api_key`` set headers, basic auth or a query parameter. ``oauth`` is
authlib's OAuth 2 session (:class:`~muxly_provider.http.oauth.OAuthSession`): the refresh-token grant (RFC 6749
§6) when there is a refresh token, a one-time ``auth_code`` exchange, or the client-credentials grant
(``grant_type: client_credentials``); the token is renewed before it expires and once more when the API answers
401. ``service_account`` and ``application_default`` (and ``oauth`` on the Google connectors) are
``google-auth`` credentials in google-auth's own ``AuthorizedSession`` (signed JWT exchanged at the key's
``token_uri``, renewed when expired and once on 401), never hand-signed tokens. ``airflow_connection`` reads an
Airflow Connection: an HTTP connection through the HTTP provider's hook, or any connection's ``password`` as a
bearer token and its ``extra`` ``keyfile_dict`` as a Google key.

Token requests go through the server-side request guard (:mod:`muxly_provider.security.network`), and their
errors quote only the standard OAuth error codes (RFC 6749 §5.2), never other text of the remote answer.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from muxly_provider.exceptions import MuxlyConnectorError
from muxly_provider.security.scope import CredentialScope


@dataclass
class SessionSetup:
    """A session ready for requests, and the base URL an Airflow connection supplied (if any)."""

    session: requests.Session
    base_url: str | None = None
    scope: CredentialScope | None = None
    """Set when the credentials come from an Airflow connection: where they may be sent."""


class BearerAuth(requests.auth.AuthBase):
    """``Authorization: Bearer <token>``."""

    def __init__(self, token: str) -> None:
        self.token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token}"
        return request


def oauth_session(
    connector_id: str, params: Mapping[str, Any], token_url: str, timeout: float
) -> requests.Session:
    """authlib's OAuth 2 session for ``oauth`` params (see :class:`~muxly_provider.http.oauth.OAuthSession`)."""
    from muxly_provider.http.oauth import OAuthSession

    return OAuthSession(
        token_url,
        str(params["client_id"]),
        str(params["client_secret"]),
        refresh_token=params.get("refresh_token"),
        auth_code=params.get("auth_code"),
        grant_type=params.get("grant_type"),
        scope=params.get("scope"),
        timeout=timeout,
        error=lambda message: MuxlyConnectorError(f"connector {connector_id!r}: oauth: {message}"),
    )


def google_session(connector_id: str, credentials: Any) -> requests.Session:
    """google-auth's ``AuthorizedSession`` for ``credentials``: tokens renewed when expired and once on 401,
    token requests through the guard, refresh errors as connector errors quoting only a standard OAuth code."""
    import google.auth.exceptions
    from google.auth.transport.requests import AuthorizedSession, Request

    from muxly_provider.http.oauth import oauth_reason
    from muxly_provider.security.network import guarded_session

    class _GoogleSession(AuthorizedSession):
        def request(  # type: ignore[override]  # AuthorizedSession's own (untyped) signature
            self, method: str, url: str, *args: Any, **kwargs: Any
        ) -> requests.Response:
            try:
                response: requests.Response = super().request(method, url, *args, **kwargs)  # type: ignore[no-untyped-call]
            except google.auth.exceptions.GoogleAuthError as exc:
                text = exc.args[0] if exc.args and isinstance(exc.args[0], str) else ""
                raise MuxlyConnectorError(
                    f"connector {connector_id!r}: Google token refresh failed ({type(exc).__name__})"
                    + oauth_reason(text.split(":")[0])
                ) from None
            return response

    session: requests.Session = _GoogleSession(  # type: ignore[no-untyped-call]
        credentials, max_refresh_attempts=1, auth_request=Request(guarded_session())
    )
    return session


def google_credentials(
    connector_id: str, auth_type: str, params: Mapping[str, Any], scopes: Sequence[str]
) -> Any:
    """``google-auth`` credentials for ``service_account``, ``application_default`` or ``oauth``."""
    if auth_type == "service_account":
        from google.oauth2 import service_account

        info = params.get("service_account_json")
        if isinstance(info, str):
            try:
                info = json.loads(info)
            except ValueError:
                raise MuxlyConnectorError(
                    f"connector {connector_id!r}: service_account_json is not valid JSON"
                ) from None
        try:
            factory: Any = service_account.Credentials.from_service_account_info
            return factory(info, scopes=list(scopes))
        except (ValueError, KeyError, TypeError) as exc:
            raise MuxlyConnectorError(
                f"connector {connector_id!r}: service_account_json is not a usable service-account key "
                f"({type(exc).__name__})"
            ) from None
    if auth_type == "application_default":
        import google.auth
        import google.auth.exceptions

        try:
            credentials, _project = google.auth.default(scopes=list(scopes))
        except google.auth.exceptions.DefaultCredentialsError:
            raise MuxlyConnectorError(
                f"connector {connector_id!r}: no Google application default credentials found"
            ) from None
        return credentials
    if auth_type == "oauth":
        from google.oauth2 import credentials as user_credentials

        credentials_class: Any = user_credentials.Credentials
        return credentials_class(
            token=None,
            refresh_token=params.get("refresh_token"),
            client_id=params.get("client_id"),
            client_secret=params.get("client_secret"),
            token_uri=params.get("token_url") or "https://oauth2.googleapis.com/token",
            scopes=list(scopes),
        )
    raise MuxlyConnectorError(
        f"connector {connector_id!r}: auth_type {auth_type!r} is not a Google credential"
    )


def _airflow_connection(conn_id: str) -> Any:
    from airflow.sdk import BaseHook

    return BaseHook.get_connection(conn_id)


def build_session(
    connector_id: str,
    auth: Mapping[str, Any],
    *,
    allowed: frozenset[str],
    google_scopes: Sequence[str] = (),
    default_token_url: str | None = None,
    timeout: float = 30.0,
) -> SessionSetup:
    """A session authenticated as ``auth`` describes.

    :param connector_id: named in errors
    :param auth: ``auth_settings`` (``auth_type`` and ``params``)
    :param allowed: the auth types this connector type accepts
    :param google_scopes: OAuth scopes, for the Google connectors (whose ``oauth`` goes through google-auth)
    :param default_token_url: the token endpoint of ``oauth`` when ``params.token_url`` is absent
    :param timeout: seconds per token request
    :raises MuxlyConnectorError: for an auth type the connector does not accept or incomplete params
    """
    auth_type = str(auth.get("auth_type") or "none")
    params: Mapping[str, Any] = auth.get("params") or {}
    if auth_type not in allowed:
        raise MuxlyConnectorError(
            f"connector {connector_id!r}: auth_type {auth_type!r} is not supported here; "
            f"use one of {', '.join(sorted(allowed))}"
        )
    session = requests.Session()
    try:
        if auth_type == "bearer":
            session.auth = BearerAuth(str(params["token"]))
        elif auth_type == "basic":
            session.auth = (str(params["username"]), str(params.get("password") or ""))
        elif auth_type == "api_key":
            if params.get("location", "header") == "query":
                session.params = {str(params.get("param_name") or "api_key"): str(params["api_key"])}
            else:
                session.headers[str(params.get("header_name") or "X-API-Key")] = str(params["api_key"])
        elif auth_type in {"service_account", "application_default"} or (
            auth_type == "oauth" and google_scopes
        ):
            credentials = google_credentials(connector_id, auth_type, params, google_scopes)
            session.close()
            session = google_session(connector_id, credentials)
        elif auth_type == "oauth":
            token_url = params.get("token_url") or default_token_url
            if not token_url:
                raise MuxlyConnectorError(f"connector {connector_id!r}: oauth needs params.token_url")
            session.close()
            session = oauth_session(connector_id, params, str(token_url), timeout)
        elif auth_type == "airflow_connection":
            return _from_airflow_connection(connector_id, str(params["conn_id"]), google_scopes)
    except KeyError as exc:
        session.close()
        raise MuxlyConnectorError(
            f"connector {connector_id!r}: auth_type {auth_type!r} needs params.{exc.args[0]}"
        ) from None
    return SessionSetup(session)


def _from_airflow_connection(connector_id: str, conn_id: str, google_scopes: Sequence[str]) -> SessionSetup:
    """A session from an Airflow Connection (HTTP connections through the HTTP provider's hook)."""
    try:
        conn = _airflow_connection(conn_id)
    except Exception:
        raise MuxlyConnectorError(
            f"connector {connector_id!r}: Airflow connection {conn_id!r} cannot be read"
        ) from None
    extra = conn.extra_dejson or {}
    keyfile = extra.get("keyfile_dict") or extra.get("extra__google_cloud_platform__keyfile_dict")
    if google_scopes and keyfile:
        credentials = google_credentials(
            connector_id, "service_account", {"service_account_json": keyfile}, google_scopes
        )
        return SessionSetup(
            google_session(connector_id, credentials),
            scope=CredentialScope(conn_id, host_suffix=".googleapis.com"),
        )
    if conn.conn_type in {"http", "https"}:
        from airflow.providers.http.hooks.http import HttpHook

        hook = HttpHook(method="GET", http_conn_id=conn_id)
        session = hook.get_conn()
        base = getattr(hook, "base_url", None) or None
        return SessionSetup(session, base, CredentialScope(conn_id, str(base or "")))
    session = requests.Session()
    if conn.password:
        session.auth = BearerAuth(str(conn.password))
    host = str(conn.host or "")
    return SessionSetup(session, host if "://" in host else None, CredentialScope(conn_id, host))
