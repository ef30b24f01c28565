"""Triggers that wait for webhook deliveries stored in ``webhook_events`` (see :mod:`muxly_provider.webhook_events`).

* :class:`MuxlyWebhookTrigger`: the trigger of a deferred :class:`~muxly_provider.sensors.MuxlyWebhookSensor`.
  It fires once, with the first delivery of its endpoint received since its window start that matches its
  condition and that it could claim, or with ``status: timeout`` at its deadline.
* :class:`MuxlyWebhookEventTrigger`: a ``BaseEventTrigger`` for ``AssetWatcher``: it runs for as long as its
  asset is watched and fires once per matching delivery (Airflow puts the event's payload in the asset event's
  ``extra["payload"]``).

Both poll Muxly's database with :class:`WebhookEventPoller` every ``poll_interval`` seconds. The queries are
synchronous SQLAlchemy on Muxly's own engine, run in a thread (``asyncio.to_thread``) so that the triggerer's
event loop never blocks; Airflow's own ORM is not used (it is blocked in the triggerer).

An event's payload (``TriggerEvent.payload``)::

    {"status": "delivered", "event_id": "...", "endpoint_path": "orders/created",
     "received_at": "2026-12-02T16:40:00.123456+00:00", "run_id": null, "body": {...the JSON body...}}
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

from airflow.triggers.base import BaseEventTrigger, BaseTrigger, TriggerEvent

from muxly_provider.webhook_events import WebhookEventRecord


def _event(payload: dict[str, Any]) -> TriggerEvent:
    return TriggerEvent(payload)  # type: ignore[no-untyped-call]  # Airflow's TriggerEvent is untyped


DEFAULT_POLL_INTERVAL = 0.25
"""Seconds between two polls of ``webhook_events`` (per waiting trigger: one indexed query of about 1 ms).

