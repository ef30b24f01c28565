"""The webhook destination against a real HTTP server on loopback: bodies, modes, retries, secrets."""

from __future__ import annotations

import email.utils
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from muxly_provider.destinations import http
from muxly_provider.destinations.base import DestinationContext, MuxlyDeliveryError, RunInfo
from muxly_provider.destinations.registry import get_destination_class
from muxly_provider.destinations.webhook import WebhookDestination
from tests.integration.destinations.destination_servers import free_port, http_recorder

RUN = RunInfo(
    dag_id="muxly__j",
    run_id="manual__1",
    job_id="j",
    connector_id="sales",
    logical_date=datetime(2026, 11, 26, tzinfo=UTC),
)
RECORDS: list[dict[str, Any]] = [{"id": 1, "amount": 10.5}, {"id": 2, "amount": 3}]
SECRET = "Bearer s3cr3t-token-value"


def _dest(url: str, **config: Any) -> WebhookDestination:
    ctx = DestinationContext(
        id="hook",
        name="Hook",
        destination_type="webhook",
        config={"url": url, "retry_backoff_seconds": 0.01, **config},
    )
    dest = get_destination_class("webhook")(ctx, RUN)
    assert isinstance(dest, WebhookDestination)
    return dest


def test_batch_mode_posts_the_records_as_a_json_list() -> None:
    with http_recorder() as server:
        dest = _dest(server.url + "/in", headers={"Authorization": SECRET})
        dest.write_batch(RECORDS)
        assert dest.commit() == ["1 request(s)"]
    [request] = server.requests
    assert request.method == "POST" and request.path == "/in"
    assert request.json() == RECORDS
    assert request.headers["Authorization"] == SECRET
    assert request.headers["Content-Type"] == "application/json"


def test_record_mode_and_templates() -> None:
    with http_recorder() as server:
        dest = _dest(
            server.url + "/orders/{{id}}",
            method="put",
            send_mode="record",
            body_template={"order": "{{record}}", "amount": "{{amount}}", "note": "from {{connector_id}}"},
        )
        dest.write_batch(RECORDS)
    assert [(r.method, r.path) for r in server.requests] == [("PUT", "/orders/1"), ("PUT", "/orders/2")]
    assert server.requests[1].json() == {"order": RECORDS[1], "amount": 3, "note": "from sales"}


def test_get_sends_the_rendered_object_as_query() -> None:
    with http_recorder() as server:
        dest = _dest(server.url + "/ping", method="GET", send_mode="record", body_template={"id": "{{id}}"})
        dest.write_batch(RECORDS[:1])
    assert server.requests[0].path == "/ping?id=1" and server.requests[0].body == b""


def test_5xx_is_retried_with_backoff() -> None:
    with http_recorder() as server:
        server.statuses = [500, 503]
        dest = _dest(server.url, retry_count=2)
        dest.write_batch(RECORDS)
    assert len(server.requests) == 1


def test_5xx_after_the_last_retry_is_a_retryable_error_naming_the_destination() -> None:
    with http_recorder() as server:
        server.statuses = [502, 502, 502]
        dest = _dest(server.url + "/x?token=abcdefsecret", retry_count=2)
        with pytest.raises(MuxlyDeliveryError) as info:
            dest.write_batch(RECORDS)
    assert info.value.retryable
    assert "destination 'hook' (webhook): HTTP 502" in str(info.value) and "3 tries" in str(info.value)
    assert server.requests == []


def test_4xx_is_not_retried() -> None:
    with http_recorder() as server:
        server.statuses = [404, 200]
        dest = _dest(server.url, retry_count=3)
        with pytest.raises(MuxlyDeliveryError) as info:
            dest.write_batch(RECORDS)
    assert not info.value.retryable and "404" in str(info.value)
    assert server.statuses == [200]  # the second answer was never asked for


def test_connection_errors_are_retried_and_never_quote_the_url_or_headers() -> None:
    url = f"http://127.0.0.1:{free_port()}/hook/secret-path-123456"
    dest = _dest(url, retry_count=1, headers={"Authorization": SECRET}, timeout_seconds=2)
    started = time.monotonic()
    with pytest.raises(MuxlyDeliveryError) as info:
        dest.write_batch(RECORDS)
    assert time.monotonic() - started < 2
    message = str(info.value)
    assert "connection failed after 2 tries" in message
    assert "secret-path" not in message and "s3cr3t" not in message


def test_record_mode_reports_how_many_records_went_through() -> None:
    with http_recorder() as server:
        server.statuses = [200, 400]
        dest = _dest(server.url, send_mode="record")
        with pytest.raises(MuxlyDeliveryError) as info:
            dest.write_batch(RECORDS)
    assert info.value.delivered == 1


def test_bad_template_is_rejected_before_any_request() -> None:
    with pytest.raises(MuxlyDeliveryError, match="invalid template"):
        _dest("http://127.0.0.1:1", body_template={"a": "{{ broken"})


def test_429_waits_for_retry_after_then_delivers_once() -> None:
    waits: list[float] = []

    def sleep(seconds: float) -> None:
        waits.append(seconds)
        time.sleep(seconds)

    with http_recorder() as server:
        server.statuses = [(429, {"Retry-After": "1"})]
        dest = _dest(server.url, retry_count=2)
        dest.sleep = sleep
        dest.write_batch(RECORDS)
    assert waits == [1.0]  # the server's wait, not the 0.01 s backoff
    assert [r.json() for r in server.requests] == [RECORDS]
    assert len(server.arrivals) == 2 and server.arrivals[1] - server.arrivals[0] >= 0.95


