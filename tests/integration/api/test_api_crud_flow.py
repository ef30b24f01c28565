"""The documented flow on SQLite and PostgreSQL: connector, destination, rule, route, job; 404/409/422 answers."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import bearer, login, make_user
from fastapi.testclient import TestClient


@pytest.fixture
def client(api_db: str) -> Iterator[TestClient]:
    from muxly_provider.api.app import create_app
    from muxly_provider.auth.throttle import reset_throttle

    reset_throttle()
    with TestClient(create_app()) as test_client:
        yield test_client


def test_crud_flow(client: TestClient) -> None:
    make_user("root", ["admin"])
    h = bearer(login(client, "root")["access_token"])
    api = "/api/v1"
    connector = {
        "id": "c1",
        "name": "C",
        "connector_type": "api",
        "connection_settings": {"base_url": "http://x"},
    }
    assert client.post(f"{api}/connectors", headers=h, json=connector).status_code == 201
    assert client.post(f"{api}/connectors", headers=h, json=connector).status_code == 409
    dest = {"id": "d1", "name": "D", "destination_type": "file", "config": {"output_dir": "out"}}
    assert client.post(f"{api}/destinations", headers=h, json=dest).status_code == 201
    rule = {"id": "r1", "name": "R", "condition": "total > 10", "destination_ids": ["d1"]}
    assert client.post(f"{api}/rules", headers=h, json=rule).status_code == 201
    bad_rule = client.post(f"{api}/rules", headers=h, json={"name": "R", "condition": "total >"})
    assert bad_rule.status_code == 422
    assert bad_rule.json()["error"]["details"]["field"] == "condition"
    missing_dest = client.post(f"{api}/rules", headers=h, json={"name": "R", "destination_ids": ["nope"]})
    assert missing_dest.status_code == 422
    assert missing_dest.json()["error"]["details"]["field"] == "destination_ids[0]"
    route = {"id": "rt1", "name": "RT", "connector_id": "c1", "rules": [{"rule_id": "r1"}]}
    assert client.post(f"{api}/routes", headers=h, json=route).status_code == 201
    bad_route = client.post(f"{api}/routes", headers=h, json={**route, "id": "rt2", "connector_id": "nope"})
    assert bad_route.status_code == 422
    assert bad_route.json()["error"]["details"]["field"] == "connector_id"
    job = {
        "id": "j1",
        "name": "J",
        "job_type": "cron",
        "schedule": "@hourly",
        "connector_id": "c1",
        "action_type": "sync",
    }
    created = client.post(f"{api}/jobs", headers=h, json=job)
    assert created.status_code == 201
    assert created.json()["dag_id"] == "muxly__j1"
    bad_cron = client.post(f"{api}/jobs", headers=h, json={**job, "id": "j2", "schedule": "every day"})
    assert bad_cron.status_code == 422
    assert bad_cron.json()["error"]["details"]["field"] == "schedule"
    listed = client.get(f"{api}/jobs?sort=name&order=desc&limit=1&connector_id=c1", headers=h).json()
    assert listed["total"] == 1 and listed["items"][0]["id"] == "j1"
    assert client.get(f"{api}/jobs?sort=bogus", headers=h).status_code == 422
    assert client.patch(f"{api}/rules/r1", headers=h, json={"priority": 5}).json()["destination_ids"] == [
        "d1"
    ]
    assert client.get(f"{api}/rules/nope", headers=h).status_code == 404
    assert client.delete(f"{api}/connectors/c1", headers=h).status_code == 204
    assert client.get(f"{api}/jobs/j1", headers=h).status_code == 404  # cascaded
    assert client.get(f"{api}/routes", headers=h).json()["total"] == 0
