"""The ``muxly`` connection type: its hook tests a connector described in an Airflow connection."""

from __future__ import annotations

import json

import pytest

from muxly_provider.hooks.connector import MuxlyConnectorHook
from tests.unit.connectors.fake_servers import LocalServer, Reply, Request


def _conn(monkeypatch: pytest.MonkeyPatch, name: str, **fields: object) -> None:
    monkeypatch.setenv(f"AIRFLOW_CONN_{name.upper()}", json.dumps({"conn_type": "muxly", **fields}))


def test_inline_api_connector_with_bearer_password(monkeypatch: pytest.MonkeyPatch) -> None:
    def handler(request: Request) -> Reply:
        if request.headers.get("Authorization") != "Bearer tok-1":
            return Reply(401, {"message": "bad token"})
        return Reply(body={"items": [{"a": 1}, {"a": 2}]})

    with LocalServer(handler) as server:
        _conn(
            monkeypatch,
            "mx_ok",
            host=server.url + "/v1/items",
            password="tok-1",
            extra={"connector_type": "api", "connection_settings": {"metrics_path": "items"}},
        )
        assert MuxlyConnectorHook("mx_ok").test_connection() == (
            True,
            "api connector 'mx_ok': first page answered with 2 record(s)",
        )
        _conn(
            monkeypatch,
            "mx_bad",
            host=server.url + "/v1/items",
            password="tok-wrong",
            extra={"connector_type": "api", "connection_settings": {"retry": {"max_attempts": 1}}},
        )
        ok, message = MuxlyConnectorHook("mx_bad").test_connection()
    assert not ok and "HTTP 401 Unauthorized" in message
    assert "bad token" not in message and "tok-wrong" not in message


def test_missing_connector_type_is_explained(monkeypatch: pytest.MonkeyPatch) -> None:
    _conn(monkeypatch, "mx_empty", extra={})
    ok, message = MuxlyConnectorHook("mx_empty").test_connection()
    assert not ok and "needs 'connector_id' or 'connector_type'" in message
    assert MuxlyConnectorHook.conn_type == "muxly"