def test_429_forever_is_a_retryable_error_after_the_retries() -> None:
    waits: list[float] = []
    with http_recorder() as server:
        server.then = (429, {})
        dest = _dest(server.url, retry_count=2)
        dest.sleep = waits.append
        with pytest.raises(MuxlyDeliveryError) as info:
            dest.write_batch(RECORDS)
    assert info.value.retryable and info.value.delivered == 0
    assert "HTTP 429 Too Many Requests after 3 tries" in str(info.value)
    assert len(server.arrivals) == 3 and server.requests == []
    assert waits == [0.01, 0.02]  # no Retry-After: the destination's backoff


@pytest.mark.parametrize(
    ("retry_after", "expected"),
    [
        ("3600", http.MAX_RETRY_AFTER_SECONDS),
        (email.utils.formatdate(time.time() + 7200, usegmt=True), http.MAX_RETRY_AFTER_SECONDS),
        (email.utils.formatdate(time.time() - 60, usegmt=True), 0.0),
        ("2.5", 2.5),
        ("soon", 0.01),  # not a number nor a date: the backoff
    ],
)
def test_retry_after_is_capped(retry_after: str, expected: float) -> None:
    waits: list[float] = []
    with http_recorder() as server:
        server.statuses = [(503, {"Retry-After": retry_after})]
        dest = _dest(server.url, retry_count=1)
        dest.sleep = waits.append
        dest.write_batch(RECORDS)
    assert waits == [expected] and len(server.requests) == 1


@pytest.mark.parametrize("status", [400, 401, 403, 409, 422])
def test_other_4xx_are_final_even_with_retry_after(status: int) -> None:
    waits: list[float] = []
    with http_recorder() as server:
        server.statuses = [(status, {"Retry-After": "1"})]
        dest = _dest(server.url, retry_count=3)
        dest.sleep = waits.append
        with pytest.raises(MuxlyDeliveryError) as info:
            dest.write_batch(RECORDS)
    assert not info.value.retryable and waits == [] and len(server.arrivals) == 1


def test_errors_carry_the_standard_status_phrase_not_the_servers() -> None:
    """A remote server must not write into Muxly's errors (and so the run's result): its reason phrase is
    replaced by the standard one."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(403, "internal-token-abc123")
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        dest = _dest(f"http://127.0.0.1:{server.server_address[1]}/in")
        with pytest.raises(MuxlyDeliveryError) as failure:
            dest.write_batch(RECORDS)
    finally:
        server.shutdown()
        server.server_close()
    assert "HTTP 403 Forbidden" in str(failure.value)
    assert "internal-token-abc123" not in str(failure.value)


def test_conn_id_and_endpoint_need_nothing_else(monkeypatch: pytest.MonkeyPatch) -> None:
    """An Airflow HTTP connection gives the base URL, basic auth and headers (its extras), as ``HttpHook``
    reads them; ``endpoint`` is a template below it."""
    import base64
    import json

    with http_recorder() as server:
        port = server.url.rsplit(":", 1)[1]
        connection = {
            "conn_type": "http",
            "host": "127.0.0.1",
            "port": int(port),
            "login": "muxly",
            "password": "pa55",
            "extra": {"X-Api-Key": "k-123"},
        }
        monkeypatch.setenv("AIRFLOW_CONN_ORDERS_API", json.dumps(connection))
        ctx = DestinationContext(
            id="hook",
            name="Hook",
            destination_type="webhook",
            config={"conn_id": "orders_api", "endpoint": "orders/{{id}}", "send_mode": "record"},
        )
        dest = WebhookDestination(ctx, RUN)
        dest.write_batch(RECORDS)
        assert dest.reach_url() == server.url
    assert [r.path for r in server.requests] == ["/orders/1", "/orders/2"]
    expected = "Basic " + base64.b64encode(b"muxly:pa55").decode()
    assert all(r.headers["Authorization"] == expected for r in server.requests)
    assert server.requests[0].headers["X-Api-Key"] == "k-123"
    assert server.requests[0].json() == RECORDS[0]


def test_conn_id_or_url_exactly_one_and_a_missing_connection_is_named() -> None:
    from pydantic import ValidationError

    from muxly_provider.config.destinations import WebhookDestinationConfig

    for config in ({}, {"url": "http://example.com", "conn_id": "api"}):
        with pytest.raises(ValidationError, match="exactly one of 'url' or 'conn_id'"):
            WebhookDestinationConfig.model_validate(config)
    with pytest.raises(ValidationError, match="'endpoint' goes with 'conn_id'"):
        WebhookDestinationConfig.model_validate({"url": "http://example.com", "endpoint": "/x"})
    ctx = DestinationContext(
        id="hook", name="Hook", destination_type="webhook", config={"conn_id": "muxly_no_such_conn"}
    )
    with pytest.raises(MuxlyDeliveryError, match="Airflow connection 'muxly_no_such_conn' not found"):
        WebhookDestination(ctx, RUN).write_batch(RECORDS)
