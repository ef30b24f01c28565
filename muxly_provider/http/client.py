""":class:`HttpClient`: one ``requests`` session with the guard, retries, a rate limit and re-authentication.

Every outbound HTTP request of Muxly goes through it (connectors through
:class:`~muxly_provider.connectors.http_client.ConnectorHttpClient`, the webhook destination through
:func:`~muxly_provider.destinations.http.send`, Pushgateway pushes through :func:`pushgateway_handler`):

- the session carries the server-side request guard (:func:`~muxly_provider.security.network.guard_session`):
  no connection to link-local or cloud metadata addresses, redirects and DNS names included;
- each request is tried through a tenacity ``Retrying`` built from a
  :class:`~muxly_provider.http.retry.HttpRetryPolicy` (backoff, ``Retry-After``, which failures are final);
- the body is read inside the attempt, so a connection dropped mid-body is retried like a refused one (an
  NDJSON body can be left to stream: a cut after records were handed on is the caller's error, not a retry);
- a client-side :class:`~muxly_provider.http.ratelimit.RateLimiter` spaces the requests, and with
  ``auto_adjust`` waits for the server's ``X-RateLimit-Reset``;
- a session that can renew its credentials (:class:`ReauthenticatingSession`: OAuth through authlib) does so
  once when the server answers 401, and the request is sent again within the same attempt;
- failures are described without the remote server's words: the status with its standard phrase, a short
  connection reason built from exception types and ``errno``; the error body's message goes to the process log
  only (the task log of a run).
"""

from __future__ import annotations

import errno
import logging
from collections.abc import Callable, Mapping
from typing import Any, Protocol, runtime_checkable
from urllib.parse import urlsplit, urlunsplit

import requests

from muxly_provider.http import retry as _retry
from muxly_provider.http.ratelimit import RateLimiter
from muxly_provider.http.retry import Failure, HttpRetryPolicy, Retrier, status_text
from muxly_provider.security.network import guard_session

log = logging.getLogger(__name__)


@runtime_checkable
class ReauthenticatingSession(Protocol):
    """A session that can obtain new credentials when the server answers 401 (OAuth access tokens)."""

    def reauthenticate(self) -> None:
        """Obtain new credentials (raises a :class:`~muxly_provider.exceptions.MuxlyError` when refused)."""


