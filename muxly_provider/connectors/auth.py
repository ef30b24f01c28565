"""Turn ``auth_settings`` into a configured :class:`requests.Session` for the HTTP-based connectors.

``none``, ``bearer``, ``basic`` and ``api_key`` set headers, basic auth or a query parameter. ``oauth`` runs the
OAuth 2 refresh-token grant (RFC 6749 §6; an ``auth_code`` is exchanged first when there is no refresh token) at
``token_url``, renews the access token before it expires and once more when the API answers 401.
``service_account`` and ``application_default`` use ``google-auth`` (signed JWT exchanged at the key's
``token_uri``), never hand-signed tokens. ``airflow_connection`` reads an Airflow Connection: an HTTP
connection through the HTTP provider's hook, or any connection's ``password`` as a bearer token and its
``extra`` ``keyfile_dict`` as a Google key.

Token requests go through the server-side request guard (:mod:`muxly_provider.security.network`), and their
errors quote only the standard OAuth error codes (RFC 6749 §5.2), never other text of the remote answer.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import requests

from muxly_provider.connectors.http_client import RefreshableAuth, safe_url
from muxly_provider.exceptions import MuxlyConnectorError
from muxly_provider.security.scope import CredentialScope

_EXPIRY_SKEW_SECONDS = 60.0
_OAUTH_ERRORS = frozenset(
    {
        "invalid_request",
        "invalid_client",
        "invalid_grant",
        "unauthorized_client",
        "unsupported_grant_type",
        "invalid_scope",
    }
)


def _oauth_reason(reason: object) -> str:
    """`` (invalid_grant)`` for a standard OAuth error code, else nothing (the remote server's words)."""
    return f" ({reason})" if isinstance(reason, str) and reason in _OAUTH_ERRORS else ""


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


class OAuthRefreshAuth(RefreshableAuth):
    """OAuth 2 access tokens from a refresh token (or a one-time authorization code) at ``token_url``.

    :param connector_id: named in errors
    :param token_url: the token endpoint
    :param client_id: the client id
    :param client_secret: the client secret (sent in the form body, as most providers expect)
    :param refresh_token: the long-lived refresh token
    :param auth_code: an authorization code exchanged once when there is no refresh token
    :param timeout: seconds per token request
    """

    def __init__(
        self,
        connector_id: str,
        token_url: str,
        client_id: str,
        client_secret: str,
        refresh_token: str | None = None,
        auth_code: str | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.connector_id = connector_id
        self.token_url = token_url
        self.client_id = client_id
        self.client_secret = client_secret
        self.refresh_token = refresh_token
        self.auth_code = auth_code
        self.timeout = timeout
        self.access_token: str | None = None
        self.expires_at = 0.0
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Obtain a new access token; a rotated refresh token replaces the old one for this run."""
        if self.refresh_token:
            form = {"grant_type": "refresh_token", "refresh_token": self.refresh_token}
        elif self.auth_code:
            form = {"grant_type": "authorization_code", "code": self.auth_code}
        else:
            raise self._error("no refresh_token or auth_code to obtain an access token")
        form.update(client_id=self.client_id, client_secret=self.client_secret)
        where = safe_url(self.token_url)
        from muxly_provider.security.network import guarded_session

        try:
            with guarded_session() as session:
                response = session.post(self.token_url, data=form, timeout=self.timeout)
        except requests.RequestException as exc:
            raise self._error(f"token request to {where} failed: {type(exc).__name__}") from None
        try:
            body = response.json()
        except ValueError:
            body = {}
        if response.status_code >= 400 or not isinstance(body, dict) or not body.get("access_token"):
            detail = _oauth_reason(body.get("error") if isinstance(body, dict) else None)
            raise self._error(f"token refresh at {where} failed: HTTP {response.status_code}{detail}")
        self.access_token = str(body["access_token"])
        self.expires_at = time.monotonic() + float(body.get("expires_in") or 3600)
        if body.get("refresh_token"):
            self.refresh_token = str(body["refresh_token"])
        self.auth_code = None

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        with self._lock:
            if self.access_token is None or time.monotonic() > self.expires_at - _EXPIRY_SKEW_SECONDS:
                self.refresh()
        request.headers["Authorization"] = f"Bearer {self.access_token}"
        return request

    def _error(self, message: str) -> MuxlyConnectorError:
        return MuxlyConnectorError(f"connector {self.connector_id!r}: oauth: {message}")


class GoogleAuth(RefreshableAuth):
    """Bearer tokens from ``google-auth`` credentials, refreshed when they expire or on 401.

    :param connector_id: named in errors
    :param credentials: a ``google.auth.credentials.Credentials``
    """

    def __init__(self, connector_id: str, credentials: Any) -> None:
        self.connector_id = connector_id
        self.credentials = credentials
        self._lock = threading.Lock()

    def refresh(self) -> None:
        """Refresh the credentials through ``google.auth.transport.requests``."""
        import google.auth.exceptions
        from google.auth.transport.requests import Request

        from muxly_provider.security.network import guarded_session

        try:
            with guarded_session() as session:
                self.credentials.refresh(Request(session=session))
        except google.auth.exceptions.GoogleAuthError as exc:
            code = exc.args[0].split(":")[0] if exc.args and isinstance(exc.args[0], str) else None
            raise MuxlyConnectorError(
                f"connector {self.connector_id!r}: Google token refresh failed ({type(exc).__name__})"
                + _oauth_reason(code)
            ) from None

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        with self._lock:
            if not self.credentials.valid:
                self.refresh()
        request.headers["Authorization"] = f"Bearer {self.credentials.token}"
        return request


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
            session.auth = GoogleAuth(connector_id, credentials)
        elif auth_type == "oauth":
            token_url = params.get("token_url") or default_token_url
            if not token_url:
                raise MuxlyConnectorError(f"connector {connector_id!r}: oauth needs params.token_url")
            session.auth = OAuthRefreshAuth(
                connector_id,
                str(token_url),
                str(params["client_id"]),
                str(params["client_secret"]),
                refresh_token=params.get("refresh_token"),
                auth_code=params.get("auth_code"),
                timeout=timeout,
            )
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
        session = requests.Session()
        session.auth = GoogleAuth(connector_id, credentials)
        return SessionSetup(session, scope=CredentialScope(conn_id, host_suffix=".googleapis.com"))
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
