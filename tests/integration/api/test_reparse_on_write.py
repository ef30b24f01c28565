"""A committed write of a row the DAG factory reads asks Airflow to re-parse the affected shard file(s) first.

The request is Airflow's own ``DagPriorityParsingRequest`` (what ``PUT /api/v2/parseDagFile/{file_token}``
inserts); the DAG processor moves the file to the front of its queue at its next loop.
"""

from __future__ import annotations

import argparse
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
from conftest import bearer, login, make_user
from fastapi.testclient import TestClient

API = "/api/v1"
SHARDS = 3
JOBS = [f"job_{i}" for i in range(9)]


def _requests() -> set[str]:
    from airflow.models.dagbag import DagPriorityParsingRequest
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        return {r.relative_fileloc for r in session.scalars(select(DagPriorityParsingRequest))}


def _clear_requests() -> None:
    from airflow.models.dagbag import DagPriorityParsingRequest
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    with create_session() as session:
        session.execute(delete(DagPriorityParsingRequest))


@pytest.fixture
def shard_dags(
    airflow_db: None, api_client: TestClient, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """Jobs created through the API, their shard files parsed into Airflow's database as the processor does."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import delete

    from muxly_provider.cli.jobs_command import write_shards
    from muxly_provider.dag_factory import reparse

    monkeypatch.setenv("AIRFLOW__MUXLY__DAG_FILE_SHARDS", str(SHARDS))
    monkeypatch.setattr(reparse, "FOLLOW_UP_SECONDS", 0.0)
    make_user("root", ["admin"])
    headers = bearer(login(api_client, "root")["access_token"])
    connector = {
        "id": "c1",
        "name": "C",
        "connector_type": "api",
        "connection_settings": {"base_url": "http://x"},
    }
    assert api_client.post(f"{API}/connectors", headers=headers, json=connector).status_code == 201
    dest = {"id": "d1", "name": "D", "destination_type": "file", "config": {"output_dir": "out"}}
    assert api_client.post(f"{API}/destinations", headers=headers, json=dest).status_code == 201
    for job_id in JOBS:
        job = {
            "id": job_id,
            "name": job_id,
            "job_type": "cron",
            "schedule": "*/5 * * * *",
            "connector_id": "c1",
            "action_type": "export",
            "action_params": {"destination_ids": ["d1"]},
        }
        assert api_client.post(f"{API}/jobs", headers=headers, json=job).status_code == 201, job_id
    folder = tmp_path / "dags"
    write_shards(argparse.Namespace(folder=str(folder)))
    DagBundlesManager().sync_bundles_to_db()
    with create_session() as session:
        session.execute(delete(DagModel).where(DagModel.dag_id.startswith("muxly__")))
    for path in sorted(folder.glob("*.py")):
        bag = DagBag(dag_folder=path, bundle_path=folder, bundle_name="dags-folder")
        assert not bag.import_errors, bag.import_errors
        sync_bag_to_db(bag, "dags-folder", None)
    _clear_requests()
    yield api_client, headers
    _clear_requests()
    with create_session() as session:
        session.execute(delete(DagModel).where(DagModel.dag_id.startswith("muxly__")))


def _shard_file(job_id: str) -> str:
    from muxly_provider.dag_factory.register import shard_of

    return f"muxly_dags_shard_{shard_of(job_id, SHARDS)}.py"


def test_a_job_write_asks_for_its_shard_file_only(shard_dags: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = shard_dags
    answer = client.patch(f"{API}/jobs/job_4", headers=headers, json={"schedule": "0 3 * * *"})
    assert answer.status_code == 200, answer.text
    assert _requests() == {_shard_file("job_4")}


def test_a_requested_file_on_this_disk_gets_a_new_modification_time(
    shard_dags: tuple[TestClient, dict[str, str]], tmp_path: Path
) -> None:
    """Airflow re-sorts its queue by modification time at the refresh a request forces: the file must be newest."""
    import os
    import time

    client, headers = shard_dags
    old = time.time() - 3600
    files = sorted((tmp_path / "dags").glob("muxly_dags_shard_*.py"))
    for path in files:
        os.utime(path, (old, old))
    answer = client.patch(f"{API}/jobs/job_4", headers=headers, json={"schedule": "0 3 * * *"})
    assert answer.status_code == 200, answer.text
    touched = {path.name for path in files if path.stat().st_mtime > old + 60}
    assert touched == {_shard_file("job_4")}


def test_a_new_job_asks_for_the_file_of_its_shard(shard_dags: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = shard_dags
    job = {
        "id": "job_new",
        "name": "n",
        "job_type": "manual",
        "connector_id": "c1",
        "action_type": "export",
        "action_params": {"destination_ids": ["d1"]},
    }
    assert client.post(f"{API}/jobs", headers=headers, json=job).status_code == 201
    assert _requests() == {_shard_file("job_new")}


def test_a_destination_write_asks_for_every_shard(shard_dags: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = shard_dags
    assert client.patch(f"{API}/destinations/d1", headers=headers, json={"name": "D2"}).status_code == 200
    assert _requests() == {f"muxly_dags_shard_{i}.py" for i in range(SHARDS)}


def test_a_refused_write_asks_for_nothing(shard_dags: tuple[TestClient, dict[str, str]]) -> None:
    client, headers = shard_dags
    answer = client.patch(f"{API}/jobs/job_4", headers=headers, json={"schedule": "not cron"})
    assert answer.status_code == 422
    assert _requests() == set()


def test_airflow_unreachable_never_fails_the_write(
    shard_dags: tuple[TestClient, dict[str, str]],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    import airflow.utils.session

    client, headers = shard_dags

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("Airflow's database is down")

    with (
        monkeypatch.context() as patch,
        caplog.at_level(logging.WARNING, logger="muxly_provider.dag_factory.reparse"),
    ):
        patch.setattr(airflow.utils.session, "create_session", broken)
        answer = client.patch(f"{API}/jobs/job_2", headers=headers, json={"name": "renamed"})
    assert answer.status_code == 200
    assert client.get(f"{API}/jobs/job_2", headers=headers).json()["name"] == "renamed"
    assert "could not ask Airflow to re-parse" in caplog.text
    assert "Airflow's database is down" in caplog.text


def test_config_import_asks_for_the_shards_of_its_jobs(shard_dags: tuple[TestClient, dict[str, str]]) -> None:
    from muxly_provider.config_io import export_config, import_config
    from muxly_provider.db.engine import get_engine

    data = export_config(get_engine())
    for job in data["scheduler_jobs"]:
        if job["id"] == "job_7":
            job["name"] = "imported"
    plan = import_config(get_engine(), data)
    assert [(c.table, c.row_id) for c in plan.changes if c.action != "unchanged"] == [
        ("scheduler_jobs", "job_7")
    ]
    assert _requests() == {_shard_file("job_7")}


def test_the_request_is_sent_again_for_a_parse_in_flight(
    shard_dags: tuple[TestClient, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Airflow drops a request for a file being parsed: the follow-up request covers that parse."""
    import time

    from muxly_provider.dag_factory import reparse

    client, headers = shard_dags
    monkeypatch.setattr(reparse, "FOLLOW_UP_SECONDS", 0.5)
    assert client.patch(f"{API}/jobs/job_5", headers=headers, json={"name": "again"}).status_code == 200
    assert _requests() == {_shard_file("job_5")}
    _clear_requests()  # the DAG processor claimed it (while the file was being parsed)
    deadline = time.monotonic() + 10
    while not _requests() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert _requests() == {_shard_file("job_5")}
