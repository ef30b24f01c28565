"""Retries of Muxly's HTTP requests: which failures are retried, how long to wait, when to give up.

The retry loop, the stop conditions and the exponential backoff are tenacity's (as in the HTTP provider's
``HttpHook.run_with_advanced_retry``); this module only says what Muxly's settings mean to it:

- a failed attempt is a :class:`Failure` of kind ``rate_limit`` (HTTP 429), ``server_error`` (5xx), ``client``
  (any other 4xx: final, the same request would fail the same way), ``timeout`` or ``connection_error``; a status
  is retried when the policy's ``retryable_status`` holds it;
- the wait before the next attempt is the server's ``Retry-After`` (delta seconds or an HTTP date) on 429 and
  503 (:data:`RETRY_AFTER_STATUSES`, where RFC 6585 and RFC 9110 define it), else tenacity's
  ``wait_exponential`` (``initial_backoff_ms * backoff_multiplier ** (attempt - 1)``, at most ``max_backoff_ms``);
- a ``Retry-After`` above the policy's ``max_retry_after_seconds`` either stops at once (connectors: a run is
  not left hanging on a long 429 storm) or is cut down to that cap (destinations: ``cap_retry_after``);
- waits go through an injectable ``sleep`` (tests record them instead of sleeping).

Callers turn :class:`RetryGaveUp` into their own error (a connector error, a delivery error), so messages keep
naming the connector or destination and never quote a URL or a credential.
"""

from __future__ import annotations

import email.utils
import http
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, TypeVar

import tenacity

from muxly_provider.exceptions import MuxlyError

log = logging.getLogger(__name__)

RETRY_AFTER_STATUSES = frozenset({429, 503})
"""Statuses whose ``Retry-After`` header sets the wait before the next attempt."""

FailureKind = Literal["rate_limit", "server_error", "client", "timeout", "connection_error"]

_ERROR_KINDS: dict[str, FailureKind] = {
    "RATE_LIMIT": "rate_limit",
    "SERVER_ERROR": "server_error",
    "TIMEOUT": "timeout",
    "CONNECTION_ERROR": "connection_error",
}

_T = TypeVar("_T")


def default_sleep(seconds: float) -> None:
    """Wait ``seconds`` (looked up at each client's creation, so that tests can record waits instead)."""
    time.sleep(seconds)


def status_text(status: int) -> str:
    """``HTTP 401 Unauthorized``: the status with its standard phrase, never the server's own phrase (a remote
    server must not be able to write into Muxly's messages and results)."""
    try:
        return f"HTTP {status} {http.HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def retry_after_seconds(headers: Mapping[str, str] | Any, now: datetime | None = None) -> float | None:
    """The ``Retry-After`` of an answer in seconds (delta seconds or an HTTP date), if any.

    :param headers: the answer's headers, or the answer itself (anything with ``headers``)
    :param now: the current time for an HTTP date (default: now)
    """
    if not isinstance(headers, Mapping):
        headers = headers.headers
    value = headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class Failure:
    """One failed attempt.

    :param kind: what failed (see the module docstring)
    :param problem: a short, secret-free description (the caller's wording)
    :param status: the HTTP status, when there was an answer
    :param retry_after: the answer's ``Retry-After`` in seconds (429 and 503 only)
    """

    kind: FailureKind
    problem: str
    status: int | None = None
    retry_after: float | None = None

    @classmethod
    def from_status(cls, status: int, problem: str, headers: Mapping[str, str] | Any = None) -> Failure:
        """Classify an error answer (``status`` >= 400) and read its ``Retry-After``.

        :param status: the HTTP status
        :param problem: how the caller describes it
        :param headers: the answer's headers (for ``Retry-After``)
        """
        kind: FailureKind = "rate_limit" if status == 429 else "server_error" if status >= 500 else "client"
        wait = (
            retry_after_seconds(headers) if headers is not None and status in RETRY_AFTER_STATUSES else None
        )
        return cls(kind, problem, status, wait)


