"""Webhook events: every valid delivery, kept in ``webhook_events`` between the api-server and the triggerer.

The webhook endpoint (:mod:`muxly_provider.api.webhooks`) stores each delivery that passed the signature and
replay checks; sensors (:class:`muxly_provider.sensors.MuxlyWebhookSensor`, through
:class:`muxly_provider.triggers.webhook.MuxlyWebhookTrigger`) and event triggers poll the table from the
triggerer. A consumer *claims* a delivery by inserting ``(event_id, consumer_key)`` into
``webhook_event_claims``, whose primary key makes every second claim fail (an ``IntegrityError`` on SQLite and
PostgreSQL alike): a delivery is consumed once per consumer key. A sensor's key is a digest of its endpoint and
its normalized condition, so two sensors waiting on the same endpoint and condition never both get one
delivery, while sensors with different conditions may each get it.

Times are naive UTC (``received_at`` is set by the api-server's clock, the poll window by the triggerer's:
keep the machines' clocks in sync, as Airflow needs anyway). Events older than ``[muxly]
webhook_event_retention_seconds`` (default one day) are deleted, with their claims, at most once a minute per
api-server process when a delivery is stored.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, delete, exists, insert, select
from sqlalchemy.exc import IntegrityError

from muxly_provider.db.models import metadata

DEFAULT_RETENTION_SECONDS = 24 * 3600
MIN_RETENTION_SECONDS = 60
DEFAULT_LOOKBACK_SECONDS = 300
PRUNE_INTERVAL_SECONDS = 60.0
"""Old events are deleted at most this often per process (not at every delivery)."""
PAGE_SIZE = 100
"""Deliveries read per query while looking for a match (ids first, bodies only of unseen ones)."""

EVENTS = metadata.tables["webhook_events"]
CLAIMS = metadata.tables["webhook_event_claims"]

_prune_lock = threading.Lock()
_last_prune: float | None = None


@dataclass(frozen=True)
class WebhookEventRecord:
    """One stored delivery.

    :param id: the event id (also in the webhook answer as ``event_id``)
    :param trigger_id: the ``webhook_triggers`` row that received it
    :param endpoint_path: its endpoint
    :param received_at: when the api-server stored it (naive UTC)
    :param payload: the JSON body (``None`` for an empty body)
    :param run_id: the DAG run the delivery started, if any
    """

    id: str
    trigger_id: str
    endpoint_path: str
    received_at: datetime
    payload: Any
    run_id: str | None


def _int_setting(key: str, default: int, minimum: int) -> int:
    from muxly_provider.settings import conf_get

    raw = conf_get("muxly", key, str(default))
    try:
        value = int(str(raw).strip())
    except ValueError:
        value = default
    return max(value, minimum)


def retention_seconds() -> int:
    """How long deliveries are kept (``[muxly] webhook_event_retention_seconds``, at least 60)."""
    return _int_setting("webhook_event_retention_seconds", DEFAULT_RETENTION_SECONDS, MIN_RETENTION_SECONDS)


def lookback_seconds() -> int:
    """How far before a sensor starts a delivery still counts (``[muxly] webhook_sensor_lookback_seconds``)."""
    return _int_setting("webhook_sensor_lookback_seconds", DEFAULT_LOOKBACK_SECONDS, 0)


def utcnow() -> datetime:
    """Now as naive UTC, the form ``received_at`` is stored in."""
    return datetime.now(UTC).replace(tzinfo=None)


def naive_utc(moment: datetime) -> datetime:
    """``moment`` as naive UTC (an aware datetime is converted; a naive one is taken as UTC)."""
    return moment.astimezone(UTC).replace(tzinfo=None) if moment.tzinfo else moment


def consumer_key(endpoint_path: str, condition: str | None, kind: str = "sensor") -> str:
    """The claim key of consumers that must share deliveries: a digest of ``kind``, endpoint and condition.

    The condition is normalized (parsed and printed back), so ``a==1`` and ``a == 1`` share a key.

    :raises MuxlyConditionError: when ``condition`` does not parse
    """
    from muxly_provider.routing.conditions import parse_condition, unparse

    normalized = unparse(parse_condition(condition)) if condition and condition.strip() else ""
    material = json.dumps([kind, endpoint_path, normalized], separators=(",", ":"))
    return f"{kind}:" + hashlib.sha256(material.encode()).hexdigest()


def insert_event(
    conn: Connection,
    *,
    trigger_id: str,
    endpoint_path: str,
    payload: Any,
    replay_key: str | None = None,
    run_id: str | None = None,
    received_at: datetime | None = None,
) -> str:
    """Store one delivery inside the caller's transaction and return its id.

    :param conn: a connection of Muxly's engine in a transaction
    :param payload: the parsed JSON body (already bounded by ``[muxly] webhook_max_body_bytes``)
    """
    event_id = uuid.uuid4().hex
    text = None if payload is None else json.dumps(payload, separators=(",", ":"), ensure_ascii=False)
    conn.execute(
        insert(EVENTS).values(
            id=event_id,
            trigger_id=trigger_id,
            endpoint_path=endpoint_path,
            received_at=received_at or utcnow(),
            payload=text,
            replay_key=replay_key,
            run_id=run_id,
        )
    )
    return event_id


def record_event(engine: Engine, **values: Any) -> str:
    """Store one delivery in its own transaction (see :func:`insert_event`) and prune old ones now and then."""
    with engine.begin() as conn:
        event_id = insert_event(conn, **values)
    maybe_prune(engine)
    return event_id


def delete_event(engine: Engine, event_id: str) -> None:
    """Forget a stored delivery (its run could not be created, so its sender's retry is the delivery)."""
    with engine.begin() as conn:
        conn.execute(delete(CLAIMS).where(CLAIMS.c.event_id == event_id))
        conn.execute(delete(EVENTS).where(EVENTS.c.id == event_id))


def claim(engine: Engine, event_id: str, key: str, claimed_by: str | None = None) -> bool:
    """Consume ``event_id`` for ``key``; ``False`` when another consumer with the same key already did.

    :param engine: Muxly's engine
    :param event_id: a ``webhook_events`` id
    :param key: :func:`consumer_key`
    :param claimed_by: who consumed it, for people reading the table (``dag_id/run_id/task_id``)
    """
    try:
        with engine.begin() as conn:
            conn.execute(
                insert(CLAIMS).values(
                    event_id=event_id, consumer_key=key, claimed_at=utcnow(), claimed_by=claimed_by
                )
            )
    except IntegrityError:
        return False
    return True


def _unclaimed_ids(conn: Connection, endpoint_path: str, since: datetime, key: str, offset: int) -> list[str]:
    claimed = exists().where(CLAIMS.c.event_id == EVENTS.c.id, CLAIMS.c.consumer_key == key)
    rows = conn.execute(
        select(EVENTS.c.id)
        .where(EVENTS.c.endpoint_path == endpoint_path, EVENTS.c.received_at >= since, ~claimed)
        .order_by(EVENTS.c.received_at, EVENTS.c.id)
        .offset(offset)
        .limit(PAGE_SIZE)
    ).scalars()
    return [str(event_id) for event_id in rows]


def _records(conn: Connection, ids: list[str]) -> list[WebhookEventRecord]:
    rows = conn.execute(
        select(EVENTS).where(EVENTS.c.id.in_(ids)).order_by(EVENTS.c.received_at, EVENTS.c.id)
    ).mappings()
    return [
        WebhookEventRecord(
            id=str(row["id"]),
            trigger_id=str(row["trigger_id"]),
            endpoint_path=str(row["endpoint_path"]),
            received_at=row["received_at"],
            payload=None if row["payload"] is None else json.loads(row["payload"]),
            run_id=row["run_id"],
        )
        for row in rows
    ]


def held_claim(
    engine: Engine, *, endpoint_path: str, since: datetime, key: str, claimed_by: str
) -> WebhookEventRecord | None:
    """The delivery ``claimed_by`` already claimed for ``key`` in the window, if any (the oldest).

    A task instance that runs again (a retry after a resumed try was killed, a cleared task) gets back the
    delivery it consumed instead of waiting for a new one: the re-run is idempotent and no delivery is lost
    to a try that Airflow failed after the trigger had claimed it.
    """
    with engine.connect() as conn:
        event_id = conn.execute(
            select(EVENTS.c.id)
            .join(CLAIMS, CLAIMS.c.event_id == EVENTS.c.id)
            .where(
                EVENTS.c.endpoint_path == endpoint_path,
                EVENTS.c.received_at >= since,
                CLAIMS.c.consumer_key == key,
                CLAIMS.c.claimed_by == claimed_by,
            )
            .order_by(EVENTS.c.received_at, EVENTS.c.id)
            .limit(1)
        ).scalar()
        records = _records(conn, [str(event_id)]) if event_id is not None else []
    return records[0] if records else None


def claim_first_match(
    engine: Engine,
    *,
    endpoint_path: str,
    since: datetime,
    key: str,
    matches: Callable[[Any], bool],
    claimed_by: str | None = None,
    rejected: set[str] | None = None,
) -> WebhookEventRecord | None:
    """Claim the oldest unclaimed delivery of ``endpoint_path`` received at or after ``since`` that matches.

    Synchronous (run it in a thread from a trigger). A delivery another consumer with the same key claimed
    first is skipped; the next match is tried.

    :param since: the start of the window (naive UTC)
    :param key: the consumer key (:func:`consumer_key`)
    :param matches: the compiled condition, called with each object body (``{}`` for any other body)
    :param rejected: ids already seen not to match; updated in place so the next poll reads only new bodies
    """
    seen = rejected if rejected is not None else set()
    offset = 0
    while True:
        with engine.connect() as conn:
            ids = _unclaimed_ids(conn, endpoint_path, since, key, offset)
            fresh = [event_id for event_id in ids if event_id not in seen]
            records = _records(conn, fresh) if fresh else []
        for record in records:
            # A condition reads an object body; any other body (a list, a scalar, none) is seen as {}.
            if not matches(record.payload if isinstance(record.payload, dict) else {}):
                seen.add(record.id)
                continue
            if claim(engine, record.id, key, claimed_by):
                return record
        if len(ids) < PAGE_SIZE:
            return None
        # The page held only rejected or lost deliveries: the unclaimed ones that remain start after them.
        offset += len([event_id for event_id in ids if event_id in seen])


def maybe_prune(engine: Engine) -> None:
    """Run :func:`prune` unless this process did within the last minute."""
    global _last_prune
    with _prune_lock:
        if _last_prune is not None and time.monotonic() - _last_prune < PRUNE_INTERVAL_SECONDS:
            return
        _last_prune = time.monotonic()
    prune(engine)


def prune(engine: Engine, cutoff: datetime | None = None) -> int:
    """Delete deliveries received before ``cutoff`` (default: the retention before now) and their claims."""
    if cutoff is None:
        cutoff = utcnow() - timedelta(seconds=retention_seconds())
    old = select(EVENTS.c.id).where(EVENTS.c.received_at < cutoff).scalar_subquery()
    with engine.begin() as conn:
        conn.execute(delete(CLAIMS).where(CLAIMS.c.event_id.in_(old)))
        result = conn.execute(delete(EVENTS).where(EVENTS.c.received_at < cutoff))
    return int(result.rowcount or 0)


def reset_prune_clock() -> None:
    """Make the next stored delivery prune at once (tests)."""
    global _last_prune
    with _prune_lock:
        _last_prune = None
