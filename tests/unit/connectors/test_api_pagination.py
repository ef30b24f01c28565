"""The api connector's pagination, retries, rate limit, NDJSON and OAuth against loopback servers."""

from __future__ import annotations

import json
from typing import Any

import pytest

from muxly_provider.connectors.api import ApiConnector
from muxly_provider.connectors.base import ConnectorContext
from muxly_provider.exceptions import MuxlyConnectorError
from muxly_provider.http import retry as http_retry
from muxly_provider.http.client import safe_url
from muxly_provider.http.ratelimit import RateLimiter
from tests.unit.connectors.fake_servers import LocalServer, Reply, Request, TokenEndpoint

ROWS = [{"id": i} for i in range(23)]


@pytest.fixture(autouse=True)
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """Record the connector's waits instead of sleeping."""
    recorded: list[float] = []
    monkeypatch.setattr(http_retry, "default_sleep", recorded.append)
    return recorded


def _connector(
    settings: dict[str, Any], auth: dict[str, Any] | None = None, batch_size: int = 10
) -> ApiConnector:
    ctx = ConnectorContext(
        id="paged", name="Paged", connector_type="api", auth=auth or {"auth_type": "none"}, settings=settings
    )
    return ApiConnector(ctx, batch_size=batch_size)


def _ids(connector: ApiConnector, data_spec: dict[str, Any] | None = None) -> list[int]:
    return [r["id"] for batch in connector.fetch(data_spec or {}) for r in batch]


def _page_server(request: Request) -> Reply:
    q = request.query
    if request.path == "/page":
        page, size = int(q["p"]), int(q.get("size", 5))
        return Reply(body={"items": ROWS[(page - 1) * size : page * size]})
    if request.path == "/offset":
        offset, limit = int(q["offset"]), int(q["limit"])
        return Reply(body={"items": ROWS[offset : offset + limit]})
    if request.path == "/cursor":
        start = int(q.get("cursor", 0))
        nxt = start + 4 if start + 4 < len(ROWS) else None
        return Reply(body={"items": ROWS[start : start + 4], "meta": {"next": nxt}})
    if request.path == "/link":
        start = int(q.get("start", 0))
        headers = {}
        if start + 6 < len(ROWS):
            headers["Link"] = f'</link?start={start + 6}>; rel="next", </link?start=0>; rel="first"'
        return Reply(body=ROWS[start : start + 6], headers=headers)
    return Reply(404, {"error": "nope"})


@pytest.mark.parametrize(
    "pagination",
    [
        {"type": "page", "page_param": "p", "size_param": "size", "page_size": 5},
        {"type": "page", "page_param": "p"},
        {"type": "offset", "limit": 7},
        {"type": "cursor", "cursor_param": "cursor", "cursor_path": "meta.next"},
        {"type": "link_header"},
    ],
)
def test_every_pagination_mode_reads_every_record_once(pagination: dict[str, Any]) -> None:
    path = {"page": "/page", "offset": "/offset", "cursor": "/cursor", "link_header": "/link"}[
        pagination["type"]
    ]
    with LocalServer(_page_server) as server:
        connector = _connector(
            {
                "base_url": server.url + path,
                "pagination": pagination,
                "metrics_path": None if path == "/link" else "items",
            }
        )
        batches = list(connector.fetch({}))
    assert [r["id"] for b in batches for r in b] == list(range(23))
    assert all(len(b) == 10 for b in batches[:-1])


def test_max_pages_and_repeated_cursor() -> None:
    with LocalServer(_page_server) as server:
        connector = _connector(
            {
                "base_url": server.url + "/offset",
                "metrics_path": "items",
                "pagination": {"type": "offset", "limit": 5, "max_pages": 2},
            }
        )
        assert _ids(connector) == list(range(10))
    with LocalServer(lambda r: Reply(body={"items": [{"id": 1}], "next": "same"})) as server:
        connector = _connector(
            {
                "base_url": server.url,
                "metrics_path": "items",
                "pagination": {"type": "cursor", "cursor_path": "next"},
            }
        )
        with pytest.raises(MuxlyConnectorError, match=r"'paged'.*repeats the same page"):
            _ids(connector)


def test_429_storm_honours_retry_after_then_gives_up(waits: list[float]) -> None:
    calls = {"n": 0}

    def handler(request: Request) -> Reply:
        calls["n"] += 1
        if calls["n"] <= 2:
            return Reply(429, {"message": "slow down"}, headers={"Retry-After": "7"})
        return Reply(body=[{"id": 1}])

    with LocalServer(handler):
        pass
    with LocalServer(handler) as server:
        assert _ids(_connector({"base_url": server.url})) == [1]
    assert waits == [7.0, 7.0]
    with LocalServer(lambda r: Reply(429, {}, headers={"Retry-After": "1"})) as server:
        connector = _connector({"base_url": server.url, "retry": {"max_attempts": 4}})
        with pytest.raises(
            MuxlyConnectorError, match=r"'paged'.*HTTP 429 Too Many Requests \(gave up after 4 attempts\)"
        ):
            _ids(connector)
    with (
        LocalServer(lambda r: Reply(503, {}, headers={"Retry-After": "3600"})) as server,
        pytest.raises(MuxlyConnectorError, match="Retry-After 3600s exceeds"),
    ):
        _ids(_connector({"base_url": server.url}))


