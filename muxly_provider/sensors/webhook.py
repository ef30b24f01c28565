"""``MuxlyWebhookSensor``: a deferrable sensor released by a signed webhook delivery.

The sensor first claims a matching delivery that is already waiting (then it returns at once, without
deferring); otherwise it defers to :class:`~muxly_provider.triggers.webhook.MuxlyWebhookTrigger` (the triggerer
waits; no worker slot is held). The trigger claims the first delivery of ``endpoint_path`` received since the
sensor started minus its lookback window that matches ``condition`` (Muxly's condition language, on the JSON
body). Each delivery is consumed once per (endpoint, condition): two sensors waiting with the same endpoint and
condition never both get one delivery; with different conditions both may.

The body becomes the task's return value (XCom ``return_value``, bounded by ``[muxly]
webhook_max_body_bytes``); the XCom ``webhook_event`` holds the event id, endpoint, receive time and the run
the delivery started, if any. On timeout the task fails (``AirflowSensorTimeout``, no retry) or, with
``on_timeout="skip"``, is skipped.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import timedelta
from typing import Any, Literal

from airflow.sdk import BaseSensorOperator

from muxly_provider.triggers.webhook import DEFAULT_POLL_INTERVAL, MuxlyWebhookTrigger

DEFAULT_TIMEOUT_SECONDS = 3600
DEFER_GRACE_SECONDS = 60
"""Airflow's own deferral timeout, a backstop behind the trigger's deadline (e.g. no triggerer running)."""
EVENT_XCOM_KEY = "webhook_event"
WAIT_TASK_ID = "wait_for_webhook"
"""The task id of the sensor a job's ``action_params.wait_for_webhook`` adds before ``extract``."""


def _templated(value: str | None) -> bool:
    return value is not None and ("{{" in value or "{%" in value)


def check_webhook_wait(endpoint_path: str, condition: str | None) -> str | None:
    """What is wrong with an endpoint path and condition, or ``None`` when both are valid."""
    from muxly_provider.config.webhooks import ENDPOINT_PATH_PATTERN
    from muxly_provider.exceptions import MuxlyConditionError
    from muxly_provider.routing.conditions import compile_condition

    if not endpoint_path or len(endpoint_path) > 200 or not re.match(ENDPOINT_PATH_PATTERN, endpoint_path):
        return (
            f"endpoint_path {endpoint_path!r} is not a webhook path such as 'orders/created' (letters, digits, "
            "'.', '_', '~', '-' and '/', no leading slash, at most 200 characters)"
        )
    try:
        compile_condition(condition)
    except MuxlyConditionError as exc:
        return f"condition {condition!r} is not valid: {exc}"
    return None


