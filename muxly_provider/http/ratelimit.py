"""The client-side rate limit of a connector: ``connection_settings.rate_limit``.

Kept small and hand-written on purpose. pyrate-limiter (the maintained library, already installed with
schemathesis) was measured on this machine against it: 11-18 us per acquisition below the limit against
0.15-0.6 us here (``benchmarks/README.md``, "HTTP layer"), it sleeps with ``time.sleep`` inside the library (no
injectable wait or clock, so tests of the waits would really wait), and it cannot follow a server's
``X-RateLimit-Reset``. A sliding-window log of at most ``max_requests`` send times is all a single run needs.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import requests


@dataclass
class RateLimiter:
    """At most ``max_requests`` per sliding window of ``period_seconds``; ``auto_adjust`` follows headers.

    :param max_requests: requests allowed per window (``None``: no client-side limit)
    :param period_seconds: the window
    :param auto_adjust: pause until ``X-RateLimit-Reset`` when the server says none remain
    :param clock: monotonic seconds (tests pass a fake clock)
    :param sleep: how to wait (tests record the waits)
    """

    max_requests: int | None = None
    period_seconds: float = 1.0
    auto_adjust: bool = False
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
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
