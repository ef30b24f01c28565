"""HTTP delivery shared by the ``webhook`` and ``slack`` destinations: requests with retries and backoff.

A request is tried ``1 + retry_count`` times. Connection errors, timeouts and ``5xx`` answers are retried
after ``backoff * 2**n`` seconds (capped at 30 s); any other ``4xx`` answer is final: sending the same request
again would fail the same way. Errors name the destination and never quote the URL (a Slack or webhook URL is
often the credential) or the headers.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import requests

from muxly_provider.destinations.base import MuxlyDeliveryError

log = logging.getLogger(__name__)

MAX_BACKOFF_SECONDS = 30.0


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
) -> requests.Response:
    """Send one request, retrying connection errors and ``5xx`` answers.

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
    :raises MuxlyDeliveryError: after the last try, or at once for a ``4xx`` answer (``retryable=False``)
    """
    attempts = 1 + max(0, retry_count)
    problem = ""
    for attempt in range(1, attempts + 1):
        try:
            response = session.request(
                method, url, headers=dict(headers or {}), data=body, params=params, timeout=timeout
            )
        except requests.Timeout:
            problem = f"no answer within {timeout:g} s"
        except requests.ConnectionError:
            problem = "connection failed"
        except requests.RequestException as exc:
            raise fail(f"request could not be sent ({type(exc).__name__})", retryable=False) from None
        else:
            if response.status_code < 400:
                return response
            reason = response.reason or ""
            if response.status_code < 500:
                raise fail(f"HTTP {response.status_code} {reason} (not retried)".strip(), retryable=False)
            problem = f"HTTP {response.status_code} {reason}".strip()
        if attempt < attempts:
            delay = min(MAX_BACKOFF_SECONDS, backoff_seconds * 2 ** (attempt - 1))
            log.warning("Muxly: %s; try %d of %d again in %.1f s", problem, attempt + 1, attempts, delay)
            time.sleep(delay)
    raise fail(f"{problem} after {attempts} tries")
