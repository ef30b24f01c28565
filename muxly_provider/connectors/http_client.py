"""The HTTP client of the ``api``, ``bigquery``, ``ga4`` and ``hubspot`` connectors: Muxly's one HTTP layer
(:mod:`muxly_provider.http`) configured by ``connection_settings`` and speaking in connector errors.

:class:`ConnectorHttpClient` is an :class:`~muxly_provider.http.client.HttpClient` built from
``timeout_seconds``, ``retry`` and ``rate_limit``, one per run. Its errors are
:class:`~muxly_provider.exceptions.MuxlyConnectorError` naming the connector, the method, the URL without its
query string (which may carry an API key) and a short reason (``HTTP 401 Unauthorized``, ``connection refused``,
``timed out``), never a credential and never the remote server's words: neither its body nor its reason phrase
(a test request from the api-server must not read other servers back).

A bounded total wait keeps a 429 storm from hanging a run: a ``Retry-After`` above
:data:`MAX_RETRY_AFTER_SECONDS` is an error instead of a sleep.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Mapping
from typing import Any

import requests

from muxly_provider.exceptions import MuxlyConnectorError
from muxly_provider.http import retry as _retry
from muxly_provider.http.client import HttpClient
from muxly_provider.http.client import (
    is_ndjson as is_ndjson,
)  # re-exported: the api connector reads them here
from muxly_provider.http.client import safe_url as safe_url
from muxly_provider.http.ratelimit import RateLimiter
from muxly_provider.http.retry import HttpRetryPolicy, RetryGaveUp
from muxly_provider.security.network import BlockedAddressError
from muxly_provider.security.scope import CredentialScope

MAX_RETRY_AFTER_SECONDS: float = HttpRetryPolicy.max_retry_after_seconds
"""The longest ``Retry-After`` / rate-limit reset Muxly waits for; a longer one fails the run clearly."""


class ConnectorHttpClient(HttpClient):
    """An :class:`HttpClient` for one connector and one run; every error names the connector.

    :param connector_id: named in every error
    :param session: the session (auth, default headers and params already set)
    :param timeout: seconds per request (connect and read)
    :param retry: the retry policy
    :param rate_limiter: the client-side rate limit
    :param sleep: how to wait (tests pass a recorder)
    :param scope: where an Airflow connection's credentials may be sent
    """

    def __init__(
        self,
        connector_id: str,
        session: requests.Session | None = None,
        *,
        timeout: float = 30.0,
        retry: HttpRetryPolicy | None = None,
        rate_limiter: RateLimiter | None = None,
        sleep: Callable[[float], None] | None = None,
        scope: CredentialScope | None = None,
    ) -> None:
        super().__init__(
            session,
            timeout=timeout,
            retry=retry,
            rate_limiter=rate_limiter,
            sleep=sleep,
            describe=f"connector {connector_id!r}",
        )
        self.connector_id = connector_id
        self.scope = scope

    @classmethod
    def from_settings(
        cls,
        connector_id: str,
        settings: Mapping[str, Any],
        session: requests.Session | None = None,
        sleep: Callable[[float], None] | None = None,
        scope: CredentialScope | None = None,
    ) -> ConnectorHttpClient:
        """A client configured by ``timeout_seconds``, ``retry`` and ``rate_limit`` of ``settings``; ``scope``
        binds an Airflow connection's credentials to that connection's host."""
        sleep = sleep or _retry.default_sleep
        return cls(
            connector_id,
            session,
            timeout=float(settings.get("timeout_seconds") or 30.0),
            retry=HttpRetryPolicy.from_settings(settings.get("retry")),
            rate_limiter=RateLimiter.from_settings(settings.get("rate_limit"), sleep),
            sleep=sleep,
            scope=scope,
        )

    def error(self, message: str) -> MuxlyConnectorError:
        """A connector error naming this connector."""
        return MuxlyConnectorError(f"connector {self.connector_id!r}: {message}")

    def request(
        self, method: str, url: str, *, stream_ndjson: bool = False, **kwargs: Any
    ) -> requests.Response:
        """Send one request with retries; return a successful response (see :meth:`HttpClient.send`).

        :raises MuxlyConnectorError: after the last attempt, or at once for a status that is not retried
        """
        if self.scope is not None:
            self.scope.check(url, self.connector_id)
        try:
            return self.send(method, url, stream_ndjson=stream_ndjson, **kwargs)
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
        except BlockedAddressError as exc:
            raise self.error(f"{method} {safe_url(url)} refused: {exc.reason} ({exc.remedy})") from None
        except requests.RequestException as exc:
            raise self.error(f"{method} {safe_url(url)} failed: {type(exc).__name__}") from None

    def json(self, method: str, url: str, **kwargs: Any) -> Any:
        """Send a request and decode its JSON answer.

        :raises MuxlyConnectorError: when the answer is not JSON
        """
        response = self.request(method, url, **kwargs)
        try:
            return response.json()
        except ValueError:
            raise self.error(f"the answer of {method} {safe_url(url)} is not JSON") from None


def iter_ndjson(response: requests.Response, client: ConnectorHttpClient, url: str) -> Iterator[Any]:
    """Decode an NDJSON body line by line, without holding it in memory.

    A body cut short after records were yielded is an error, not a retry: retrying would repeat records.
    """
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
