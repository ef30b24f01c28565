"""The api connector against a real HTTP server on loopback."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from examples.sample_api import make_server, sample_sales, start_in_thread
from muxly_provider.connectors.api import ApiConnector, extract_records, fill_path_params
from muxly_provider.connectors.base import ConnectorContext
from muxly_provider.connectors.registry import get_connector_class
from muxly_provider.exceptions import MuxlyConnectorError
from muxly_provider.http import retry as http_retry


@pytest.fixture(autouse=True)
def _no_waits(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(http_retry, "default_sleep", lambda seconds: None)


class _Recorder(BaseHTTPRequestHandler):
    """Answers with what it received, so tests can check auth, headers and parameters."""

    reply: Any = None
    status = 200
    seen: list[dict[str, Any]] = []  # noqa: RUF012

    def log_message(self, format: str, *args: Any) -> None:
        return

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        type(self).seen.append(
            {
                "method": self.command,
                "path": self.path,
                "headers": dict(self.headers),
                "body": self.rfile.read(length).decode() if length else "",
            }
        )
        payload = json.dumps(type(self).reply).encode() if type(self).reply is not None else b"not json"
        self.send_response(type(self).status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_POST = _handle


@pytest.fixture
def recorder() -> Iterator[tuple[str, type[_Recorder]]]:
    handler = type("Handler", (_Recorder,), {"seen": [], "reply": [{"a": 1}], "status": 200})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()


def _connector(
    settings: dict[str, Any], auth: dict[str, Any] | None = None, batch_size: int = 1000
) -> ApiConnector:
    ctx = ConnectorContext(
        id="c1", name="C1", connector_type="api", auth=auth or {"auth_type": "none"}, settings=settings
    )
    return ApiConnector(ctx, batch_size=batch_size)


def test_fetches_records_at_metrics_path_in_batches() -> None:
    server = make_server(token="s3cret")
    start_in_thread(server)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/api/v1/sales"
        connector = _connector(
            {"base_url": url, "metrics_path": "data.records"},
            {"auth_type": "bearer", "params": {"token": "s3cret"}},
            batch_size=7,
        )
        batches = list(connector.fetch({}))
    finally:
        server.shutdown()
    assert [len(b) for b in batches] == [7, 7, 6]
    assert [r for b in batches for r in b] == sample_sales()


def test_wrong_token_is_a_clear_error_without_the_token() -> None:
    server = make_server(token="s3cret")
    start_in_thread(server)
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/api/v1/sales"
        connector = _connector({"base_url": url}, {"auth_type": "bearer", "params": {"token": "wrong-token"}})
        with pytest.raises(MuxlyConnectorError, match=r"connector 'c1'.*HTTP 401") as info:
            list(connector.fetch({}))
    finally:
        server.shutdown()
    assert "wrong-token" not in str(info.value)


@pytest.mark.parametrize(
    ("auth", "check"),
    [
        (
            {"auth_type": "basic", "params": {"username": "u", "password": "p"}},
            lambda seen: seen["headers"]["Authorization"] == "Basic dTpw",
        ),
        (
            {
                "auth_type": "api_key",
                "params": {"api_key": "k1", "location": "header", "header_name": "X-Key"},
            },
            lambda seen: seen["headers"]["X-Key"] == "k1",
        ),
        (
            {"auth_type": "api_key", "params": {"api_key": "k2", "location": "query", "param_name": "key"}},
            lambda seen: "key=k2" in seen["path"],
        ),
        ({"auth_type": "none"}, lambda seen: "Authorization" not in seen["headers"]),
    ],
)
def test_auth_types(recorder: tuple[str, type[_Recorder]], auth: dict[str, Any], check: Any) -> None:
    base, handler = recorder
    list(_connector({"base_url": base + "/x"}, auth).fetch({}))
    assert check(handler.seen[-1])


def test_path_query_headers_and_body_merge(recorder: tuple[str, type[_Recorder]]) -> None:
    base, handler = recorder
    connector = _connector(
        {
            "base_url": base + "/accounts/{account}/orders",
            "method": "POST",
            "path_params": {"account": "a b"},
            "query_params": {"limit": "10", "day": "x"},
            "headers": {"X-Team": "data"},
            "body_template": {"kind": "orders"},
        }
    )
    list(connector.fetch({"query_params": {"day": "2026-11-26"}, "body": {"kind": "refunds"}}))
    seen = handler.seen[-1]
    assert seen["method"] == "POST"
    assert seen["path"].startswith("/accounts/a%20b/orders?")
    assert "limit=10" in seen["path"] and "day=2026-11-26" in seen["path"]
    assert seen["headers"]["X-Team"] == "data"
    assert json.loads(seen["body"]) == {"kind": "refunds"}


@pytest.mark.parametrize(
    ("reply", "status", "message"),
    [
        ({"data": {"items": []}}, 200, "metrics_path 'data.records' not found"),
        ({"data": {"records": {"a": 1}}}, 200, "expected a list of objects"),
        ({"data": {"records": [1, 2]}}, 200, "item 0 of the records is a int"),
        (None, 200, "is not JSON"),
        ({"error": "boom"}, 503, "HTTP 503"),
    ],
)
def test_bad_responses_name_the_connector(
    recorder: tuple[str, type[_Recorder]], reply: Any, status: int, message: str
) -> None:
    base, handler = recorder
    handler.reply, handler.status = reply, status
    with pytest.raises(MuxlyConnectorError, match=message) as info:
        list(_connector({"base_url": base, "metrics_path": "data.records"}).fetch({}))
    assert "'c1'" in str(info.value)


def test_unreachable_server_is_a_connector_error() -> None:
    with pytest.raises(MuxlyConnectorError, match=r"GET http://127.0.0.1:9/none failed: connection refused"):
        list(_connector({"base_url": "http://127.0.0.1:9/none", "timeout_seconds": 2}).fetch({}))


def test_helpers() -> None:
    assert fill_path_params("http://h/{a}/{b}", {"a": "x/y", "b": 2}, "c") == "http://h/x%2Fy/2"
    with pytest.raises(MuxlyConnectorError, match="path parameter 'z'"):
        fill_path_params("http://h/{z}", {}, "c")
    assert extract_records([{"a": 1}], None, "c") == [{"a": 1}]


def test_registry() -> None:
    assert get_connector_class("api") is ApiConnector
    with pytest.raises(MuxlyConnectorError, match="not supported"):
        get_connector_class("ftp")
    with pytest.raises(MuxlyConnectorError, match="no connector plugin named 'nope'"):
        get_connector_class("plugin:nope")
