"""HTTP delivery of the ``webhook`` destination: requests through Muxly's one HTTP layer
(:class:`~muxly_provider.http.client.HttpClient`, the client of the api connector too), in a destination's words.

A request is tried ``1 + retry_count`` times. Connection errors, timeouts, ``429`` and ``5xx`` answers are
retried; the wait is the answer's ``Retry-After`` on ``429`` and ``503`` (seconds or an HTTP date, at most
:data:`MAX_RETRY_AFTER_SECONDS`: a longer one is cut down to it), else ``backoff * 2**n`` seconds (at most
:data:`MAX_BACKOFF_SECONDS`). Any other ``4xx`` answer is final: sending the same request again would fail the
same way. Errors name the destination and never quote the URL (a Slack or webhook URL is often the credential)
or the headers.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import requests

from muxly_provider.destinations.base import MuxlyDeliveryError
from muxly_provider.http.client import HttpClient
from muxly_provider.http.retry import HttpRetryPolicy, RetryGaveUp
from muxly_provider.security.network import BlockedAddressError

MAX_BACKOFF_SECONDS = 30.0
"""The longest backoff between two tries."""

MAX_RETRY_AFTER_SECONDS = 60.0
"""The longest ``Retry-After`` a destination waits; a server asking for more gets its request after this."""

RETRYABLE_STATUS = frozenset({429, *range(500, 600)})


def retry_policy(retry_count: int, backoff_seconds: float) -> HttpRetryPolicy:
    """The retries of a destination's requests: ``retry_count`` after the first, ``Retry-After`` capped."""
    return HttpRetryPolicy(
        max_attempts=1 + max(0, retry_count),
        initial_backoff_ms=backoff_seconds * 1000,
        max_backoff_ms=MAX_BACKOFF_SECONDS * 1000,
        backoff_multiplier=2.0,
        retryable_status=RETRYABLE_STATUS,
        max_retry_after_seconds=MAX_RETRY_AFTER_SECONDS,
        cap_retry_after=True,
    )


def send(
    session: requests.Session | HttpClient,
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

    :param session: the destination's :class:`HttpClient` (connection reuse across batches), or a plain session
        (wrapped in a client for this request)
    :param method: the HTTP method
    :param url: the URL (never quoted in errors)
    :param fail: the destination's error factory (:meth:`MuxlyDestination.fail`)
    :param headers: request headers
    :param body: the request body
    :param params: query parameters
    :param timeout: seconds to wait for a connection and for the answer (a plain session only)
    :param retry_count: tries after the first one (a plain session only)
    :param backoff_seconds: the first delay; it doubles after each try (a plain session only)
    :param sleep: how to wait between tries (a plain session only; default :func:`time.sleep`)
    :param label: who sends, for the log line of each retry (a plain session only)
    :raises MuxlyDeliveryError: after the last try, or at once for another ``4xx`` answer (``retryable=False``)
    """
    client = (
        session
        if isinstance(session, HttpClient)
        else HttpClient(
            session,
            timeout=timeout,
            retry=retry_policy(retry_count, backoff_seconds),
            sleep=sleep,
            describe=label,
            name_url=False,
        )
    )
    try:
        return client.send(method, url, headers=dict(headers or {}), data=body, params=params)
    except RetryGaveUp as gave_up:
        if gave_up.reason == "final":
            raise fail(f"{gave_up.failure.problem} (not retried)", retryable=False) from None
        raise fail(f"{gave_up.failure.problem} after {gave_up.attempts} tries") from None
    except BlockedAddressError as exc:
        raise fail(f"request refused: {exc.reason} ({exc.remedy})", retryable=False) from None
    except requests.RequestException as exc:
        raise fail(f"request could not be sent ({type(exc).__name__})", retryable=False) from None
