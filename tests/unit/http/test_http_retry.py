"""The retry policy of the HTTP layer (tenacity under it): decisions, waits and Retry-After caps."""

from __future__ import annotations

import email.utils
from datetime import UTC, datetime, timedelta

import pytest

from muxly_provider.http.retry import (
    Failure,
    HttpRetryPolicy,
    RetryGaveUp,
    call_with_retries,
    retry_after_seconds,
)


def _run(policy: HttpRetryPolicy, outcomes: list[Failure | str]) -> tuple[str | RetryGaveUp, list[float]]:
    waits: list[float] = []
    pending = list(outcomes)
    try:
        return call_with_retries(lambda: pending.pop(0), policy, sleep=waits.append), waits
    except RetryGaveUp as gave_up:
        return gave_up, waits


def test_retry_after_is_honoured_then_backoff() -> None:
    policy = HttpRetryPolicy(max_attempts=4, initial_backoff_ms=100)
    outcomes: list[Failure | str] = [
        Failure.from_status(429, "busy", {"Retry-After": "7"}),
        Failure.from_status(502, "bad gateway", {"Retry-After": "9"}),  # not a Retry-After status
        Failure("timeout", "slow"),
        "ok",
    ]
    assert _run(policy, outcomes) == ("ok", [7.0, 0.2, 0.4])


def test_a_long_retry_after_fails_or_is_capped_per_policy() -> None:
    busy = Failure.from_status(503, "busy", {"Retry-After": "3600"})
    gave_up, waits = _run(HttpRetryPolicy(max_attempts=3), [busy, "ok"])
    assert isinstance(gave_up, RetryGaveUp) and gave_up.reason == "retry_after" and waits == []
    capped = HttpRetryPolicy(max_attempts=3, max_retry_after_seconds=60, cap_retry_after=True)
    assert _run(capped, [busy, "ok"]) == ("ok", [60.0])


@pytest.mark.parametrize(
    ("failure", "reason", "attempts"),
    [
        (Failure.from_status(404, "missing"), "final", 1),
        (Failure.from_status(501, "not implemented"), "final", 1),  # not in the connector default statuses
        (Failure.from_status(429, "busy"), "exhausted", 3),
    ],
)
def test_gives_up(failure: Failure, reason: str, attempts: int) -> None:
    gave_up, _ = _run(HttpRetryPolicy(max_attempts=3), [failure] * 3)
    assert isinstance(gave_up, RetryGaveUp)
    assert (gave_up.reason, gave_up.attempts, gave_up.failure) == (reason, attempts, failure)


def test_retry_after_http_date() -> None:
    now = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)
    later = email.utils.format_datetime(now + timedelta(seconds=90), usegmt=True)
    assert retry_after_seconds({"Retry-After": later}, now=now) == 90.0
    assert retry_after_seconds({"Retry-After": later}, now=now + timedelta(hours=1)) == 0.0
    assert retry_after_seconds({"Retry-After": "-3"}) == 0.0
    assert retry_after_seconds({"Retry-After": "soon"}) is None
    assert retry_after_seconds({}) is None
