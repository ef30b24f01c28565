"""The ``slack`` destination: messages to a Slack incoming webhook (or anything speaking its protocol).

Options (REFERENCE.md): ``webhook_url`` (the credential: stored encrypted) or (new) ``conn_id`` (an Airflow
connection whose password holds the webhook URL, or the path after ``host``), ``channel``, ``username``,
``icon`` (an emoji such as ``:chart:`` or an image URL), ``message_template``, ``include_data``, ``color``,
``template_variables``.

One message per batch: ``{"text": <message_template rendered>, "channel", "username", "icon_emoji" or
"icon_url"}``; with ``include_data`` each record is an attachment (``color``, one short field per record
field), at most :data:`MAX_ATTACHMENTS` per message (a larger batch is sent as several messages). The answer must
be ``2xx``; ``429``, ``5xx`` and connection errors are retried (``retry_count``, default 3) after the answer's
``Retry-After`` (at most 60 s) or with backoff (:mod:`muxly_provider.destinations.http`); other answers are
final.
Slack messages are not idempotent: an Airflow retry of the run posts its messages again.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import requests
from muxly_provider.config.destinations import SlackDestinationConfig
from muxly_provider.destinations import http
from muxly_provider.destinations.base import MuxlyDeliveryError, MuxlyDestination, Record
from muxly_provider.destinations.templates import (
    TemplateRenderError,
    check_template,
    render,
    template_context,
)
from muxly_provider.http import retry as http_retry

MAX_ATTACHMENTS = 50
"""Attachments per message (Slack shows at most 100)."""


def _field_value(value: Any) -> str:
    return json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)


class SlackDestination(MuxlyDestination):
    """Post batches to a Slack incoming webhook."""

    destination_type = "slack"
    idempotent = False
    retries_itself = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = self.parse_config(SlackDestinationConfig)
        try:
            check_template(self.settings.message_template)
        except TemplateRenderError as exc:
            raise self.fail(str(exc), retryable=False) from None
        self._session = requests.Session()
        self._url: str | None = None
        self.messages = 0
        self.sleep: Callable[[float], None] = http_retry.default_sleep
        """How the retries wait (tests record the waits instead)."""

    @property
    def retry_count(self) -> int:
        """Tries after the first one of each request (``retry_count``, default 3)."""
        return self.settings.retry_count

    def _webhook_url(self) -> str:
        if self._url is None:
            if self.settings.webhook_url:
                self._url = self.settings.webhook_url
            else:
                from airflow.sdk import BaseHook

                conn_id = str(self.settings.conn_id)
                try:
                    conn = BaseHook.get_connection(conn_id)
                except Exception as exc:
                    raise self.fail(
                        f"Airflow connection {conn_id!r} not found ({type(exc).__name__})"
                    ) from None
                secret = conn.password or ""
                if secret.startswith(("http://", "https://")):
                    self._url = secret
                else:
                    host = conn.host or "https://hooks.slack.com/services"
                    host = host if "://" in host else f"https://{host}"
                    self._url = f"{host.rstrip('/')}/{secret.lstrip('/')}"
                self._secrets = sorted({*self._secrets, self._url, secret} - {""}, key=len, reverse=True)
        return self._url

    def _payload(self, records: list[Record], context: dict[str, Any]) -> dict[str, Any]:
        s = self.settings
        try:
            text = render(s.message_template, context)
        except TemplateRenderError as exc:
            raise self.fail(str(exc), retryable=False) from None
        payload: dict[str, Any] = {"text": text}
        if s.channel:
            payload["channel"] = s.channel
        if s.username:
            payload["username"] = s.username
        if s.icon:
            payload["icon_url" if s.icon.startswith(("http://", "https://")) else "icon_emoji"] = s.icon
        if s.include_data:
            payload["attachments"] = [
                {
                    "fallback": _field_value(record)[:300],
                    **({"color": s.color} if s.color else {}),
                    "fields": [
                        {"title": str(key), "value": _field_value(value), "short": True}
                        for key, value in record.items()
                    ],
                }
                for record in records
            ]
        return payload

    def write_batch(self, records: list[Record]) -> None:
        """Post the batch (several messages when it has more records than :data:`MAX_ATTACHMENTS`)."""
        chunk = MAX_ATTACHMENTS if self.settings.include_data else max(1, len(records))
        url = self._webhook_url()
        sent = 0
        for start in range(0, len(records), chunk):
            part = records[start : start + chunk]
            context = template_context(
                self.run,
                destination_id=self.context.id,
                destination_name=self.context.name,
                records=part,
                batch=self.batch_index,
                variables=self.settings.template_variables,
            )
            body = json.dumps(self._payload(part, context), default=str).encode()
            try:
                http.send(
                    self._session,
                    "POST",
                    url,
                    fail=self.fail,
                    headers={"Content-Type": "application/json"},
                    body=body,
                    retry_count=self.retry_count,
                    backoff_seconds=self.retry_backoff_seconds,
                    sleep=self.sleep,
                    label=f"destination {self.context.id!r} ({self.destination_type})",
                )
            except MuxlyDeliveryError as exc:
                exc.delivered = sent
                raise
            sent += len(part)
            self.messages += 1
        self.batch_index += 1
        self.delivered += len(records)

    def commit(self) -> list[str]:
        """Messages were posted by :meth:`write_batch`."""
        self._session.close()
        return [f"{self.messages} message(s)"]

    def abort(self) -> None:
        """Close the connections."""
        self._session.close()
