"""``airflow muxly jobs validate`` names every job the DAG file skips, and only those (issue 11 item 5).

The DAG file is parsed by Airflow's own DagBag; ``validate`` runs through the CLI function. Jobs are written with
plain SQL (as the seed schema allows) so that rows the API would refuse reach the factory too.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.db_helpers import insert_row as _insert

LONG_ID = "x" * 250
"""A job id whose DAG id (``muxly__`` + id) exceeds Airflow's 250-character limit: only building the DAG fails."""


def _job(engine: Engine, job_id: str, **values: Any) -> None:
    row: dict[str, Any] = {
        "name": job_id,
        "job_type": "cron",
        "schedule": "@daily",
        "connector_id": "c1",
        "action_type": "export",
        "action_params": {"destination_ids": ["d1"]},
    }
    _insert(engine, "scheduler_jobs", id=job_id, **{**row, **values})


@pytest.fixture
def jobs(muxly_engine: Engine) -> Engine:
    _insert(
        muxly_engine,
        "connectors",
        id="c1",
        name="C1",
        connector_type="api",
        auth_settings={"auth_type": "none"},
        connection_settings={"base_url": "http://127.0.0.1:9/x"},
    )
    for dest_id in ("d1", "crm:eu", "crm@eu"):
        _insert(
            muxly_engine,
            "destinations",
            id=dest_id,
            name=dest_id,
            destination_type="file",
            config={"output_dir": "out"},
        )
    _job(muxly_engine, "good")
    _job(muxly_engine, "twins", action_params={"destination_ids": ["crm:eu", "crm@eu"]})
    _job(muxly_engine, "cron99", schedule="99 99 * * *")
    _job(muxly_engine, LONG_ID)
    return muxly_engine


def _validate(capsys: pytest.CaptureFixture[str]) -> dict[str, dict[str, str]]:
    from muxly_provider.cli.jobs_command import validate_jobs

    capsys.readouterr()
    with pytest.raises(SystemExit) as info:  # every case here has at least one bad job
        validate_jobs(argparse.Namespace(output_format="json"))
    assert info.value.code == 1
    return {p["job_id"]: p for p in json.loads(capsys.readouterr().out)}


def _dagbag() -> Any:
    from airflow.dag_processing.dagbag import DagBag

    from tests.airflow_helpers import DAGS_DIR

    bag = DagBag(dag_folder=DAGS_DIR, bundle_path=DAGS_DIR, bundle_name="dags-folder")
    assert bag.import_errors == {}
    return bag


def test_validate_names_exactly_the_jobs_the_dag_file_skips(
    jobs: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    from muxly_provider.dag_factory.naming import dag_id_for

    problems = _validate(capsys)
    built = set(_dagbag().dags)

    every_job = {"good", "twins", "cron99", LONG_ID}
    assert {j for j in every_job if dag_id_for(j) not in built} == set(problems)
    assert "good" not in problems
    assert problems["cron99"]["field"] == "scheduler_jobs.schedule"
    assert "'99 99 * * *' is not" in problems["cron99"]["reason"]
    assert problems[LONG_ID]["field"] == "dag"
    assert "250" in problems[LONG_ID]["reason"]


def test_destination_ids_differing_only_in_unsafe_characters_build(
    jobs: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    """``crm:eu`` and ``crm@eu`` once collapsed into one task id: DuplicateTaskIdFound dropped the DAG."""
    assert "twins" not in _validate(capsys)
    dag = _dagbag().dags["muxly__twins"]
    assert len([t for t in dag.task_ids if t.startswith("deliver__")]) == 2