class MuxlyWebhookSensor(BaseSensorOperator):
    """Wait, deferred in the triggerer, for a signed delivery to ``/muxly/webhooks/<endpoint_path>``.

    :param endpoint_path: the webhook trigger's ``endpoint_path`` (templated)
    :param condition: an expression of Muxly's condition language on the body (templated); ``None`` takes any
        delivery. A body that is not a JSON object is seen as ``{}``.
    :param timeout: how long to wait, seconds or a ``timedelta`` (default one hour)
    :param poke_interval: seconds between two polls of the trigger (default 0.25)
    :param lookback_seconds: deliveries received this long before the sensor started still count (default
        ``[muxly] webhook_sensor_lookback_seconds``, 300)
    :param on_timeout: ``fail`` (the task fails, no retry) or ``skip``
    :raises ValueError: at construction, for an invalid path, condition or ``on_timeout`` (unless templated)
    """

    template_fields: Sequence[str] = ("endpoint_path", "condition")
    ui_color = "#d9ecf2"

    def __init__(
        self,
        *,
        endpoint_path: str,
        condition: str | None = None,
        timeout: timedelta | float = DEFAULT_TIMEOUT_SECONDS,
        poke_interval: timedelta | float = DEFAULT_POLL_INTERVAL,
        lookback_seconds: int | None = None,
        on_timeout: Literal["fail", "skip"] = "fail",
        **kwargs: Any,
    ) -> None:
        if on_timeout not in ("fail", "skip"):
            raise ValueError(f"on_timeout must be 'fail' or 'skip', got {on_timeout!r}")
        if lookback_seconds is not None and lookback_seconds < 0:
            raise ValueError(f"lookback_seconds must be 0 or more, got {lookback_seconds!r}")
        super().__init__(
            timeout=timeout, poke_interval=poke_interval, soft_fail=on_timeout == "skip", **kwargs
        )
        self.endpoint_path = endpoint_path
        self.condition = condition
        self.lookback_seconds = lookback_seconds
        self.on_timeout = on_timeout
        if not _templated(endpoint_path) and not _templated(condition):
            problem = check_webhook_wait(endpoint_path, condition)
            if problem is not None:
                raise ValueError(f"{type(self).__name__} {kwargs.get('task_id')!r}: {problem}")

    def execute(self, context: Any) -> Any:
        """Return a delivery already waiting, else defer to the trigger (the window starts now minus the lookback)."""
        from airflow.sdk.exceptions import AirflowFailException

        from muxly_provider.webhook_events import lookback_seconds, utcnow

        problem = check_webhook_wait(self.endpoint_path, self.condition)
        if problem is not None:
            raise AirflowFailException(f"{type(self).__name__} {self.task_id!r}: {problem}")
        lookback = self.lookback_seconds if self.lookback_seconds is not None else lookback_seconds()
        start = utcnow()
        ti = context["ti"]
        trigger = MuxlyWebhookTrigger(
            endpoint_path=self.endpoint_path,
            condition=self.condition,
            since=(start - timedelta(seconds=lookback)).isoformat(),
            deadline=(start + timedelta(seconds=self.timeout)).isoformat(),
            poll_interval=self.poke_interval,
            claimed_by=f"{ti.dag_id}/{ti.run_id}/{ti.task_id}/{ti.map_index}",
        )
        claimed = self._claim_now(trigger)
        if claimed is not None:
            return self.execute_complete(context, claimed)
        self.log.info(
            "Waiting up to %ss for a delivery to %s%s (lookback %ss)",
            self.timeout,
            self.endpoint_path,
            f" matching {self.condition}" if self.condition else "",
            lookback,
        )
        self.defer(
            trigger=trigger,
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout + DEFER_GRACE_SECONDS),
        )

    def _claim_now(self, trigger: MuxlyWebhookTrigger) -> dict[str, Any] | None:
        """Claim a delivery already waiting in the window before deferring (the trigger's event, or ``None``).

        A delivery that is already there (inside the lookback, or this task instance's own claim from an
        earlier try) releases the task without a deferral: faster, and out of reach of an Airflow 3.3 race in
        which a trigger that fires before the scheduler has seen the deferring try exit gets the resumed try
        failed ("state mismatch", docs/webhooks.md). A database error here only means: defer and let the
        trigger poll (it rides out passing outages).
        """
        from sqlalchemy.exc import SQLAlchemyError

        from muxly_provider.triggers.webhook import WebhookEventPoller, event_payload, parse_time

        since = parse_time(trigger.since, "since")
        assert since is not None
        try:
            record = WebhookEventPoller(
                trigger.endpoint_path, trigger.condition, since, kind="sensor", claimed_by=trigger.claimed_by
            ).poll_once()
        except SQLAlchemyError as exc:
            self.log.warning("Could not look for a waiting delivery before deferring: %s", exc)
            return None
        return None if record is None else event_payload(record)

    def resume_execution(self, next_method: str, next_kwargs: dict[str, Any] | None, context: Any) -> Any:
        """Resume after the trigger fired; Airflow's own deferral timeout fails or skips as configured.

        The trigger's events go straight to :meth:`execute_complete`, so that a skip keeps its message
        (``BaseSensorOperator`` would replace it with a generic ``soft_fail`` one).
        """
        if next_method == "execute_complete":
            return self.execute_complete(context, **(next_kwargs or {}))
        return super().resume_execution(next_method, next_kwargs, context)

    def execute_complete(self, context: Any, event: dict[str, Any] | None = None) -> Any:
        """Return the delivered body, or fail/skip on the trigger's timeout."""
        from airflow.sdk.exceptions import AirflowSensorTimeout, AirflowSkipException

        if not event or event.get("status") != "delivered":
            message = (
                f"no delivery to {self.endpoint_path!r}"
                + (f" matching {self.condition!r}" if self.condition else "")
                + f" within {self.timeout:g} s"
            )
            if self.on_timeout == "skip":
                raise AirflowSkipException(message)
            raise AirflowSensorTimeout(message)
        self.log.info(
            "Released by webhook delivery %s to %s (received %s)",
            event.get("event_id"),
            event.get("endpoint_path"),
            event.get("received_at"),
        )
        context["ti"].xcom_push(
            key=EVENT_XCOM_KEY,
            value={k: event.get(k) for k in ("event_id", "endpoint_path", "received_at", "run_id")},
        )
        return event.get("body")