Not 1 s: Airflow's triggerer hands a finished trigger's event on once per 1 s loop, and a trigger polling every
1 s stays in phase with that loop, claiming just after it and so always waiting a full second more
(``benchmarks/README.md``, issue 13: median delivery-to-success 2.2-2.7 s at 1 s, 1.9 s at 0.25 s)."""
RESCAN_SECONDS = 600
"""A running poller reads again only the deliveries of the last ten minutes (see ``_slide_window``)."""

MAX_POLL_FAILURES = 20
"""Consecutive failed polls (Muxly's database unreachable, a lock timeout) a trigger rides out before it fails."""

log = logging.getLogger(__name__)


def event_payload(record: WebhookEventRecord) -> dict[str, Any]:
    """The ``TriggerEvent`` payload of a claimed delivery (JSON only; see the module docstring)."""
    return {
        "status": "delivered",
        "event_id": record.id,
        "endpoint_path": record.endpoint_path,
        "received_at": record.received_at.replace(tzinfo=UTC).isoformat(),
        "run_id": record.run_id,
        "body": record.payload,
    }


def parse_time(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{name} must be an ISO 8601 timestamp, got {value!r}") from None
    return parsed.astimezone(UTC).replace(tzinfo=None) if parsed.tzinfo else parsed


class WebhookEventPoller:
    """Finds and claims the deliveries of one endpoint for one consumer (shared by both triggers).

    :param endpoint_path: the webhook trigger's ``endpoint_path``
    :param condition: an expression of Muxly's condition language on the body, or ``None`` for any delivery
    :param since: deliveries received before this moment (naive UTC) are not considered
    :param kind: the consumer family (``sensor`` or ``event``); part of the consumer key
    :param claimed_by: who claims, written next to each claim
    :raises MuxlyConditionError: when ``condition`` does not parse (with the position of the error)
    """

    def __init__(
        self,
        endpoint_path: str,
        condition: str | None,
        since: datetime,
        *,
        kind: str,
        claimed_by: str | None = None,
    ) -> None:
        from muxly_provider.routing.conditions import compile_condition
        from muxly_provider.webhook_events import consumer_key

        self.endpoint_path = endpoint_path
        self.since = since
        self.key = consumer_key(endpoint_path, condition, kind)
        self.matches = compile_condition(condition)
        self.claimed_by = claimed_by
        self._rejected: set[str] = set()
        self._window_moved_at: datetime | None = None
        self._held_checked = claimed_by is None

    def _slide_window(self, now: datetime) -> None:
        """Stop re-reading old deliveries: every :data:`RESCAN_SECONDS` the window start moves up to
        :data:`RESCAN_SECONDS` before now, measured from this poller's own first poll (a poller created after
        a triggerer restart starts again from ``since``, so nothing that arrived meanwhile is skipped)."""
        if self._window_moved_at is None:
            self._window_moved_at = now
            return
        if (now - self._window_moved_at).total_seconds() < RESCAN_SECONDS:
            return
        self._window_moved_at = now
        floor = now - timedelta(seconds=RESCAN_SECONDS)
        if floor > self.since:  # every matching delivery older than that was claimed when first seen
            self.since = floor
            self._rejected.clear()

    def poll_once(self) -> WebhookEventRecord | None:
        """Claim the oldest matching unclaimed delivery now (synchronous: call it in a thread).

        The first poll of a poller with ``claimed_by`` first returns the delivery that consumer already
        claimed in the window, if any (:func:`~muxly_provider.webhook_events.held_claim`).
        """
        from muxly_provider.db.engine import get_engine
        from muxly_provider.webhook_events import claim_first_match, held_claim, utcnow

        if not self._held_checked and self.claimed_by is not None:
            # Once per poller: a task instance running again gets back the delivery it already claimed.
            held = held_claim(
                get_engine(),
                endpoint_path=self.endpoint_path,
                since=self.since,
                key=self.key,
                claimed_by=self.claimed_by,
            )
            self._held_checked = True
            if held is not None:
                return held
        self._slide_window(utcnow())
        return claim_first_match(
            get_engine(),
            endpoint_path=self.endpoint_path,
            since=self.since,
            key=self.key,
            matches=lambda body: bool(self.matches(body)),
            claimed_by=self.claimed_by,
            rejected=self._rejected,
        )

    async def next_delivery(
        self, poll_interval: float, deadline: datetime | None = None
    ) -> WebhookEventRecord | None:
        """Wait for the next claimed delivery; ``None`` once ``deadline`` (naive UTC) has passed."""
        from sqlalchemy.exc import SQLAlchemyError

        from muxly_provider.webhook_events import utcnow

        failures = 0
        while True:
            try:
                record = await asyncio.to_thread(self.poll_once)
            except SQLAlchemyError as exc:
                # A passing database problem must not fail the waiting task: try again at the next poll, and
                # give up only after MAX_POLL_FAILURES in a row (the error then fails the task with its cause).
                failures += 1
                if failures >= MAX_POLL_FAILURES:
                    raise
                log.warning(
                    "Muxly: polling deliveries of %s failed (%s/%s): %s",
                    self.endpoint_path,
                    failures,
                    MAX_POLL_FAILURES,
                    str(exc).splitlines()[0] if str(exc) else type(exc).__name__,
                )
                record = None
            else:
                failures = 0
            if record is not None:
                return record
            now = utcnow()
            if deadline is not None and now >= deadline:
                return None
            pause = poll_interval
            if deadline is not None:
                pause = min(pause, (deadline - now).total_seconds())
            await asyncio.sleep(max(pause, 0.0))


class MuxlyWebhookTrigger(BaseTrigger):
    """Fires once with a matching delivery of ``endpoint_path`` (or ``status: timeout`` at ``deadline``).

    :param endpoint_path: the webhook trigger's ``endpoint_path``
    :param condition: Muxly condition on the body; ``None`` takes any delivery
    :param since: ISO timestamp: the window start (the sensor's start minus its lookback)
    :param deadline: ISO timestamp after which the trigger fires ``{"status": "timeout"}``; ``None``: never
    :param poll_interval: seconds between polls
    :param claimed_by: who claims (the sensor's ``dag_id/run_id/task_id/map_index``)
    """

    def __init__(
        self,
        *,
        endpoint_path: str,
        condition: str | None = None,
        since: str,
        deadline: str | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
        claimed_by: str | None = None,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow's BaseTrigger is untyped
        self.endpoint_path = endpoint_path
        self.condition = condition
        self.since = since
        self.deadline = deadline
        self.poll_interval = float(poll_interval)
        self.claimed_by = claimed_by

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and keyword arguments (plain JSON) to rebuild this trigger in the triggerer."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "endpoint_path": self.endpoint_path,
                "condition": self.condition,
                "since": self.since,
                "deadline": self.deadline,
                "poll_interval": self.poll_interval,
                "claimed_by": self.claimed_by,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Poll until a delivery is claimed or the deadline passes; yield one event."""
        since = parse_time(self.since, "since")
        assert since is not None
        poller = WebhookEventPoller(
            self.endpoint_path, self.condition, since, kind="sensor", claimed_by=self.claimed_by
        )
        record = await poller.next_delivery(self.poll_interval, parse_time(self.deadline, "deadline"))
        if record is None:
            yield _event(
                {"status": "timeout", "endpoint_path": self.endpoint_path, "deadline": self.deadline}
            )
            return
        self.log.info("Webhook delivery %s of %s claimed", record.id, self.endpoint_path)
        yield _event(event_payload(record))


class MuxlyWebhookEventTrigger(BaseEventTrigger):
    """For ``AssetWatcher``: fires once per matching delivery of ``endpoint_path``, for as long as it runs.

    Each delivery fires once (claimed with a consumer key of the endpoint and condition), also across triggerer
    restarts; at start the trigger also takes the unclaimed deliveries of the last ``lookback_seconds`` (those
    that arrived while no triggerer ran it). Its keyword arguments hold no time, so Airflow's hash of the
    trigger (which identifies an asset watcher's trigger) stays the same between DAG parses.

    :param endpoint_path: the webhook trigger's ``endpoint_path``
    :param condition: Muxly condition on the body; ``None`` fires on every delivery
    :param lookback_seconds: how far back to look at start; ``None``: ``[muxly] webhook_sensor_lookback_seconds``
    :param poll_interval: seconds between polls
    """

    def __init__(
        self,
        *,
        endpoint_path: str,
        condition: str | None = None,
        lookback_seconds: int | None = None,
        poll_interval: float = DEFAULT_POLL_INTERVAL,
    ) -> None:
        super().__init__()  # type: ignore[no-untyped-call]  # Airflow's BaseTrigger is untyped
        self.endpoint_path = endpoint_path
        self.condition = condition
        self.lookback_seconds = lookback_seconds
        self.poll_interval = float(poll_interval)

    def serialize(self) -> tuple[str, dict[str, Any]]:
        """Class path and keyword arguments (plain JSON, no time: the hash must be stable)."""
        return (
            f"{type(self).__module__}.{type(self).__qualname__}",
            {
                "endpoint_path": self.endpoint_path,
                "condition": self.condition,
                "lookback_seconds": self.lookback_seconds,
                "poll_interval": self.poll_interval,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        """Yield one event per claimed delivery, forever."""
        from muxly_provider.webhook_events import lookback_seconds, utcnow

        lookback = self.lookback_seconds if self.lookback_seconds is not None else lookback_seconds()
        since = utcnow() - timedelta(seconds=max(int(lookback), 0))
        poller = WebhookEventPoller(self.endpoint_path, self.condition, since, kind="event")
        while True:
            record = await poller.next_delivery(self.poll_interval)
            assert record is not None  # no deadline
            self.log.info("Webhook delivery %s of %s fires an asset event", record.id, self.endpoint_path)
            yield _event(event_payload(record))