def test_5xx_and_dropped_connections_are_retried_with_backoff(waits: list[float]) -> None:
    calls = {"n": 0}

    def handler(request: Request) -> Reply:
        calls["n"] += 1
        if calls["n"] == 1:
            return Reply(502, {"error": {"message": "bad gateway"}})
        if calls["n"] == 2:
            return Reply(drop=True)
        return Reply(body=[{"id": 5}])

    retry = {"max_attempts": 3, "initial_backoff_ms": 100, "backoff_multiplier": 3, "max_backoff_ms": 250}
    with LocalServer(handler) as server:
        assert _ids(_connector({"base_url": server.url, "retry": retry})) == [5]
    assert waits == [0.1, 0.25]


def test_not_retried_statuses_and_retryable_errors_filter(waits: list[float]) -> None:
    with (
        LocalServer(lambda r: Reply(404, {"error": "missing"})) as server,
        pytest.raises(MuxlyConnectorError, match=r"HTTP 404 Not Found$"),
    ):
        _ids(_connector({"base_url": server.url}))
    assert waits == []
    with LocalServer(lambda r: Reply(500, {})) as server:
        connector = _connector({"base_url": server.url, "retry": {"retryable_errors": ["RATE_LIMIT"]}})
        with pytest.raises(MuxlyConnectorError, match=r"HTTP 500 Internal Server Error$"):
            _ids(connector)
    assert waits == []


def test_timeout_is_retried_then_reported() -> None:
    import time

    def slow(request: Request) -> Reply:
        time.sleep(0.5)
        return Reply(body=[])

    with LocalServer(slow) as server:
        connector = _connector({"base_url": server.url, "timeout_seconds": 0.1, "retry": {"max_attempts": 2}})
        with pytest.raises(MuxlyConnectorError, match=r"timed out after 0.1s.*gave up after 2"):
            _ids(connector)


def test_rate_limit_spaces_requests(waits: list[float]) -> None:
    with LocalServer(_page_server) as server:
        connector = _connector(
            {
                "base_url": server.url + "/offset",
                "metrics_path": "items",
                "pagination": {"type": "offset", "limit": 5},
                "rate_limit": {"max_requests": 2, "period_seconds": 60},
            }
        )
        assert len(_ids(connector)) == 23
    # 5 requests, 2 per minute, and time does not pass while waits are recorded: 3 waits of about a minute.
    assert len(waits) == 3 and all(55 < w <= 60 for w in waits)


