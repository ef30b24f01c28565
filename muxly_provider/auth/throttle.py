"""Failed-login throttling: too many failures for a username or a client address make logins wait.

A sliding window per key (``user:<name>`` and ``ip:<address>``): after ``login_max_failures`` failures within
``login_failure_window_seconds``, logins for that key answer ``429`` until the oldest failure leaves the
window. A successful login clears the username's failures.

The state is kept in the api-server process (each worker keeps its own): it slows down password guessing
without a write per attempt. Argon2's cost bounds the guesses a worker can check anyway.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

MAX_KEYS = 100_000
"""Keys kept at most (the oldest are dropped), so that a flood of usernames cannot exhaust memory."""


@dataclass(frozen=True)
class ThrottleState:
    """The throttle's answer for a login attempt."""

    allowed: bool
    limit: int
    remaining: int
    retry_after: int


class LoginThrottle:
    """Counts failed logins per key in a sliding window.

    :param max_failures: failures allowed within the window
    :param window_seconds: the window's length
    :param clock: the time source (tests)
    """

    def __init__(
        self, max_failures: int, window_seconds: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.max_failures = max_failures
        self.window_seconds = window_seconds
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        failures = self._failures.get(key)
        if failures is None:
            return deque()
        while failures and failures[0] <= now - self.window_seconds:
            failures.popleft()
        if not failures:
            del self._failures[key]
        return failures

    def check(self, *keys: str) -> ThrottleState:
        """Whether a login for ``keys`` may be tried now."""
        now = self._clock()
        with self._lock:
            worst = max((len(self._recent(k, now)) for k in keys), default=0)
            oldest = [self._failures[k][0] for k in keys if self._failures.get(k)]
        remaining = max(self.max_failures - worst, 0)
        retry_after = 0
        if remaining == 0 and oldest:
            retry_after = max(int(min(oldest) + self.window_seconds - now) + 1, 1)
        return ThrottleState(remaining > 0, self.max_failures, remaining, retry_after)

    def failed(self, *keys: str) -> None:
        """Record a failed login for ``keys``."""
        now = self._clock()
        with self._lock:
            for key in keys:
                self._recent(key, now)
                self._failures.setdefault(key, deque()).append(now)
            while len(self._failures) > MAX_KEYS:
                self._failures.pop(next(iter(self._failures)))

    def succeeded(self, key: str) -> None:
        """Forget the failures of ``key`` (a successful login)."""
        with self._lock:
            self._failures.pop(key, None)

    def reset(self) -> None:
        """Forget everything (tests)."""
        with self._lock:
            self._failures.clear()


_throttle: LoginThrottle | None = None
_throttle_lock = threading.Lock()


def get_throttle() -> LoginThrottle:
    """The process-wide throttle, built from the settings on first use."""
    global _throttle
    with _throttle_lock:
        if _throttle is None:
            from muxly_provider.auth import settings

            _throttle = LoginThrottle(settings.login_max_failures(), settings.login_failure_window_seconds())
        return _throttle


def reset_throttle() -> None:
    """Drop the process-wide throttle so that it is rebuilt from the settings (tests)."""
    global _throttle
    with _throttle_lock:
        _throttle = None
