"""HTTP delivery shared by the ``webhook`` and ``slack`` destinations: requests through Muxly's retry layer.

A request is tried ``1 + retry_count`` times (:mod:`muxly_provider.http_retry`, the layer the api connector
uses too). Connection errors, timeouts, ``429`` and ``5xx`` answers are retried; the wait is the answer's
``Retry-After`` on ``429`` and ``503`` (seconds or an HTTP date, at most :data:`MAX_RETRY_AFTER_SECONDS`: a
longer one is cut down to it), else ``backoff * 2**n`` seconds (at most :data:`MAX_BACKOFF_SECONDS`). Any other
``4xx`` answer is final: sending the same request again would fail the same way. Errors name the destination
and never quote the URL (a Slack or webhook URL is often the credential) or the headers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import requests

from muxly_provider import http_retry
from muxly_provider.destinations.base import MuxlyDeliveryError

MAX_BACKOFF_SECONDS = 30.0
"""The longest backoff between two tries."""

MAX_RETRY_AFTER_SECONDS = 60.0
"""The longest ``Retry-After`` a destination waits; a server asking for more gets its request after this."""

RETRYABLE_STATUS = frozenset({429, *range(500, 600)})


def send(
    session: requests.Session,
    method: str,
    url: str,
    *,
    fail: Callable[..., MuxlyDeliveryError],
    headers: Mapping[str, str] | None = None,
    body: bytes | None = None,
    params: Mapping[str, Any] | None = None,
    timeout: float = 30.0,
    retry_count: int = 0,
    backoff_seconds: float = 1.0,
    sleep: Callable[[float], None] | None = None,
    label: str = "HTTP destination",
) -> requests.Response:
    """Send one request, retrying connection errors, timeouts, ``429`` and ``5xx`` answers.

    :param session: the session (connection reuse across batches)
    :param method: the HTTP method
    :param url: the URL (never quoted in errors)
    :param fail: the destination's error factory (:meth:`MuxlyDestination.fail`)
    :param headers: request headers
    :param body: the request body
    :param params: query parameters
    :param timeout: seconds to wait for a connection and for the answer
    :param retry_count: tries after the first one
    :param backoff_seconds: the first delay; it doubles after each try
    :param sleep: how to wait between tries (default :func:`time.sleep`; tests record the waits)
    :param label: who sends, for the log line of each retry
    :raises MuxlyDeliveryError: after the last try, or at once for another ``4xx`` answer (``retryable=False``)
    """
    from muxly_provider.security.network import BlockedAddressError, guard_session

    guard_session(session)  # no link-local or metadata address, redirects included (docs/security.md)
    policy = http_retry.RetryPolicy(
        max_attempts=1 + max(0, retry_count),
        initial_backoff_ms=backoff_seconds * 1000,
        max_backoff_ms=MAX_BACKOFF_SECONDS * 1000,
        backoff_multiplier=2.0,
        retryable_status=RETRYABLE_STATUS,
        max_retry_after_seconds=MAX_RETRY_AFTER_SECONDS,
        cap_retry_after=True,
    )

    def attempt() -> requests.Response | http_retry.Failure:
        try:
            response = session.request(
                method, url, headers=dict(headers or {}), data=body, params=params, timeout=timeout
            )
        except requests.Timeout:
            return http_retry.Failure("timeout", f"no answer within {timeout:g} s")
        except requests.ConnectionError:
            return http_retry.Failure("connection_error", "connection failed")
        except BlockedAddressError as exc:
            raise fail(f"request refused: {exc.reason} ({exc.remedy})", retryable=False) from None
        except requests.RequestException as exc:
            raise fail(f"request could not be sent ({type(exc).__name__})", retryable=False) from None
        if response.status_code < 400:
            return response
        problem = http_retry.status_text(response.status_code)
        response.close()
        return http_retry.Failure.from_status(response.status_code, problem, response.headers)

    try:
        return http_retry.call_with_retries(
            attempt, policy, sleep=sleep or http_retry.default_sleep, describe=label
        )
    except http_retry.RetryGaveUp as gave_up:
        if gave_up.reason == "final":
            raise fail(f"{gave_up.failure.problem} (not retried)", retryable=False) from None
        raise fail(f"{gave_up.failure.problem} after {gave_up.attempts} tries") from None