def safe_url(url: str) -> str:
    """``url`` without its query string, fragment and user info (they may hold credentials)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def is_ndjson(response: requests.Response) -> bool:
    """Whether ``response`` is newline-delimited JSON (``application/x-ndjson``, ``jsonl``, ``json-lines``)."""
    content_type = response.headers.get("Content-Type", "").lower()
    return any(kind in content_type for kind in ("ndjson", "jsonl", "json-lines", "jsonlines"))


class HttpClient:
    """A guarded session with retries, a rate limit and clear, secret-free failures.

    :param session: the session (auth, default headers and params already set); a new one when ``None``
    :param timeout: seconds per request (connect and read)
    :param retry: the retry policy
    :param rate_limiter: the client-side rate limit (none by default)
    :param sleep: how to wait between attempts and for the rate limit (tests record the waits)
    :param describe: who sends (``connector 'sales'``), for the log line of each retry and of error bodies
    :param name_url: whether failures name the method and the URL without its query (connectors do; a
        destination's URL is often its credential, so destinations pass ``False``)
    """

    def __init__(
        self,
        session: requests.Session | None = None,
        *,
        timeout: float = 30.0,
        retry: HttpRetryPolicy | None = None,
        rate_limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] | None = None,
        describe: str = "",
        name_url: bool = True,
    ) -> None:
        self.session = guard_session(session or requests.Session())
        self.timeout = timeout
        self.retry = retry or HttpRetryPolicy()
        self.sleep = sleep or _retry.default_sleep
        self.rate_limiter = rate_limiter or RateLimiter(sleep=self.sleep)
        self.describe = describe
        self.name_url = name_url
        self._retrier = Retrier(self.retry, sleep=self.sleep, describe=describe)
        self._pause = 0.0
        # Resolved once: a runtime protocol check costs microseconds, and the session does not change.
        self._reauthenticate = (
            self.session.reauthenticate if isinstance(self.session, ReauthenticatingSession) else None
        )

    def close(self) -> None:
        """Close the session's connections."""
        self.session.close()

    def send(self, method: str, url: str, *, stream_ndjson: bool = False, **kwargs: Any) -> requests.Response:
        """Send one request with retries; return a successful (``< 400``) response, its body read.

        :param method: the HTTP method
        :param url: the URL
        :param stream_ndjson: leave an NDJSON body unread (the caller streams it)
        :param kwargs: passed to :meth:`requests.Session.request` (``params``, ``headers``, ``json``, ``data``)
        :raises RetryGaveUp: after the last attempt, or at once for a failure that is not retried
        :raises requests.RequestException: for a request that cannot be sent at all (an invalid URL, too many
            redirects, :class:`~muxly_provider.security.network.BlockedAddressError`): never retried
        """
        reauthenticate = self._reauthenticate

        def where() -> str:  # only for failures: a successful request does not pay for it
            return f"{method} {safe_url(url)}"

        def attempt() -> requests.Response | Failure:
            try:
                response = self._send_once(method, url, kwargs)
                if response.status_code == 401 and reauthenticate is not None:
                    response.close()
                    reauthenticate()  # once per request: new credentials, then the same request again
                    response = self._send_once(method, url, kwargs)
                status = response.status_code
                if status < 400:
                    if not (stream_ndjson and is_ndjson(response)):
                        _ = response.content  # read the whole body now, inside the attempt
                    return response
                self._log_error_body(where(), response)
                response.close()
                problem = (
                    f"{where()} answered {status_text(status)}" if self.name_url else status_text(status)
                )
                return Failure.from_status(status, problem, response.headers)
            except requests.Timeout:
                if self.name_url:
                    return Failure("timeout", f"{where()} timed out after {self.timeout:g}s")
                return Failure("timeout", f"no answer within {self.timeout:g} s")
            except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                if self.name_url:
                    return Failure("connection_error", f"{where()} failed: {connection_reason(exc)}")
                return Failure("connection_error", "connection failed")

        return self._retrier.call(attempt)

    def _send_once(self, method: str, url: str, kwargs: Mapping[str, Any]) -> requests.Response:
        if self._pause:
            self.sleep(self._pause)
            self._pause = 0.0
        self.rate_limiter.acquire()
        response = self.session.request(method, url, timeout=self.timeout, stream=True, **kwargs)
        self._pause = self.rate_limiter.observe(response)
        return response

    def _log_error_body(self, where: str, response: requests.Response) -> None:
        detail = _error_detail(response)
        if detail:
            log.warning(
                "Muxly: %s: %s answered HTTP %d%s",
                self.describe or "HTTP",
                where if self.name_url else method_only(where),
                response.status_code,
                detail,
            )


def method_only(where: str) -> str:
    """The method of ``"GET https://..."`` (a destination's URL is not logged)."""
    return where.split(" ", 1)[0]


_ERRNO_REASONS = {
    errno.ECONNREFUSED: "connection refused",
    errno.ECONNRESET: "connection reset",
    errno.EHOSTUNREACH: "host unreachable",
    errno.ENETUNREACH: "network unreachable",
    errno.ETIMEDOUT: "timed out",
}


def connection_reason(exc: BaseException) -> str:
    """A short reason for a failed connection (``connection refused``, ``name not resolved``, ...).

    Built from the exception types and ``errno`` along the cause chain, never from a library's message
    (which may quote the remote server).
    """
    from urllib3.exceptions import NameResolutionError, ProtocolError, SSLError

    seen: BaseException | None = exc
    depth = 0
    while seen is not None and depth < 10:
        if isinstance(seen, NameResolutionError):
            return "name not resolved"
        if isinstance(seen, SSLError | requests.exceptions.SSLError):
            return "TLS handshake failed"
        if isinstance(seen, OSError) and seen.errno in _ERRNO_REASONS:
            return _ERRNO_REASONS[seen.errno]
        if isinstance(seen, requests.exceptions.ChunkedEncodingError | ProtocolError):
            return "connection closed before the answer was complete"
        nested = seen.args[0] if seen.args and isinstance(seen.args[0], BaseException) else None
        seen = seen.__cause__ or nested or seen.__context__
        depth += 1
    return f"connection failed ({type(exc).__name__})"


def _error_detail(response: requests.Response) -> str:
    """A short reason from an error body (``error.message``, ``error.status`` or ``message``), for the log."""
    try:
        body = response.json()
    except (ValueError, requests.RequestException):
        return ""
    message: Any = None
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            message = error.get("message") or error.get("status")
        elif isinstance(error, str):
            message = body.get("error_description") or error
        else:
            message = body.get("message")
    if not isinstance(message, str) or not message:
        return ""
    return f": {message[:300]}"


def pushgateway_handler(
    url: str,
    method: str,
    timeout: float | None,
    headers: list[tuple[str, str]],
    data: bytes,
    session: requests.Session | None = None,
) -> Callable[[], None]:
    """A ``prometheus_client`` push handler that sends through an :class:`HttpClient` (guarded, no redirects).

    One attempt: the delivery task retries the batch (``retry_count``). ``session``: an Airflow HTTP connection's
    (its auth and headers), bound with :func:`functools.partial`. Answers of ``400`` and above raise
    :class:`urllib.error.HTTPError`, as the library's default handler does.
    """
    from email.message import Message
    from urllib.error import HTTPError

    def handle() -> None:
        client = HttpClient(
            session, timeout=timeout or 30.0, retry=HttpRetryPolicy(max_attempts=1), describe="Pushgateway"
        )
        try:
            client.send(method, url, data=data, headers=dict(headers), allow_redirects=False)
        except _retry.RetryGaveUp as gave_up:
            status = gave_up.failure.status
            if status is None:
                raise OSError(gave_up.failure.problem) from None
            raise HTTPError(url, status, "error talking to the Pushgateway", Message(), None) from None
        finally:
            client.close()

    return handle
