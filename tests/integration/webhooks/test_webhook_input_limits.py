"""Input limits on Airflow's api-server app (Muxly mounted at ``/muxly``): a deeply nested webhook body is a
422, not a 500, and the management API's body limit holds under the mount (``docs/security.md``)."""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text

from tests.db_helpers import insert_row, seed_api_job

pytestmark = pytest.mark.usefixtures("airflow_db")

SECRET = "whsec-limits-1"


@pytest.fixture
def client(muxly_engine: Engine) -> Iterator[Any]:
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    from muxly_provider.crypto import encrypt_secret

    seed_api_job(muxly_engine, "lim_job", "lim_conn", job_type="webhook", max_retries=0)
    insert_row(muxly_engine, "webhook_triggers", id="lim_open", job_id="lim_job", endpoint_path="lim/open")
    insert_row(
        muxly_engine,
        "webhook_triggers",
        id="lim_signed",
        job_id="lim_job",
        endpoint_path="lim/signed",
        secret_key=encrypt_secret(SECRET),
    )
    with TestClient(create_app(), raise_server_exceptions=False) as test_client:
        yield test_client


def _signed(body: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {
        "X-Muxly-Timestamp": stamp,
        "X-Muxly-Signature": f"sha256={digest}",
        "Content-Type": "application/json",
    }


def test_deep_json_to_a_webhook_is_a_422(client: Any, muxly_engine: Engine) -> None:
    for path in ("lim/open", "lim/signed"):
        for depth in (65, 100_000):
            body = b'{"a": ' + b"[" * depth + b"]" * depth + b"}"
            response = client.post(f"/muxly/webhooks/{path}", content=body, headers=_signed(body))
            assert response.status_code == 422, response.text
            error = response.json()["error"]
            assert error["code"] == "invalid_json"
            assert "nested more than 64 levels deep" in error["message"]
    with muxly_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM job_executions")).scalar() == 0
    # Brackets inside strings do not count, and 64 levels pass: the body gets past parsing (the job's DAG
    # was never parsed, so the answer is then 409).
    body = b'{"t": "' + b"[{" * 500 + b'", "n": ' + b"[" * 63 + b"]" * 63 + b"}"
    response = client.post("/muxly/webhooks/lim/signed", content=body, headers=_signed(body))
    assert response.status_code == 409, response.text


def test_the_management_body_limit_holds_under_the_mount(client: Any) -> None:
    response = client.post(
        "/muxly/api/v1/connectors",
        content=b"{" + b" " * (2 << 20) + b"}",
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 413, response.text
    assert response.json()["error"]["code"] == "payload_too_large"
    deep = b"[" * 1000 + b"]" * 1000
    response = client.post(
        "/muxly/api/v1/connectors", content=deep, headers={"Content-Type": "application/json"}
    )
    assert response.status_code == 422, response.text
