"""``/api/v1/dead-letters`` through the real app: list filters, show, idempotent replays to real destinations
(a webhook on loopback, files), failed replays, permissions."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from muxly_provider.db.engine import get_engine
from tests.integration.destinations.dead_letter_seed import (
    DOWN_RECORDS,
    HOOK_RECORDS,
    OTHER_RUN,
    RUN,
    replayed_files,
    seed,
)
from tests.integration.destinations.destination_servers import Recorder, free_port, http_recorder

API = "/api/v1/dead-letters"


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    with http_recorder() as server:
        yield server


@pytest.fixture
def letters(api_client: TestClient, recorder: Recorder, files_root: Path) -> dict[str, str]:
    return seed(get_engine(), recorder.url + "/in", f"http://127.0.0.1:{free_port()}/in")


def test_list_filters_and_show(
    api_client: TestClient, letters: dict[str, str], admin: dict[str, str]
) -> None:
    everything = api_client.get(API, headers=admin).json()
    assert everything["total"] == 3
    assert all("records" not in item for item in everything["items"])

    def ids(**params: str) -> set[str]:
        answer = api_client.get(API, headers=admin, params=params)
        assert answer.status_code == 200, answer.text
        return {item["id"] for item in answer.json()["items"]}

    assert ids(run_id=RUN.run_id) == {letters["hook"], letters["down"]}
    assert ids(destination_id="hook") == {letters["hook"], letters["other"]}
    assert ids(dag_id=RUN.dag_id, run_id=OTHER_RUN.run_id) == {letters["other"]}
    assert ids(job_id="orders", replayed="false") == set(letters.values())
    assert ids(replayed="true") == set()

    shown = api_client.get(f"{API}/{letters['hook']}", headers=admin).json()
    assert shown["records"] == HOOK_RECORDS
    assert shown["created_at"].endswith("Z") or "+00:00" in shown["created_at"]
    missing = api_client.get(f"{API}/nope", headers=admin)
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "not_found"


def test_replay_is_idempotent_and_marks_the_letter(
    api_client: TestClient, letters: dict[str, str], admin: dict[str, str], recorder: Recorder
) -> None:
    first = api_client.post(f"{API}/{letters['hook']}/replay", headers=admin)
    assert first.status_code == 200, first.text
    assert first.json() == {
        "id": letters["hook"],
        "status": "replayed",
        "destination_id": "hook",
        "delivered": 2,
        "error": None,
    }
    second = api_client.post(f"{API}/{letters['hook']}/replay", headers=admin, json={})
    assert second.json()["status"] == "already_replayed"
    assert [r.json() for r in recorder.requests] == [HOOK_RECORDS]  # delivered once

    shown = api_client.get(f"{API}/{letters['hook']}", headers=admin).json()
    assert shown["replayed_to"] == "hook" and shown["replayed_at"] is not None
    assert shown["replay_attempts"] == 1
    pending = api_client.get(API, headers=admin, params={"replayed": "false"}).json()
    assert letters["hook"] not in {item["id"] for item in pending["items"]}


def test_failed_replay_stays_pending_then_replay_many_to_another_destination(
    api_client: TestClient, letters: dict[str, str], admin: dict[str, str], tmp_path: Path
) -> None:
    failed = api_client.post(f"{API}/{letters['down']}/replay", headers=admin).json()
    assert failed["status"] == "failed" and "destination 'down'" in failed["error"]
    shown = api_client.get(f"{API}/{letters['down']}", headers=admin).json()
    assert (shown["replayed_at"], shown["replay_error"]) == (None, failed["error"])

    many = api_client.post(
        f"{API}/replay",
        headers=admin,
        json={"run_id": RUN.run_id, "destination_id": "down", "to_destination_id": "files"},
    )
    assert many.status_code == 200, many.text
    assert many.json()["counts"] == {"replayed": 1}
    [written] = replayed_files(tmp_path)
    assert [json.loads(line) for line in written.read_text().splitlines()] == DOWN_RECORDS

    again = api_client.post(f"{API}/replay", headers=admin, json={"ids": [letters["down"], "nope"]})
    assert again.json()["counts"] == {"already_replayed": 1, "not_found": 1}
    assert replayed_files(tmp_path) == [written]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"ids": ["x"], "to_destination_id": "nowhere"}, "to_destination_id"),
        ({}, ""),
        ({"ids": ["x"], "run_id": "r"}, ""),
        ({"ids": ["x"], "unknown": 1}, "unknown"),
    ],
)
def test_bad_replay_requests_are_422(
    api_client: TestClient, letters: dict[str, str], admin: dict[str, str], body: dict, field: str
) -> None:
    answer = api_client.post(f"{API}/replay", headers=admin, json=body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["details"]["field"] == field


def test_permissions(
    api_client: TestClient,
    letters: dict[str, str],
    role_headers: dict[str, dict[str, str]],
    recorder: Recorder,
) -> None:
    assert api_client.get(API).status_code == 401
    assert api_client.post(f"{API}/{letters['hook']}/replay").status_code == 401
    assert api_client.get(API, headers=role_headers["viewer"]).status_code == 200
    assert api_client.get(f"{API}/{letters['hook']}", headers=role_headers["none"]).status_code == 403
    assert (
        api_client.post(f"{API}/{letters['hook']}/replay", headers=role_headers["viewer"]).status_code == 403
    )
    assert recorder.requests == []
    answer = api_client.post(f"{API}/{letters['hook']}/replay", headers=role_headers["operator"])
    assert answer.json()["status"] == "replayed"
