"""``/api/v1/webhooks``: a row's ``asset_uri`` must lie under ``[muxly] webhook_asset_uri_prefixes`` when written.

The delivery-time check (tests/integration/webhooks/test_webhook_assets.py) is what protects; this one answers
an operator at once instead of at the first delivery.
"""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient


def test_an_operator_cannot_name_an_asset_outside_the_prefixes(
    api_client: TestClient, role_headers: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    operator = role_headers["operator"]
    inside = {"id": "in", "endpoint_path": "in", "asset_uri": "x-muxly-webhook://shop/orders"}
    assert api_client.post("/api/v1/webhooks", headers=operator, json=inside).status_code == 201

    outside = {"id": "out", "endpoint_path": "out", "asset_uri": "s3://finance/ledger"}
    refused = api_client.post("/api/v1/webhooks", headers=operator, json=outside)
    assert refused.status_code == 422, refused.text
    error = refused.json()["error"]
    assert error["details"]["field"] == "asset_uri"
    assert "s3://finance/ledger" in error["message"] and "webhook_asset_uri_prefixes" in error["message"]
    # Changing an allowed row to another asset is checked the same way.
    patched = api_client.patch(
        "/api/v1/webhooks/in", headers=operator, json={"asset_uri": "s3://finance/ledger"}
    )
    assert patched.status_code == 422
    assert api_client.get("/api/v1/webhooks/in", headers=operator).json()["asset_uri"] == (
        "x-muxly-webhook://shop/orders"
    )
    # The deployment decides: with the bucket's prefix allowed, the same row is accepted.
    monkeypatch.setenv("AIRFLOW__MUXLY__WEBHOOK_ASSET_URI_PREFIXES", "x-muxly-webhook://,s3://finance/")
    assert api_client.post("/api/v1/webhooks", headers=operator, json=outside).status_code == 201
