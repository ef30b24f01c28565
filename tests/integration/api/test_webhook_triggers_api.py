"""``/api/v1/webhooks``: triggers without a job (sensor-only endpoints), with an asset, and their checks."""

from __future__ import annotations

from typing import Any

from fastapi.testclient import TestClient

CONNECTOR = {
    "id": "c",
    "name": "C",
    "connector_type": "api",
    "auth_settings": {"auth_type": "none"},
    "connection_settings": {"base_url": "http://127.0.0.1:9/x"},
}


def test_sensor_only_and_asset_triggers_through_the_api(
    api_client: TestClient, admin: dict[str, str]
) -> None:
    created = api_client.post(
        "/api/v1/webhooks", headers=admin, json={"id": "s", "endpoint_path": "sensor/only", "secret_key": "k"}
    )
    assert created.status_code == 201, created.text
    answer: dict[str, Any] = created.json()
    assert answer["job_id"] is None and answer["asset_uri"] is None and answer["secret_key"] == "***"
    assert answer["url_path"] == "/muxly/webhooks/sensor/only"

    asset = api_client.post(
        "/api/v1/webhooks",
        headers=admin,
        json={"id": "a", "endpoint_path": "asset", "asset_uri": "x-muxly-webhook://shop/orders"},
    )
    assert asset.status_code == 201, asset.text
    assert asset.json()["asset_uri"] == "x-muxly-webhook://shop/orders"

    bad = api_client.post(
        "/api/v1/webhooks", headers=admin, json={"endpoint_path": "b", "asset_uri": "airflow://reserved"}
    )
    assert bad.status_code == 422
    assert "asset_uri" in bad.text and "Airflow reserves it" in bad.text

    missing_job = api_client.post(
        "/api/v1/webhooks", headers=admin, json={"endpoint_path": "j", "job_id": "nope"}
    )
    assert missing_job.status_code == 422 and "scheduler_jobs" in missing_job.text

    # A job can be attached later and removed again (back to a sensor-only endpoint).
    assert api_client.post("/api/v1/connectors", headers=admin, json=CONNECTOR).status_code == 201
    job = {"id": "j", "name": "J", "job_type": "webhook", "connector_id": "c", "action_type": "sync"}
    assert api_client.post("/api/v1/jobs", headers=admin, json=job).status_code == 201
    patched = api_client.patch("/api/v1/webhooks/s", headers=admin, json={"job_id": "j"})
    assert patched.status_code == 200 and patched.json()["job_id"] == "j"
    cleared = api_client.patch("/api/v1/webhooks/s", headers=admin, json={"job_id": None})
    assert cleared.status_code == 200 and cleared.json()["job_id"] is None
    assert cleared.json()["secret_key"] == "***"
