"""The HTTP client shared by the ``api``, ``bigquery``, ``ga4`` and ``hubspot`` connectors.

One :class:`HttpClient` per run wraps a :class:`requests.Session` with:

- a client-side rate limit (``rate_limit``: at most ``max_requests`` per ``period_seconds``, and with
  ``auto_adjust`` a pause until the server's ``X-RateLimit-Reset`` when ``X-RateLimit-Remaining`` reaches 0);
- retries with exponential backoff (``retry``) on connection errors, timeouts, a body cut short and the
  retryable statuses, honouring ``Retry-After`` (seconds or an HTTP date) on 429 and 503, through the retry
  layer the webhook and Slack destinations use too (:mod:`muxly_provider.http_retry`);
- one re-authentication on 401 for credentials that can refresh themselves (OAuth, Google);
- errors as :class:`~muxly_provider.exceptions.MuxlyConnectorError` naming the connector, the method, the
  URL without its query string (which may carry an API key) and a short reason (``HTTP 401 Unauthorized``,
  ``connection refused``, ``timed out``), never a credential and never the remote server's words: neither
  its body nor its reason phrase (a test request from the api-server must not read other servers back);
  the body's error message goes to the process log only (the task log of a run, the api-server log of a test);
- the server-side request guard (:mod:`muxly_provider.security.network`): no connection to link-local or
  cloud metadata addresses, redirects and DNS names included.

A bounded total wait keeps a 429 storm from hanging a run: a ``Retry-After`` above
:data:`MAX_RETRY_AFTER_SECONDS` is an error instead of a sleep.
"""

from __future__ import annotations

import errno
import logging
import time
from collections import deque
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import requests

from muxly_provider.exceptions import MuxlyConnectorError
from muxly_provider.http_retry import Failure, RetryGaveUp, call_with_retries, status_text
from muxly_provider.http_retry import RetryPolicy as RetryPolicy  # re-exported: connectors and tests use it
from muxly_provider.http_retry import retry_after_seconds as retry_after_seconds  # re-exported likewise
from muxly_provider.security.network import BlockedAddressError, guard_session
from muxly_provider.security.scope import CredentialScope

log = logging.getLogger(__name__)

MAX_RETRY_AFTER_SECONDS: float = RetryPolicy.max_retry_after_seconds
"""The longest ``Retry-After`` / rate-limit reset Muxly waits for; a longer one fails the run clearly."""


def _default_sleep(seconds: float) -> None:
    """Wait ``seconds`` (a module function so that tests can record waits instead of sleeping)."""
    time.sleep(seconds)


def safe_url(url: str) -> str:
    """``url`` without its query string, fragment and user info (they may hold credentials)."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


@dataclass
class RateLimiter:
    """At most ``max_requests`` per sliding window of ``period_seconds``; ``auto_adjust`` follows headers.

    :param max_requests: requests allowed per window (``None``: no client-side limit)
    :param period_seconds: the window
    :param auto_adjust: pause until ``X-RateLimit-Reset`` when the server says none remain
    """

    max_requests: int | None = None
    period_seconds: float = 1.0
    auto_adjust: bool = False
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = _default_sleep
    _sent: deque[float] = field(default_factory=deque)

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None, sleep: Callable[[float], None]) -> RateLimiter:
        """Build the limiter from ``connection_settings.rate_limit``."""
        if not settings:
            return cls(sleep=sleep)
        return cls(
            max_requests=int(settings["max_requests"]) if settings.get("max_requests") else None,
            period_seconds=float(settings.get("period_seconds") or 1.0),
            auto_adjust=bool(settings.get("auto_adjust", False)),
            sleep=sleep,
        )

    def acquire(self) -> None:
        """Wait until one more request fits in the window, then count it."""
        if not self.max_requests:
            return
        now = self.clock()
        while self._sent and now - self._sent[0] >= self.period_seconds:
            self._sent.popleft()
        if len(self._sent) >= self.max_requests:
            self.sleep(self.period_seconds - (now - self._sent[0]))
            self._sent.popleft()
            now = self.clock()
        self._sent.append(now)

    def observe(self, response: requests.Response) -> float:
        """Seconds to pause before the next request according to the server's rate-limit headers."""
        if not self.auto_adjust:
            return 0.0
        headers = response.headers
        remaining = headers.get("X-RateLimit-Remaining") or headers.get("RateLimit-Remaining")
        reset = headers.get("X-RateLimit-Reset") or headers.get("RateLimit-Reset")
        if remaining is None or reset is None:
            return 0.0
        try:
            if int(float(remaining)) > 0:
                return 0.0
            value = float(reset)
        except ValueError:
            return 0.0
        # Epoch seconds (GitHub style) or seconds until the reset (IETF draft style).
        return max(0.0, value - time.time()) if value > 1_000_000_000 else max(0.0, value)


class RefreshableAuth(requests.auth.AuthBase):
    """Credentials that can be renewed when the server answers 401 (OAuth access tokens, Google)."""

    def refresh(self) -> None:
        """Obtain a new access token (raises :class:`MuxlyConnectorError` when the grant is refused)."""
        raise NotImplementedError


