"""Write-time checks found in review: every local path of a row (join lookups and run conditions included) stays
in ``files_root``, a ``run_condition`` is validated when written, and a corrupt stored row answers 409, not 500."""

from __future__ import annotations

from typing import Any

import pytest
from conftest import bearer, login, make_user
from fastapi.testclient import TestClient

from tests.db_helpers import insert_row

OUTSIDE = [{"path": "/etc/passwd"}, {"glob": "/root/.*"}, {"path": "../../x"}, {"path": "zip::file:///etc/x"}]


@pytest.fixture
def operator(api_client: TestClient) -> dict[str, str]:
    make_user("checks-operator", ["operator"])
    return bearer(login(api_client, "checks-operator")["access_token"])


def _file_connector(client: TestClient, headers: dict[str, str]) -> str:
    created = client.post(
        "/api/v1/connectors",
        headers=headers,
        json={"name": "files", "connector_type": "file", "connection_settings": {"path": "in.jsonl"}},
    )
    assert created.status_code == 201, created.text
    return str(created.json()["id"])


@pytest.mark.parametrize("data_spec", OUTSIDE)
def test_a_join_lookup_path_outside_files_root_is_refused_on_write(
    api_client: TestClient, operator: dict[str, str], data_spec: dict[str, Any]
) -> None:
    connector = _file_connector(api_client, operator)
    step = {"join_connector_id": connector, "join_data_spec": data_spec, "left_key": "a", "right_key": "b"}
    answer = api_client.post(
        "/api/v1/rules",
        headers=operator,
        json={"name": "lookup", "transformations": [{"transformation_type": "join", "config": step}]},
    )
    assert answer.status_code == 422, answer.text
    assert "join_data_spec" in answer.json()["error"]["details"]["field"]


@pytest.mark.parametrize(
    ("run_condition", "field"),
    [
        ({"data_spec": {"path": "/etc/passwd"}}, "action_params.run_condition.data_spec.path"),
        ("   ", "action_params.run_condition"),
        ({"x": {"y": 1}}, "action_params.run_condition.x"),
        ({"condition": "a +"}, "action_params.run_condition.condition"),
        ({"data_spec": "a.jsonl"}, "action_params.run_condition.data_spec"),
    ],
)
def test_a_run_condition_is_checked_on_write(
    api_client: TestClient, operator: dict[str, str], run_condition: Any, field: str
) -> None:
    connector = _file_connector(api_client, operator)
    answer = api_client.post(
        "/api/v1/jobs",
        headers=operator,
        json={
            "name": "guarded",
            "job_type": "manual",
            "connector_id": connector,
            "action_type": "sync",
            "action_params": {"run_condition": run_condition},
        },
    )
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["details"]["field"].endswith(field.removeprefix("action_params."))


def test_a_corrupt_dead_letter_answers_409_naming_the_field(
    api_client: TestClient, operator: dict[str, str], sqlite_api_db: str
) -> None:
    from muxly_provider.db.engine import get_engine

    insert_row(
        get_engine(sqlite_api_db),
        "dead_letters",
        id="broken",
        dag_id="muxly__j",
        run_id="r",
        job_id="j",
        destination_id="d",
        batch_index=0,
        error="e",
        records="not json",
        record_count=1,
    )
    for answer in (
        api_client.get("/api/v1/dead-letters/broken", headers=operator),
        api_client.post("/api/v1/dead-letters/broken/replay", headers=operator, json={}),
    ):
        assert answer.status_code == 409, answer.text
        assert answer.json()["error"]["details"]["field"] == "records"
