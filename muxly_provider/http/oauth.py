"""OAuth 2 access tokens through authlib: the refresh-token, authorization-code and client-credentials grants.

:class:`OAuthSession` is authlib's ``requests`` ``OAuth2Session`` (a :class:`requests.Session`): authlib builds the
token requests (client credentials in the form body, ``client_secret_post``), parses the answers, computes the
expiry and renews an access token 60 s before it expires (``leeway``), keeping a rotated refresh token. Muxly
adds what authlib leaves to its caller:

- the grant: ``refresh_token`` when there is a refresh token, else the one-time ``auth_code`` exchange
  (RFC 6749 §4.1.3), else ``client_credentials`` (§4.4);
- :meth:`OAuthSession.reauthenticate` for :class:`~muxly_provider.http.client.HttpClient`, which calls it once
  when the API answers 401;
- errors that quote only the standard OAuth error codes (RFC 6749 §5.2) and the HTTP status, never other text of
  the remote answer, and name their owner (``connector 'sales': oauth: ...``).

The token endpoint is reached through the same guarded session as the API (no link-local or metadata address).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

import requests
from authlib.integrations.requests_client import (  # type: ignore[import-untyped]  # no type hints
    OAuth2Session,
    OAuthError,
)

from muxly_provider.exceptions import MuxlyError
from muxly_provider.http.client import safe_url
from muxly_provider.security.network import guard_session

Grant = Literal["refresh_token", "authorization_code", "client_credentials"]

EXPIRY_LEEWAY_SECONDS = 60
"""An access token is renewed this long before it expires."""

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


def oauth_reason(reason: object) -> str:
    """`` (invalid_grant)`` for a standard OAuth error code, else nothing (the remote server's words)."""
    return f" ({reason})" if isinstance(reason, str) and reason in _OAUTH_ERRORS else ""


class OAuthSession(OAuth2Session):  # type: ignore[misc]  # authlib ships no type hints
    """A guarded ``requests`` session whose requests carry an OAuth 2 bearer token obtained by authlib.

    :param token_url: the token endpoint
    :param client_id: the client id
    :param client_secret: the client secret (sent in the form body, as most providers expect)
    :param refresh_token: the long-lived refresh token
    :param auth_code: an authorization code exchanged once when there is no refresh token
    :param grant_type: the grant (default: ``refresh_token`` with a refresh token, ``authorization_code`` with
        an ``auth_code``, else ``client_credentials``)
    :param scope: the scope to ask for (space-separated), if the provider wants one
    :param timeout: seconds per token request
    :param error: builds the error raised for a refused or failed token request, from a secret-free message
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str,
        *,
        refresh_token: str | None = None,
        auth_code: str | None = None,
        grant_type: Grant | None = None,
        scope: str | None = None,
        timeout: float = 30.0,
        error: Callable[[str], MuxlyError] = MuxlyError,
    ) -> None:
        grant: Grant = grant_type or (
            "refresh_token" if refresh_token else "authorization_code" if auth_code else "client_credentials"
        )
        super().__init__(
            client_id,
            client_secret,
            token_endpoint_auth_method="client_secret_post",  # noqa: S106 - a method name, not a secret
            scope=scope,
            leeway=EXPIRY_LEEWAY_SECONDS,
            token_endpoint=token_url,
            grant_type=grant,
        )
        guard_session(self)
        self.token_url = token_url
        self.grant: Grant = grant
        self.token_timeout = timeout
        self._granted_refresh_token = refresh_token
        self._one_time_code = auth_code
        self._error = error
        self._last_status: int | None = None
        for hook in ("access_token_response", "refresh_token_response"):
            self.register_compliance_hook(hook, self._remember_status)

    def _remember_status(self, response: requests.Response) -> requests.Response:
        self._last_status = response.status_code
        return response

    def request(
        self, method: str, url: str, withhold_token: bool = False, auth: Any = None, **kwargs: Any
    ) -> requests.Response:
        """Send a request with a valid access token (obtained or renewed first when needed)."""
        if not withhold_token and auth is None:
            token = self.token
            if not token or not token.get("access_token") or token.is_expired(leeway=self.leeway):
                self.reauthenticate()
        response: requests.Response = super().request(
            method, url, withhold_token=withhold_token, auth=auth, **kwargs
        )
        return response

    def ensure_active_token(self, token: Any = None) -> bool:
        """Always ``True``: :meth:`request` has renewed the token already (with Muxly's errors), and a token that
        lives less than the leeway would otherwise be fetched twice per request."""
        return True

    def reauthenticate(self) -> None:
        """Obtain a new access token with the session's grant (a rotated refresh token is kept).

        :raises MuxlyError: (from ``error``) naming the token endpoint without its query, the HTTP status and a
            standard OAuth error code, when the grant is refused or the endpoint cannot be reached
        """
        where = safe_url(self.token_url)
        verb = "refresh" if self._granted_refresh_token else "request"
        self._last_status = None
        try:
            if self._granted_refresh_token:
                token = self.refresh_token(
                    self.token_url, refresh_token=self._granted_refresh_token, timeout=self.token_timeout
                )
            elif self._one_time_code and self.grant == "authorization_code":
                token = self.fetch_token(
                    self.token_url,
                    grant_type="authorization_code",
                    code=self._one_time_code,
                    timeout=self.token_timeout,
                )
            elif self.grant == "client_credentials":
                token = self.fetch_token(
                    self.token_url, grant_type="client_credentials", timeout=self.token_timeout
                )
            else:
                raise self._error("no refresh_token or auth_code to obtain an access token")
        except OAuthError as exc:
            raise self._error(
                f"token {verb} at {where} failed: HTTP {self._last_status}{oauth_reason(exc.error)}"
            ) from None
        except requests.HTTPError as exc:  # a 5xx, or a 4xx whose body is not an OAuth error object
            status = exc.response.status_code if exc.response is not None else self._last_status
            raise self._error(f"token {verb} at {where} failed: HTTP {status}") from None
        except requests.RequestException as exc:
            raise self._error(f"token request to {where} failed: {type(exc).__name__}") from None
        except ValueError:  # a 2xx whose body is not a JSON object
            raise self._error(
                f"token {verb} at {where} failed: HTTP {self._last_status} (not a token)"
            ) from None
        if not token.get("access_token"):
            raise self._error(f"token {verb} at {where} failed: HTTP {self._last_status} (no access_token)")
        self._one_time_code = None  # an authorization code is good for one exchange
        if token.get("refresh_token"):
            self._granted_refresh_token = str(token["refresh_token"])