class HttpClient:
    """A session with rate limiting, retries and clear errors, for one connector and one run.

    :param connector_id: named in every error
    :param session: the session (auth, default headers and params already set)
    :param timeout: seconds per request (connect and read)
    :param retry: the retry policy
    :param rate_limiter: the client-side rate limit
    :param sleep: how to wait (tests pass a recorder)
    """

    def __init__(
        self,
        connector_id: str,
        session: requests.Session | None = None,
        *,
        timeout: float = 30.0,
        retry: RetryPolicy | None = None,
        rate_limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] | None = None,
        scope: CredentialScope | None = None,
    ) -> None:
        self.connector_id = connector_id
        self.scope = scope
        self.session = guard_session(session or requests.Session())
        self.timeout = timeout
        self.retry = retry or RetryPolicy()
        self.sleep = sleep or _default_sleep
        self.rate_limiter = rate_limiter or RateLimiter(sleep=self.sleep)
        self._pause = 0.0

    @classmethod
    def from_settings(
        cls,
        connector_id: str,
        settings: Mapping[str, Any],
        session: requests.Session | None = None,
        sleep: Callable[[float], None] | None = None,
        scope: CredentialScope | None = None,
    ) -> HttpClient:
        """A client configured by ``timeout_seconds``, ``retry`` and ``rate_limit`` of ``settings``; ``scope``
        binds an Airflow connection's credentials to that connection's host."""
        sleep = sleep or _default_sleep
        return cls(
            connector_id,
            session,
            timeout=float(settings.get("timeout_seconds") or 30.0),
            retry=RetryPolicy.from_settings(settings.get("retry")),
            rate_limiter=RateLimiter.from_settings(settings.get("rate_limit"), sleep),
            sleep=sleep,
            scope=scope,
        )

    def error(self, message: str) -> MuxlyConnectorError:
        """A connector error naming this connector."""
        return MuxlyConnectorError(f"connector {self.connector_id!r}: {message}")

    def close(self) -> None:
        """Close the session's connections."""
        self.session.close()

    def request(
        self, method: str, url: str, *, stream_ndjson: bool = False, **kwargs: Any
    ) -> requests.Response:
        """Send one request with retries; return a successful response.

        The body is read inside the retry loop (a connection dropped mid-body is retried), except for an
        NDJSON answer when ``stream_ndjson`` is true: that body is left to :func:`iter_ndjson`.

        :raises MuxlyConnectorError: after the last attempt, or at once for a status that is not retried
        """
        if self.scope is not None:
            self.scope.check(url, self.connector_id)
        where = f"{method} {safe_url(url)}"
        refreshed = False

        def attempt() -> requests.Response | Failure:
            nonlocal refreshed
            while True:  # a 401 answered by a refreshed credential is sent again within the same attempt
                if self._pause:
                    self.sleep(self._pause)
                    self._pause = 0.0
                self.rate_limiter.acquire()
                try:
                    response = self.session.request(method, url, timeout=self.timeout, stream=True, **kwargs)
                    status = response.status_code
                    self._pause = self.rate_limiter.observe(response)
                    if status < 400:
                        if not (stream_ndjson and is_ndjson(response)):
                            _ = response.content  # read the whole body now, inside the retry loop
                        return response
                    detail = _error_detail(response)
                    if detail:
                        log.warning(
                            "connector %r: %s answered HTTP %d%s", self.connector_id, where, status, detail
                        )
                    response.close()
                    if status == 401 and not refreshed and isinstance(self.session.auth, RefreshableAuth):
                        self.session.auth.refresh()
                        refreshed = True
                        continue
                    return Failure.from_status(
                        status, f"{where} answered {status_text(status)}", response.headers
                    )
                except requests.Timeout:
                    return Failure("timeout", f"{where} timed out after {self.timeout:g}s")
                except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
                    return Failure("connection_error", f"{where} failed: {connection_reason(exc)}")
                except BlockedAddressError as exc:
                    raise self.error(f"{where} refused: {exc.reason} ({exc.remedy})") from None
                except requests.RequestException as exc:
                    raise self.error(f"{where} failed: {type(exc).__name__}") from None

        try:
            return call_with_retries(attempt, self.retry, sleep=self.sleep)
        except RetryGaveUp as gave_up:
            problem = gave_up.failure.problem
            if gave_up.reason == "exhausted":
                problem = f"{problem} (gave up after {gave_up.attempts} attempts)"
            elif gave_up.reason == "retry_after":
                wait = gave_up.failure.retry_after or 0.0
                problem = (
                    f"{problem}; Retry-After {wait:.0f}s exceeds {self.retry.max_retry_after_seconds:.0f}s"
                )
            raise self.error(problem) from None

    def json(self, method: str, url: str, **kwargs: Any) -> Any:
        """Send a request and decode its JSON answer.

        :raises MuxlyConnectorError: when the answer is not JSON
        """
        response = self.request(method, url, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise self.error(f"the answer of {method} {safe_url(url)} is not JSON") from None


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
    except ValueError:
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


def is_ndjson(response: requests.Response) -> bool:
    """Whether ``response`` is newline-delimited JSON (``application/x-ndjson``, ``jsonl``, ``json-lines``)."""
    content_type = response.headers.get("Content-Type", "").lower()
    return any(kind in content_type for kind in ("ndjson", "jsonl", "json-lines", "jsonlines"))


def iter_ndjson(response: requests.Response, client: HttpClient, url: str) -> Iterator[Any]:
    """Decode an NDJSON body line by line, without holding it in memory.

    A body cut short after records were yielded is an error, not a retry: retrying would repeat records.
    """
    import json

    try:
        for number, line in enumerate(response.iter_lines(), start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except ValueError:
                raise client.error(
                    f"line {number} of the NDJSON answer of {safe_url(url)} is not JSON"
                ) from None
    except (requests.ConnectionError, requests.exceptions.ChunkedEncodingError) as exc:
        raise client.error(
            f"the NDJSON answer of {safe_url(url)} was cut short: {type(exc).__name__}"
        ) from None
    finally:
        response.close()
