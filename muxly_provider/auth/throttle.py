"""Failed-login throttling per (user name, client), counted in the table ``login_failures``.

After ``login_max_failures`` failures of one user name from one client within ``login_failure_window_seconds``
(counted from the first of them), logins of that user name from that client answer ``429`` until the window
is over. A successful login clears the pair's count.

* **Nobody can be locked out by others.** The key is the pair, never the user name or the address alone:
  failures from one client do not throttle the same user elsewhere, and a flood of random user names from one
  address does not throttle other users behind that address (a NAT, an office proxy).
* **The client** is the peer address of the connection; ``X-Forwarded-For`` is believed only when the peer is
  one of ``[muxly] trusted_proxies`` (see :func:`client_address`).
* **Shared by every api-server worker**: the counts live in Muxly's database, one row per pair, so running
  several workers or api-servers does not multiply the allowed guesses.
* **Bounded**: the row key is a SHA-256 of the pair (a password typed into the user-name field is never
  stored), and every recorded failure deletes the rows whose window is over, so the table holds at most the
  pairs that failed within one window.
"""

from __future__ import annotations

import hashlib
import ipaddress
import math
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import Engine, case, delete, insert, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from muxly_provider.auth.sessions import utcnow
from muxly_provider.auth.settings import IPNetwork
from muxly_provider.db.models import LoginFailure, metadata

MAX_CLIENT_LENGTH = 100
"""A client that is not an IP address (a unix socket, junk in a trusted header) is cut to this length."""

_TABLE = metadata.tables["login_failures"]


def _ip(value: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """``value`` as an IP address, accepting ``1.2.3.4:port`` and ``[v6]:port``; ``None`` when it is not one."""
    value = value.strip()
    if value.startswith("[") and "]" in value:
        value = value[1 : value.index("]")]
    elif value.count(":") == 1:
        value = value.partition(":")[0]
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


def _trusted(value: str, proxies: Sequence[IPNetwork]) -> bool:
    address = _ip(value)
    return address is not None and any(address in network for network in proxies)


def _normal(value: str) -> str:
    address = _ip(value)
    return str(address) if address is not None else value.strip()[:MAX_CLIENT_LENGTH]


def client_address(peer: str | None, forwarded_for: str | None, proxies: Sequence[IPNetwork]) -> str:
    """The address of the client behind a request.

    The peer address unless the peer is a trusted proxy; then the right-most ``X-Forwarded-For`` entry that is
    not a trusted proxy (each proxy appends the address it saw, so entries left of the last untrusted one may
    be forged by the client).

    :param peer: the connection's peer address (``request.client.host``)
    :param forwarded_for: the ``X-Forwarded-For`` header, if any
    :param proxies: ``[muxly] trusted_proxies``
    """
    if not peer:
        return "unknown"
    if not forwarded_for or not _trusted(peer, proxies):
        return _normal(peer)
    hops = [hop.strip() for hop in forwarded_for.split(",") if hop.strip()]
    for hop in reversed(hops):
        if not _trusted(hop, proxies):
            return _normal(hop)
    return _normal(hops[0]) if hops else _normal(peer)


def throttle_key(username: str, client: str) -> str:
    """The row key of a (user name, client) pair: a SHA-256, so that typed user names are not stored."""
    return hashlib.sha256(f"{username.strip().lower()}\n{client}".encode()).hexdigest()


@dataclass(frozen=True)
class ThrottleState:
    """The throttle's answer for a login attempt."""

    allowed: bool
    limit: int
    remaining: int
    retry_after: int


class LoginThrottle:
    """Counts failed logins per key in ``login_failures`` (fixed window from the first failure).

    :param max_failures: failures allowed within the window
    :param window_seconds: the window's length, also how long a throttled pair waits at most
    :param engine: Muxly's engine (default: :func:`muxly_provider.db.engine.get_engine` at each call)
    :param clock: the time source, naive UTC (tests)
    """

    def __init__(
        self,
        max_failures: int,
        window_seconds: int,
        engine: Engine | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.max_failures = max_failures
        self.window = timedelta(seconds=window_seconds)
        self._engine = engine
        self._clock = clock

    def _get_engine(self) -> Engine:
        if self._engine is not None:
            return self._engine
        from muxly_provider.db.engine import get_engine

        return get_engine()

    def _state(self, failures: int, window_start: datetime | None, now: datetime) -> ThrottleState:
        if window_start is None or window_start <= now - self.window:
            return ThrottleState(True, self.max_failures, self.max_failures, 0)
        remaining = max(self.max_failures - failures, 0)
        retry_after = 0
        if remaining == 0:
            retry_after = max(math.ceil((window_start + self.window - now).total_seconds()), 1)
        return ThrottleState(remaining > 0, self.max_failures, remaining, retry_after)

    def check(self, key: str) -> ThrottleState:
        """Whether a login for ``key`` may be tried now."""
        with self._get_engine().connect() as conn:
            row = conn.execute(
                select(_TABLE.c.failures, _TABLE.c.window_start).where(_TABLE.c.throttle_key == key)
            ).first()
        now = self._clock()
        return self._state(int(row[0]), row[1], now) if row is not None else self._state(0, None, now)

    def failed(self, key: str) -> ThrottleState:
        """Record a failed login for ``key`` (in its own transaction) and return the state after it."""
        engine = self._get_engine()
        now = self._clock()
        cutoff = now - self.window
        with engine.begin() as conn:
            conn.execute(delete(_TABLE).where(_TABLE.c.window_start <= cutoff))
        expired = _TABLE.c.window_start <= cutoff
        for attempt in range(3):
            try:
                with engine.begin() as conn:
                    # Ordered: MySQL applies SET clauses left to right; failures must see the old window_start.
                    changed = conn.execute(
                        update(_TABLE)
                        .where(_TABLE.c.throttle_key == key)
                        .ordered_values(
                            (_TABLE.c.failures, case((expired, 1), else_=_TABLE.c.failures + 1)),
                            (_TABLE.c.window_start, case((expired, now), else_=_TABLE.c.window_start)),
                        )
                    )
                    if not changed.rowcount:
                        conn.execute(insert(_TABLE).values(throttle_key=key, failures=1, window_start=now))
                break
            except IntegrityError:  # another worker inserted the same pair first: count on its row
                if attempt == 2:
                    raise
        return self.check(key)

    def succeeded(self, key: str, session: Session) -> None:
        """Forget the failures of ``key`` within the login's own transaction (committed with the session)."""
        session.execute(delete(LoginFailure).where(LoginFailure.throttle_key == key))


_throttle: LoginThrottle | None = None
_throttle_lock = threading.Lock()


def get_throttle() -> LoginThrottle:
    """The process-wide throttle, built from the settings on first use (its counts live in the database)."""
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
