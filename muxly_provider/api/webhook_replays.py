"""Seen webhook deliveries: each signed delivery is accepted once per trigger within the replay window.

The replay key of a delivery is a digest of the bytes its signature covers, never of an unsigned header:

* Muxly signature: ``muxly:`` + SHA-256 of ``timestamp + "." + body`` (what the HMAC signs);
* GitHub signature: ``github:`` + SHA-256 of the body (``X-GitHub-Delivery`` is not signed, so changing it
  must not make a copy look new).

Keys live in ``webhook_deliveries`` (primary key ``(trigger_id, replay_key)``), so every api-server worker
sees them. A key is claimed before the run is created and released again when the run could not be created
(a paused or broken DAG), so that the sender's retry is not taken for a replay. Rows older than
``[muxly] webhook_replay_window_seconds`` (default 24 hours, at least 600 s: a Muxly timestamp is accepted
300 s either side of now) no longer count and are pruned; after the window the same signed bytes are accepted
again (a Muxly-signed copy is refused anyway by then: its timestamp is stale).
"""

from __future__ import annotations

import hashlib
import threading
import time
from datetime import UTC, datetime, timedelta

from sqlalchemy import Connection, Engine, delete, insert
from sqlalchemy.exc import IntegrityError

from muxly_provider.db.models import metadata

DEFAULT_WINDOW_SECONDS = 24 * 3600
MIN_WINDOW_SECONDS = 600
"""Twice the timestamp tolerance of Muxly signatures: a key must outlive every moment its timestamp is valid."""
PRUNE_INTERVAL_SECONDS = 60.0
"""Expired rows are deleted at most this often per process (not at every delivery: 50 at once is normal)."""

_TABLE = metadata.tables["webhook_deliveries"]
_prune_lock = threading.Lock()
_last_prune: float | None = None


def window_seconds() -> int:
    """How long a delivery's replay key is remembered (``[muxly] webhook_replay_window_seconds``)."""
    from muxly_provider.settings import conf_get

    raw = conf_get("muxly", "webhook_replay_window_seconds", str(DEFAULT_WINDOW_SECONDS))
    try:
        value = int(str(raw).strip())
    except ValueError:
        value = DEFAULT_WINDOW_SECONDS
    return max(value, MIN_WINDOW_SECONDS)


def muxly_replay_key(timestamp: str, body: bytes) -> str:
    """The replay key of a Muxly-signed delivery: a digest of what the signature covers."""
    return "muxly:" + hashlib.sha256(timestamp.encode() + b"." + body).hexdigest()


def github_replay_key(body: bytes) -> str:
    """The replay key of a GitHub-signed delivery: a digest of the signed body."""
    return "github:" + hashlib.sha256(body).hexdigest()


def _now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def claim(engine: Engine, trigger_id: str, replay_key: str) -> bool:
    """Record a delivery; ``False`` when the same key was already accepted within the window (a replay).

    :param engine: Muxly's engine
    :param trigger_id: the webhook trigger's id
    :param replay_key: :func:`muxly_replay_key` or :func:`github_replay_key`
    """
    try:
        with engine.begin() as conn:
            claim_in(conn, trigger_id, replay_key)
    except IntegrityError:
        return False
    _maybe_prune(engine, _now() - timedelta(seconds=window_seconds()))
    return True


def claim_in(conn: Connection, trigger_id: str, replay_key: str) -> None:
    """Record a delivery inside the caller's transaction (with what else it stores, e.g. the event).

    :raises IntegrityError: when the same key was already accepted within the window (a replay); the caller's
        transaction is then unusable and must be rolled back
    """
    now = _now()
    cutoff = now - timedelta(seconds=window_seconds())
    same = (_TABLE.c.trigger_id == trigger_id) & (_TABLE.c.replay_key == replay_key)
    conn.execute(delete(_TABLE).where(same, _TABLE.c.received_at <= cutoff))  # an expired sighting
    conn.execute(insert(_TABLE).values(trigger_id=trigger_id, replay_key=replay_key, received_at=now))


def release(engine: Engine, trigger_id: str, replay_key: str) -> None:
    """Forget a claimed delivery whose run could not be created (its retry must not count as a replay)."""
    with engine.begin() as conn:
        conn.execute(
            delete(_TABLE).where(_TABLE.c.trigger_id == trigger_id, _TABLE.c.replay_key == replay_key)
        )


def _maybe_prune(engine: Engine, cutoff: datetime) -> None:
    global _last_prune
    with _prune_lock:
        if _last_prune is not None and time.monotonic() - _last_prune < PRUNE_INTERVAL_SECONDS:
            return
        _last_prune = time.monotonic()
    prune(engine, cutoff)


def prune(engine: Engine, cutoff: datetime | None = None) -> int:
    """Delete the keys received before ``cutoff`` (default: the window before now); return how many."""
    if cutoff is None:
        cutoff = _now() - timedelta(seconds=window_seconds())
    with engine.begin() as conn:
        result = conn.execute(delete(_TABLE).where(_TABLE.c.received_at <= cutoff))
    return int(result.rowcount or 0)


def reset_prune_clock() -> None:
    """Make the next claim prune at once (tests)."""
    global _last_prune
    with _prune_lock:
        _last_prune = None
