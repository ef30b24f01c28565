"""The API mounted in Airflow's api-server at ``/muxly``: the Airflow UI's own token, and errors of "run now"."""

from __future__ import annotations

import pytest
from conftest import PASSWORD, airflow_token, bearer, make_user
from fastapi.testclient import TestClient


def test_airflow_ui_token_is_accepted_with_the_default_role(airflow_client: TestClient) -> None:
    token = airflow_token("ui-user")
    me = airflow_client.get("/muxly/api/v1/auth/me", headers=bearer(token))
    assert me.status_code == 200, me.text
    assert me.json()["roles"] == ["viewer"]
    assert me.json()["auth_method"] == "airflow"
    assert airflow_client.get("/muxly/api/v1/connectors", headers=bearer(token)).status_code == 200
    denied = airflow_client.post("/muxly/api/v1/connectors", headers=bearer(token), json={})
    assert denied.status_code == 403
    # The UI's cookie works as well (a Muxly page inside the Airflow UI sends no header).
    airflow_client.cookies.set("_token", token)
    assert airflow_client.get("/muxly/api/v1/auth/me").status_code == 200
    airflow_client.cookies.clear()
    tampered = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    assert airflow_client.get("/muxly/api/v1/auth/me", headers=bearer(tampered)).status_code == 401


def test_airflow_users_can_be_refused(airflow_client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__MUXLY__AIRFLOW_USER_ROLE", "")
    response = airflow_client.get("/muxly/api/v1/auth/me", headers=bearer(airflow_token("ui-user")))
    assert response.status_code == 401


def test_run_now_of_a_job_without_dag_is_a_409(airflow_client: TestClient) -> None:
    make_user("root", ["admin"])
    response = airflow_client.post(
        "/muxly/api/v1/auth/login", json={"username": "root", "password": PASSWORD}
    )
    headers = bearer(response.json()["access_token"])
    api = "/muxly/api/v1"
    connector = {
        "id": "c1",
        "name": "C",
        "connector_type": "api",
        "connection_settings": {"base_url": "http://x"},
    }
    assert airflow_client.post(f"{api}/connectors", headers=headers, json=connector).status_code == 201
    job = {"id": "j1", "name": "J", "job_type": "manual", "connector_id": "c1", "action_type": "sync"}
    assert airflow_client.post(f"{api}/jobs", headers=headers, json=job).status_code == 201
    run = airflow_client.post(f"{api}/jobs/j1/run", headers=headers, json={"payload": {"a": 1}})
    assert run.status_code == 409, run.text
    assert run.json()["error"]["code"] == "dag_not_found"
    assert airflow_client.post(f"{api}/jobs/j1/disable", headers=headers).json()["enabled"] is False
    disabled = airflow_client.post(f"{api}/jobs/j1/run", headers=headers)
    assert disabled.status_code == 409
    assert disabled.json()["error"]["code"] == "job_disabled"
    assert airflow_client.post(f"{api}/jobs/nope/run", headers=headers).status_code == 404