class RetryGaveUp(MuxlyError):
    """No more attempts: the caller raises its own error from this one.

    :param failure: the last failure
    :param attempts: attempts made
    :param reason: ``final`` (not retried), ``exhausted`` (no attempts left) or ``retry_after`` (the server asked
        for a longer wait than the policy allows, and the policy does not cap it)
    """

    def __init__(self, failure: Failure, attempts: int, reason: Literal["final", "exhausted", "retry_after"]):
        super().__init__(failure.problem)
        self.failure = failure
        self.attempts = attempts
        self.reason = reason


@dataclass(frozen=True)
class HttpRetryPolicy:
    """How failed requests are retried (a connector's ``connection_settings.retry``, a destination's options).

    :param max_attempts: attempts in all, the first included
    :param initial_backoff_ms: the wait before the second attempt
    :param max_backoff_ms: the longest backoff between attempts (a ``Retry-After`` may ask for more)
    :param backoff_multiplier: growth of the wait per attempt
    :param retryable_status: HTTP statuses that are retried
    :param retryable_errors: when not empty, only these kinds are retried (``RATE_LIMIT``, ``SERVER_ERROR``,
        ``TIMEOUT``, ``CONNECTION_ERROR``)
    :param max_retry_after_seconds: the longest ``Retry-After`` honoured as asked
    :param cap_retry_after: wait ``max_retry_after_seconds`` when a server asks for more (else give up)
    """

    max_attempts: int = 3
    initial_backoff_ms: float = 500
    max_backoff_ms: float = 30_000
    backoff_multiplier: float = 2.0
    retryable_status: frozenset[int] = frozenset({429, 500, 502, 503, 504})
    retryable_errors: frozenset[str] = frozenset()
    max_retry_after_seconds: float = 300.0
    cap_retry_after: bool = False

    @classmethod
    def from_settings(cls, settings: Mapping[str, Any] | None) -> HttpRetryPolicy:
        """Build the policy from a connector's ``connection_settings.retry`` (defaults when absent)."""
        if not settings:
            return cls()
        default = cls()
        return cls(
            max_attempts=max(1, int(settings.get("max_attempts", default.max_attempts))),
            initial_backoff_ms=int(settings.get("initial_backoff_ms", default.initial_backoff_ms)),
            max_backoff_ms=int(settings.get("max_backoff_ms", default.max_backoff_ms)),
            backoff_multiplier=float(settings.get("backoff_multiplier", default.backoff_multiplier)),
            retryable_status=frozenset(settings.get("retryable_status") or default.retryable_status),
            retryable_errors=frozenset(
                _ERROR_KINDS[e] for e in settings.get("retryable_errors") or () if e in _ERROR_KINDS
            ),
        )

    def retries(self, kind: str, status: int | None = None) -> bool:
        """Whether a failure of ``kind`` (and ``status``) is retried."""
        if kind == "client":
            return False
        if kind in {"rate_limit", "server_error"} and status not in self.retryable_status:
            return False
        return not self.retryable_errors or kind in self.retryable_errors

    def backoff(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based), without a ``Retry-After``."""
        state = tenacity.RetryCallState(tenacity.Retrying(), None, (), {})
        state.attempt_number = attempt
        return float(self.exponential()(state))

    def exponential(self) -> tenacity.wait_exponential:
        """The backoff as tenacity's ``wait_exponential``."""
        return tenacity.wait_exponential(
            multiplier=self.initial_backoff_ms / 1000.0,
            exp_base=self.backoff_multiplier,
            max=self.max_backoff_ms / 1000.0,
        )

    def too_long(self, retry_after: float | None) -> bool:
        """Whether a ``Retry-After`` of ``retry_after`` seconds makes the policy give up instead of waiting."""
        return (
            retry_after is not None
            and retry_after > self.max_retry_after_seconds
            and not self.cap_retry_after
        )

    def retrying(self, sleep: Callable[[float], None], describe: str = "") -> tenacity.Retrying:
        """A tenacity ``Retrying`` for attempts that return a result or a :class:`Failure`.

        :param sleep: how to wait
        :param describe: who retries, for the log line of each retry (``destination 'hook'``); empty: no log
        """
        return tenacity.Retrying(
            sleep=sleep,
            retry=tenacity.retry_if_result(
                lambda outcome: isinstance(outcome, Failure) and self.retries(outcome.kind, outcome.status)
            ),
            stop=tenacity.stop_after_attempt(self.max_attempts) | _StopOnLongRetryAfter(self),
            wait=_RetryAfterOrBackoff(self),
            before_sleep=_log_retry(self, describe) if describe else None,
            retry_error_callback=lambda state: state,
        )


