"""The ``slack`` destination: messages to a Slack incoming webhook (or anything speaking its protocol) through
the Slack provider's ``SlackWebhookHook``.

Options (REFERENCE.md): ``webhook_url`` (the credential: stored encrypted) or (new) ``conn_id`` (an Airflow
``slackwebhook`` connection as the Slack provider reads it: the password holds the webhook URL, or the token
path after ``host``; extras ``timeout`` and ``proxy``), ``channel``, ``username``, ``icon`` (an emoji such as
``:chart:`` or an image URL), ``message_template``, ``include_data``, ``color``, ``template_variables``.
With a ``conn_id`` nothing else is needed. Both ways end in one ``SlackWebhookHook``
(``airflow-provider-muxly[slack]``): an inline ``webhook_url`` becomes an in-memory connection
(:mod:`muxly_provider.hooks.providers`).

One message per batch: ``{"text": <message_template rendered>, "channel", "username", "icon_emoji" or
"icon_url"}``; with ``include_data`` each record is an attachment (``color``, one short field per record
field), at most :data:`MAX_ATTACHMENTS` per message (a larger batch is sent as several messages). The answer must
be ``2xx``. ``429``, ``5xx`` and connection errors are retried (``retry_count``, default 3) by the Slack SDK's
retry machinery with Muxly's policy (:class:`SlackRetryPolicy`): after the answer's ``Retry-After`` on ``429``
and ``503`` (at most 60 s), else with backoff; other answers are final.

The webhook's host is checked like every server-side request of Muxly (no link-local or cloud metadata
address, ``docs/security.md``) before the first message; the Slack SDK then connects through ``urllib``, which
resolves the name again and follows a redirect of a ``POST`` as a ``GET`` without the message.
Slack messages are not idempotent: an Airflow retry of the run posts its messages again.
"""

from __future__ import annotations

import json
import logging
import socket
import time
from collections.abc import Callable
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

from muxly_provider.config.destinations import SlackDestinationConfig
from muxly_provider.destinations.base import MuxlyDeliveryError, MuxlyDestination, Record
from muxly_provider.destinations.templates import (
    TemplateRenderError,
    check_template,
    render,
    template_context,
)
from muxly_provider.hooks import providers as provider_hooks

MAX_ATTACHMENTS = 50
"""Attachments per message (Slack shows at most 100)."""

MAX_BACKOFF_SECONDS = 30.0
"""The longest backoff between two tries."""

MAX_RETRY_AFTER_SECONDS = 60.0
"""The longest ``Retry-After`` the destination waits; a server asking for more gets its message after this."""


def _field_value(value: Any) -> str:
    return json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)


