"""``triggered_by`` of runs started through Airflow's real REST API and UI endpoint is right from its first write.

The DAG runs are created by Airflow's api-server app (``POST /api/v2/dags/{dag_id}/dagRuns``, with and without
the UI's ``Referer``); the scheduler's listener hook and the operator's first write then see them as they do in
a deployment: the listener the ORM ``DagRun``, the task the execution API's ``DagRun`` (which has no
``triggered_by``).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, text

from muxly_provider.executions.recorder import execution_id
from tests.airflow_helpers import set_paused, sync_muxly_dags
from tests.db_helpers import insert_row, seed_api_job

pytestmark = pytest.mark.usefixtures("airflow_db")

DAG_ID = "muxly__tb_job"


@pytest.fixture
def client(muxly_engine: Engine) -> Iterator[Any]:
    from airflow.api_fastapi.app import create_app
    from fastapi.testclient import TestClient

    insert_row(
        muxly_engine,
        "destinations",
        id="tb_dest",
        name="D",
        destination_type="file",
        config={"output_dir": "tb"},
    )
    seed_api_job(
        muxly_engine,
        "tb_job",
        "tb_conn",
        action_type="export",
        action_params={"destination_ids": ["tb_dest"]},
        max_retries=0,
    )
    assert DAG_ID in sync_muxly_dags()
    set_paused(DAG_ID, False)
    with TestClient(create_app()) as test_client:
        yield test_client


def _trigger(client: Any, **headers: str) -> str:
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    token = get_auth_manager().generate_jwt(SimpleAuthManagerUser(username="someone", role="admin"))
    response = client.post(
        f"/api/v2/dags/{DAG_ID}/dagRuns",
        json={"logical_date": None, "conf": {}},
        headers={"Authorization": f"Bearer {token}", **headers},
    )
    assert response.status_code == 200, response.text
    return str(response.json()["dag_run_id"])


def _listener(run_id: str, hook: str) -> None:
    """Call the listener hook with the ORM DagRun, as the scheduler does."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from muxly_provider.executions import listener

    with create_session() as session:
        dag_run = session.scalars(select(DagRun).where(DagRun.run_id == run_id)).one()
        getattr(listener, hook)(dag_run=dag_run, msg="")


def _operator_first_write(run_id: str) -> None:
    """The operator's ``running`` write with the DagRun a task gets from the execution API."""
    from airflow.api_fastapi.execution_api.datamodels.taskinstance import DagRun as ExecutionDagRun
    from airflow.models.dagrun import DagRun
    from airflow.sdk.api.datamodels._generated import DagRun as TaskDagRun
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from muxly_provider.operators.job import MuxlyJobOperator, prepare

    with create_session() as session:
        orm = session.scalars(select(DagRun).where(DagRun.run_id == run_id)).one()
        wire = ExecutionDagRun.model_validate(orm).model_dump_json()
    task_view = TaskDagRun.model_validate_json(wire)
    assert not hasattr(task_view, "triggered_by")  # what makes the task unable to tell REST from UI
    task = MuxlyJobOperator(task_id="run_job", job_id="tb_job")
    prepare(task, {"dag_run": task_view, "params": {}}, "tb_job", mark_running=True)


def _row(engine: Engine, run_id: str) -> tuple[str, str]:
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT status, triggered_by FROM job_executions WHERE id = :id"),
            {"id": execution_id(DAG_ID, run_id)},
        ).one()
    return str(row.status), str(row.triggered_by)


@pytest.mark.parametrize(
    ("headers", "expected"), [({}, "api"), ({"Referer": "http://airflow/dags"}, "manual")]
)
def test_rest_and_ui_runs_read_right_while_running(
    client: Any, muxly_engine: Engine, headers: dict[str, str], expected: str
) -> None:
    run_id = _trigger(client, **headers)
    _listener(run_id, "on_dag_run_running")
    assert _row(muxly_engine, run_id) == ("running", expected)
    _operator_first_write(run_id)
    assert _row(muxly_engine, run_id) == ("running", expected)  # the operator wrote no guess over it
    _listener(run_id, "on_dag_run_success")
    assert _row(muxly_engine, run_id) == ("success", expected)


def test_operator_before_the_listener_leaves_the_trigger_to_it(client: Any, muxly_engine: Engine) -> None:
    run_id = _trigger(client)
    _operator_first_write(run_id)  # dag.test(), or a listener that could not write
    assert _row(muxly_engine, run_id)[0] == "running"
    _listener(run_id, "on_dag_run_running")
    assert _row(muxly_engine, run_id) == ("running", "api")
