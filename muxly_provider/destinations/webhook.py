"""The ``webhook`` destination: records sent to an HTTP endpoint, one request per batch or per record.

Options (SPEC §2, REFERENCE.md): ``url``, ``method`` (GET, POST, PUT, PATCH), ``headers``, ``body_template``,
``timeout_seconds``, ``retry_count``, ``batch_size``; (new) ``send_mode`` (``batch``: one request per batch, the
default; ``record``: one request per record) and ``retry_backoff_seconds``.

The body is JSON. Without ``body_template`` it is the list of the batch's records (``batch`` mode) or the
record (``record`` mode). ``body_template`` is a JSON value (or a string) whose strings are templates
(:mod:`muxly_provider.destinations.templates`); a string that is one placeholder keeps the value's type, so
``{"items": "{{records}}", "n": "{{count}}"}`` sends a list and a number. ``url`` and header values are
templates too. ``GET`` sends no body: the rendered body, when it is an object, becomes the query string.

(new) ``conn_id`` and ``endpoint`` instead of ``url``: an Airflow HTTP connection, read as the HTTP provider's
``HttpHook`` reads it (base URL from schema, host and port; basic auth from login and password; its extras as
headers), and the path below it (a template). The destination then needs nothing else.

Requests go through Muxly's one HTTP layer (:class:`~muxly_provider.http.client.HttpClient`: the server-side
request guard, tenacity retries). Connection errors, timeouts, ``429`` and ``5xx`` answers are retried
``retry_count`` times, after the answer's ``Retry-After`` (at most 60 s) or with exponential backoff; any other
``4xx`` answer is final (see :mod:`muxly_provider.destinations.http`). Webhooks are not idempotent:
the receiver sees a batch again when an Airflow retry runs the job again.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

from muxly_provider.config.destinations import WebhookDestinationConfig
from muxly_provider.destinations import http
from muxly_provider.destinations.base import MuxlyDeliveryError, MuxlyDestination, Record
from muxly_provider.destinations.templates import (
    TemplateRenderError,
    check_template,
    render,
    render_value,
    template_context,
)
from muxly_provider.hooks import providers as provider_hooks
from muxly_provider.http import retry as http_retry
from muxly_provider.http.client import HttpClient

if TYPE_CHECKING:
    import requests


def _check(template: Any) -> None:
    if isinstance(template, str):
        check_template(template)
    elif isinstance(template, Mapping):
        for value in template.values():
            _check(value)
    elif isinstance(template, list):
        for item in template:
            _check(item)


def render_request(
    settings: WebhookDestinationConfig, context: Mapping[str, Any], base_url: str = ""
) -> tuple[str, dict[str, str], Any]:
    """The URL, headers and body of one request, as rendered from ``context`` (a run's or a preview's).

    :param base_url: the base URL of ``settings.conn_id`` (the rendered ``endpoint`` goes below it)
    :raises TemplateRenderError: naming the setting whose template failed
    """
    if settings.conn_id:
        endpoint = render(settings.endpoint, context, field="config.endpoint")
        url = provider_hooks.join_url(base_url, endpoint)
    else:
        url = render(str(settings.url), context, field="config.url")
    headers = {
        name: render(value, context, field=f"config.headers.{name}")
        for name, value in settings.headers.items()
    }
    if settings.body_template is None:
        body: Any = context["record"] if settings.send_mode == "record" else context["records"]
    else:
        body = render_value(settings.body_template, context, field="config.body_template")
    return url, headers, body


class WebhookDestination(MuxlyDestination):
    """Send records to an HTTP endpoint."""

    destination_type = "webhook"
    idempotent = False
    retries_itself = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = self.parse_config(WebhookDestinationConfig)
        self.send_mode = self.settings.send_mode
        try:
            _check(self.settings.url)
            _check(self.settings.endpoint)
            _check(dict(self.settings.headers))
            _check(self.settings.body_template)
        except TemplateRenderError as exc:
            raise self.fail(str(exc), retryable=False) from None
        self._client: HttpClient | None = None
        self._base_url = ""
        self.requests_sent = 0
        self.sleep: Callable[[float], None] = http_retry.default_sleep
        """How the retries wait (tests record the waits instead)."""

    def _request(self, context: dict[str, Any]) -> None:
        settings = self.settings
        try:
            client = self._http()  # a conn_id's base URL is known once its session is made
            url, headers, body = render_request(settings, context, self._base_url)
        except TemplateRenderError as exc:
            raise self.fail(str(exc), retryable=False) from None
        params = None
        data: bytes | None = None
        if settings.method == "GET":
            params = body if isinstance(body, Mapping) else None
        else:
            data = (body if isinstance(body, str) else json.dumps(body, default=str)).encode()
            headers.setdefault("Content-Type", "application/json")
        http.send(client, settings.method, url, fail=self.fail, headers=headers, body=data, params=params)
        self.requests_sent += 1

    def _http(self) -> HttpClient:
        """The destination's client, made at the first request (one session: connections are reused)."""
        if self._client is None:
            self._client = HttpClient(
                self._connection_session(),
                timeout=self.settings.timeout_seconds,
                retry=http.retry_policy(self.settings.retry_count, self.retry_backoff_seconds),
                sleep=self.sleep,
                describe=f"destination {self.context.id!r} ({self.destination_type})",
                name_url=False,
            )
        return self._client

    def _connection_session(self) -> requests.Session | None:
        """The session of ``conn_id`` (its auth and headers; its base URL kept), or ``None`` for ``url``."""
        if not self.settings.conn_id:
            return None
        try:
            self._base_url, session = provider_hooks.http_session(self.settings.conn_id)
        except provider_hooks.MuxlyConnectionError as exc:
            raise self.fail(str(exc), retryable=not exc.permanent) from None
        return session

    def reach_url(self) -> str:
        """The URL a connection test reaches: ``url`` as configured, or the base URL of ``conn_id``."""
        if self.settings.conn_id:
            self._http()
            return self._base_url
        return str(self.settings.url)

    def _context(self, records: list[Record], record: Record | None = None) -> dict[str, Any]:
        return template_context(
            self.run,
            destination_id=self.context.id,
            destination_name=self.context.name,
            records=records,
            record=record,
            batch=self.batch_index,
        )

    def write_batch(self, records: list[Record]) -> None:
        """Send the batch (one request, or one per record); each request retries by itself.

        :raises MuxlyDeliveryError: with ``delivered`` set to the records already sent (``record`` mode)
        """
        if self.send_mode == "record":
            for index, record in enumerate(records):
                try:
                    self._request(self._context(records, record))
                except MuxlyDeliveryError as exc:
                    exc.delivered = index
                    raise
        else:
            self._request(self._context(records))
        self.batch_index += 1
        self.delivered += len(records)

    def commit(self) -> list[str]:
        """Nothing is buffered: every batch was sent by :meth:`write_batch`."""
        self.abort()
        return [f"{self.requests_sent} request(s)"]

    def abort(self) -> None:
        """Close the connections."""
        if self._client is not None:
            self._client.close()
            self._client = None
