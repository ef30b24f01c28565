"""The ``webhook`` connector through Muxly's REST API and the CLI: created with or without ``records_path``,
a bad path refused with a 422 naming the field, and the connector test (route and CLI) saying that there is
nothing to reach."""

from __future__ import annotations

import argparse
from typing import Any

import pytest
from fastapi.testclient import TestClient

API = "/api/v1"


def _connector(settings: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": "push",
        "name": "Pushed orders",
        "connector_type": "webhook",
        "auth_settings": {"auth_type": "none"},
        "connection_settings": settings,
    }


def test_a_webhook_connector_is_written_and_tested(
    api_client: TestClient, admin: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from muxly_provider.cli.connectors_command import test_connector

    refused = api_client.post(f"{API}/connectors", headers=admin, json=_connector({"records_path": "a[x]"}))
    assert refused.status_code == 422, refused.text
    assert refused.json()["error"]["details"]["field"] == "connection_settings.records_path"
    unknown = api_client.post(f"{API}/connectors", headers=admin, json=_connector({"base_url": "http://x"}))
    assert unknown.status_code == 422, unknown.text

    created = api_client.post(
        f"{API}/connectors", headers=admin, json=_connector({"records_path": "batch.orders"})
    )
    assert created.status_code == 201, created.text
    tested = api_client.post(f"{API}/connectors/push/test", headers=admin)
    assert tested.status_code == 200, tested.text
    assert tested.json()["ok"] is True
    assert tested.json()["message"].startswith("webhook connector 'push': nothing to reach")

    test_connector(argparse.Namespace(connector_id="push"))
    assert capsys.readouterr().out.startswith("OK: webhook connector 'push': nothing to reach")