def test_rate_limiter_sliding_window() -> None:
    now = [0.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(round(seconds, 3))
        now[0] += seconds

    limiter = RateLimiter(max_requests=3, period_seconds=10, clock=lambda: now[0], sleep=sleep)
    for at in (0, 1, 2, 3, 4, 15, 15.5):
        now[0] = max(now[0], at)
        limiter.acquire()
    # The 4th waits for the 1st to leave the window (t=10), the 5th for the 2nd (t=11), the 7th for t=20.
    assert slept == [7.0, 1.0, 4.5]


def test_auto_adjust_waits_for_the_reset(waits: list[float]) -> None:
    calls = {"n": 0}

    def handler(request: Request) -> Reply:
        calls["n"] += 1
        headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": "4"} if calls["n"] == 1 else {}
        return Reply(
            body={"items": [{"id": calls["n"]}], "next": "c2" if calls["n"] == 1 else None}, headers=headers
        )

    with LocalServer(handler) as server:
        connector = _connector(
            {
                "base_url": server.url,
                "metrics_path": "items",
                "pagination": {"type": "cursor", "cursor_path": "next"},
                "rate_limit": {"max_requests": 100, "auto_adjust": True},
            }
        )
        assert _ids(connector) == [1, 2]
    assert waits == [4.0]


def test_ndjson_streams_lines_and_rejects_bad_lines() -> None:
    lines = "\n".join(json.dumps({"id": i}) for i in range(25)).encode()
    with LocalServer(lambda r: Reply(raw=lines, headers={"Content-Type": "application/x-ndjson"})) as server:
        batches = list(_connector({"base_url": server.url}).fetch({}))
    assert [len(b) for b in batches] == [10, 10, 5]
    with (
        LocalServer(
            lambda r: Reply(raw=b'{"id": 1}\n[1]\n', headers={"Content-Type": "application/jsonl"})
        ) as s,
        pytest.raises(MuxlyConnectorError, match="line 2 of the NDJSON answer is a list"),
    ):
        _ids(_connector({"base_url": s.url}))


def test_oauth_refreshes_and_renews_an_expired_token() -> None:
    tokens = TokenEndpoint(refresh_token="rt-secret")
    state = {"expire_next": True}

    def handler(request: Request) -> Reply:
        if request.path == "/token":
            return tokens(request)
        if not tokens.bearer_ok(request):
            return Reply(401, {"error": "expired"})
        if state["expire_next"]:
            state["expire_next"] = False
            tokens.issued.append("revoked")  # the API now considers the current token expired
            return Reply(401, {"error": "expired"})
        return Reply(body=[{"id": 1}])

    auth = {
        "auth_type": "oauth",
        "params": {
            "client_id": "cid",
            "client_secret": "cs-secret",
            "refresh_token": "rt-secret",
            "token_url": "",
        },
    }
    with LocalServer(handler) as server:
        auth["params"]["token_url"] = server.url + "/token"
        assert _ids(_connector({"base_url": server.url + "/data"}, auth)) == [1]
        assert tokens.issued == ["at-1", "revoked", "at-3"]
        bad = {**auth, "params": {**auth["params"], "refresh_token": "wrong-rt"}}
        with pytest.raises(
            MuxlyConnectorError, match=r"'paged': oauth: token refresh .* HTTP 400 \(invalid_grant\)"
        ) as info:
            _ids(_connector({"base_url": server.url + "/data"}, bad))
    assert "wrong-rt" not in str(info.value) and "cs-secret" not in str(info.value)


def test_api_key_in_query_never_appears_in_errors() -> None:
    auth = {
        "auth_type": "api_key",
        "params": {"api_key": "k-secret", "location": "query", "param_name": "key"},
    }
    with LocalServer(lambda r: Reply(403, {"error": "forbidden"})) as server:
        with pytest.raises(MuxlyConnectorError) as info:
            _ids(_connector({"base_url": server.url + "/x?static=1"}, auth))
        assert server.requests[0].query["key"] == "k-secret"
    assert "k-secret" not in str(info.value) and "HTTP 403" in str(info.value)


def test_variables_and_run_params_fill_settings() -> None:
    with LocalServer(lambda r: Reply(body=[{"id": 1}])) as server:
        connector = _connector(
            {
                "base_url": server.url + "/{account}/${DATE}",
                "method": "POST",
                "query_params": {"since": "${YESTERDAY}"},
                "body_template": {"region": "${region}"},
            }
        )
        _ids(
            connector,
            {
                "path_params": {"account": "acme"},
                "variables": {"DATE": "2026-11-26", "YESTERDAY": "2026-11-25"},
                "run_params": {"region": "eu"},
            },
        )
        seen = server.requests[0]
    assert seen.path == "/acme/2026-11-26"
    assert seen.query == {"since": "2026-11-25"}
    assert seen.json() == {"region": "eu"}


def test_connection_test_reads_one_page() -> None:
    with LocalServer(_page_server) as server:
        connector = _connector(
            {
                "base_url": server.url + "/offset",
                "metrics_path": "items",
                "pagination": {"type": "offset", "limit": 5},
            }
        )
        assert "5 record(s)" in connector.test_connection()
        assert len(server.requests) == 1


def test_airflow_http_connection_supplies_host_and_credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    def handler(request: Request) -> Reply:
        if request.headers.get("Authorization") != "Basic dTpw" or request.headers.get("X-Team") != "data":
            return Reply(401, {"error": "who are you"})
        return Reply(body=[{"id": 1}])

    with LocalServer(handler) as server:
        port = server.url.rsplit(":", 1)[1]
        monkeypatch.setenv(
            "AIRFLOW_CONN_MX_HTTP",
            json.dumps(
                {
                    "conn_type": "http",
                    "host": "127.0.0.1",
                    "port": int(port),
                    "login": "u",
                    "password": "p",
                    "extra": {"X-Team": "data"},
                }
            ),
        )
        auth = {"auth_type": "airflow_connection", "params": {"conn_id": "mx_http"}}
        assert _ids(_connector({"base_url": "/v1/orders"}, auth)) == [1]
        assert server.requests[0].path == "/v1/orders"


def test_http_helpers() -> None:
    import email.utils
    import time

    import requests

    response = requests.Response()
    response.headers["Retry-After"] = email.utils.formatdate(time.time() + 30, usegmt=True)
    assert 25 < (http_retry.retry_after_seconds(response) or 0) <= 30
    response.headers["Retry-After"] = "soon"
    assert http_retry.retry_after_seconds(response) is None
    assert safe_url("https://u:pw@h.example:8443/p/q?key=secret#f") == "https://h.example:8443/p/q"
    policy = http_retry.HttpRetryPolicy.from_settings({"retryable_errors": ["TIMEOUT"], "max_attempts": 0})
    assert policy.max_attempts == 1 and policy.retries("timeout") and not policy.retries("connection_error")
    assert [policy.backoff(n) for n in (1, 2, 3)] == [0.5, 1.0, 2.0]