def _last_failure(state: tenacity.RetryCallState) -> Failure | None:
    outcome = state.outcome
    if outcome is None or outcome.failed:
        return None
    result = outcome.result()
    return result if isinstance(result, Failure) else None


class _RetryAfterOrBackoff(tenacity.wait.wait_base):
    """The server's ``Retry-After`` (capped per policy) when it sent one, else the policy's backoff."""

    def __init__(self, policy: HttpRetryPolicy) -> None:
        self.policy = policy
        self.backoff = policy.exponential()

    def __call__(self, retry_state: tenacity.RetryCallState) -> float:
        failure = _last_failure(retry_state)
        if failure is not None and failure.retry_after is not None:
            return min(failure.retry_after, self.policy.max_retry_after_seconds)
        return self.backoff(retry_state)


class _StopOnLongRetryAfter(tenacity.stop.stop_base):
    """Stop when the server asks for a longer wait than the policy allows (and does not cap)."""

    def __init__(self, policy: HttpRetryPolicy) -> None:
        self.policy = policy

    def __call__(self, retry_state: tenacity.RetryCallState) -> bool:
        failure = _last_failure(retry_state)
        return failure is not None and self.policy.too_long(failure.retry_after)


def _log_retry(policy: HttpRetryPolicy, describe: str) -> Callable[[tenacity.RetryCallState], None]:
    def before_sleep(state: tenacity.RetryCallState) -> None:
        failure = _last_failure(state)
        log.warning(
            "Muxly: %s: %s; try %d of %d again in %.1f s",
            describe,
            failure.problem if failure else "failed",
            state.attempt_number + 1,
            policy.max_attempts,
            state.upcoming_sleep,
        )

    return before_sleep


class Retrier:
    """Calls attempts through one tenacity ``Retrying`` built once (a client sends many requests).

    The first attempt is made before tenacity is entered: tenacity costs about 25 us per call (measured here,
    ``benchmarks/README.md``), as much as a twentieth of a request on loopback, and most requests need no retry.

    :param policy: the retry policy
    :param sleep: how to wait
    :param describe: who retries, for the log line of each retry (``destination 'hook'``); empty: no log
    """

    def __init__(
        self, policy: HttpRetryPolicy, *, sleep: Callable[[float], None] = default_sleep, describe: str = ""
    ) -> None:
        self.policy = policy
        self._retrying = policy.retrying(sleep, describe)

    def call(self, attempt: Callable[[], _T | Failure]) -> _T:
        """Call ``attempt`` until it succeeds or the policy gives up.

        :param attempt: sends the request once; returns the result, or a :class:`Failure` to retry (it raises
            for errors that must never be retried: they propagate at once)
        :raises RetryGaveUp: with the last failure, when no attempt is left or the failure is final
        """
        policy = self.policy
        first = attempt()
        if not isinstance(first, Failure):
            return first  # most requests succeed at once: they pay nothing for the retry machinery (~25 us)
        pending = [first]  # tenacity's first attempt is the one just made: waits and counts stay exact
        outcome = self._retrying(lambda: pending.pop() if pending else attempt())
        if isinstance(outcome, tenacity.RetryCallState):  # tenacity stopped: the last attempt failed
            failure = _last_failure(outcome)
            assert failure is not None
            number = outcome.attempt_number
            if number < policy.max_attempts and policy.too_long(failure.retry_after):
                raise RetryGaveUp(failure, number, "retry_after")
            raise RetryGaveUp(failure, number, "exhausted")
        if isinstance(outcome, Failure):  # not retried: the same request would fail the same way
            raise RetryGaveUp(outcome, int(self._retrying.statistics.get("attempt_number", 1)), "final")
        return outcome


def call_with_retries(
    attempt: Callable[[], _T | Failure],
    policy: HttpRetryPolicy,
    *,
    sleep: Callable[[float], None] = default_sleep,
    describe: str = "",
) -> _T:
    """Call ``attempt`` once through a new :class:`Retrier` (see :meth:`Retrier.call`)."""
    return Retrier(policy, sleep=sleep, describe=describe).call(attempt)