def _status_text(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def retry_after_seconds(values: list[str] | str | None) -> float | None:
    """A ``Retry-After`` header (seconds or an HTTP date) in seconds from now, ``None`` when absent or invalid."""
    value = (values[0] if values else None) if isinstance(values, list) else values
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        from datetime import UTC, datetime

        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def _sdk_logger() -> logging.Logger:
    """The Slack SDK's logger: warnings only (its info and debug lines quote the webhook URL)."""
    logger = logging.getLogger(f"{__name__}.slack_sdk")
    logger.setLevel(logging.WARNING)
    return logger


def _retry_policy(retry_count: int, backoff_seconds: float, sleep: Callable[[float], None]) -> Any:
    """A :class:`SlackRetryPolicy` (the Slack SDK is imported only when a slack destination runs)."""
    from slack_sdk.http_retry.handler import RetryHandler
    from slack_sdk.http_retry.request import HttpRequest
    from slack_sdk.http_retry.response import HttpResponse
    from slack_sdk.http_retry.state import RetryState

    class SlackRetryPolicy(RetryHandler):
        """Muxly's retries as a handler of the Slack SDK's retry loop: ``429``, ``5xx`` and connection errors
        are tried again up to ``retry_count`` times, after ``Retry-After`` (``429``/``503``, at most
        :data:`MAX_RETRY_AFTER_SECONDS`) or ``backoff * 2**n`` seconds (at most :data:`MAX_BACKOFF_SECONDS`)."""

        def __init__(self) -> None:
            super().__init__(max_retry_count=retry_count)
            self.tries = 1

        def _can_retry(
            self,
            *,
            state: RetryState,
            request: HttpRequest,
            response: HttpResponse | None = None,
            error: Exception | None = None,
        ) -> bool:
            if response is not None:
                return response.status_code == 429 or response.status_code >= 500
            return isinstance(error, OSError)  # urllib's URLError, timeouts, refused connections

        def prepare_for_next_attempt(
            self,
            *,
            state: RetryState,
            request: HttpRequest,
            response: HttpResponse | None = None,
            error: Exception | None = None,
        ) -> None:
            wait = None
            if response is not None and response.status_code in (429, 503):
                headers = {k.lower(): v for k, v in response.headers.items()}
                wait = retry_after_seconds(headers.get("retry-after"))
                wait = None if wait is None else min(wait, MAX_RETRY_AFTER_SECONDS)
            if wait is None:
                wait = min(backoff_seconds * 2**state.current_attempt, MAX_BACKOFF_SECONDS)
            state.next_attempt_requested = True
            sleep(wait)
            state.increment_current_attempt()
            self.tries += 1

    return SlackRetryPolicy()


class SlackDestination(MuxlyDestination):
    """Post batches to a Slack incoming webhook."""

    destination_type = "slack"
    idempotent = False
    retries_itself = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = self.parse_config(SlackDestinationConfig)
        try:
            check_template(self.settings.message_template, field="config.message_template")
        except TemplateRenderError as exc:
            raise self.fail(str(exc), retryable=False) from None
        self._client: Any = None  # the Slack SDK's WebhookClient, once built
        self._policy: Any = None
        self.messages = 0
        self.sleep: Callable[[float], None] = time.sleep
        """How the retries wait (tests record the waits instead)."""

    @property
    def retry_count(self) -> int:
        """Tries after the first one of each request (``retry_count``, default 3)."""
        return self.settings.retry_count

    def _connection(self) -> Any:
        """The ``slackwebhook`` connection the hook works on: ``conn_id``'s, or one holding ``webhook_url``."""
        if self.settings.webhook_url:
            return provider_hooks.make_connection(
                f"muxly_slack_{self.context.id}", "slackwebhook", password=self.settings.webhook_url
            )
        try:
            return provider_hooks.get_connection(str(self.settings.conn_id))
        except provider_hooks.MuxlyConnectionError as exc:
            raise self.fail(str(exc), retryable=not exc.permanent) from None

    def _webhook(self) -> Any:
        """The Slack SDK's webhook client of the provider's hook (built, and its host checked, once)."""
        if self._client is None:
            try:
                module = provider_hooks.import_module("slack", "Slack delivery")
            except provider_hooks.MuxlyProviderMissingError as exc:
                raise self.fail(str(exc), retryable=False) from None
            connection = self._connection()
            self._policy = _retry_policy(
                self.retry_count, self.retry_backoff_seconds, lambda seconds: self.sleep(seconds)
            )
            hook = provider_hooks.on_connection(
                module.SlackWebhookHook,
                connection,
                slack_webhook_conn_id=connection.conn_id,
                retry_handlers=[self._policy],
                logger=_sdk_logger(),
            )
            try:
                client = hook.get_conn()
            except Exception as exc:  # no password (webhook token) in the connection, a bad proxy, ...
                raise self.fail(
                    f"Airflow connection {connection.conn_id!r} gives no Slack webhook ({type(exc).__name__})",
                    retryable=False,
                ) from None
            url = str(client.url)
            parts = urlsplit(url)
            self._secrets = sorted(
                {*self._secrets, url, parts.path, str(connection.password or "")} - {""},
                key=len,
                reverse=True,
            )
            self._check_host(url, proxied=bool(getattr(client, "proxy", None)))
            self._client = client
        return self._client

    @property
    def webhook_url(self) -> str:
        """The webhook's URL (a secret), after the check of its host."""
        return str(self._webhook().url)

    def _check_host(self, url: str, *, proxied: bool) -> None:
        """Refuse a webhook on a link-local or cloud metadata address (``docs/security.md``)."""
        from muxly_provider.security.network import BlockedAddressError, check_url, resolve_allowed

        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise self.fail("the webhook URL is not an http(s) URL", retryable=False)
        try:
            check_url(url)
            if not proxied:
                resolve_allowed(parts.hostname, parts.port or (443 if parts.scheme == "https" else 80))
        except BlockedAddressError as exc:
            raise self.fail(f"request refused: {exc.reason} ({exc.remedy})", retryable=False) from None
        except (socket.gaierror, UnicodeError):
            raise self.fail("the webhook's host name does not resolve") from None

    def _payload(self, records: list[Record], context: dict[str, Any]) -> dict[str, Any]:
        s = self.settings
        try:
            text = render(s.message_template, context, field="config.message_template")
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
        client = self._webhook()
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
            payload = json.loads(json.dumps(self._payload(part, context), default=str))
            try:
                self._post(client, payload)
            except MuxlyDeliveryError as exc:
                exc.delivered = sent
                raise
            sent += len(part)
            self.messages += 1
        self.batch_index += 1
        self.delivered += len(records)

    def _post(self, client: Any, payload: dict[str, Any]) -> None:
        """One message through the Slack SDK (which retries with :class:`SlackRetryPolicy`)."""
        self._policy.tries = 1
        try:
            response = client.send_dict(payload)
        except OSError as exc:
            raise self.fail(
                f"connection failed ({type(exc).__name__}) after {self._policy.tries} tries"
            ) from None
        except Exception as exc:
            raise self.fail(f"request could not be sent ({type(exc).__name__})", retryable=False) from None
        status = int(response.status_code)
        if 200 <= status < 300:
            return
        problem = _status_text(status)
        if status == 429 or status >= 500:
            raise self.fail(f"{problem} after {self._policy.tries} tries")
        raise self.fail(f"{problem} (not retried)", retryable=False)

    def commit(self) -> list[str]:
        """Messages were posted by :meth:`write_batch`."""
        return [f"{self.messages} message(s)"]
