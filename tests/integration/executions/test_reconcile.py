"""``airflow muxly executions reconcile``: rows missing or disagreeing with Airflow's run history are rewritten
through the listener's mapping and the recorder's merge; rows that agree and queued runs are left alone."""

from __future__ import annotations

import argparse
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text

from muxly_provider.cli.executions_command import reconcile_executions
from muxly_provider.executions.reconcile import parse_since
from muxly_provider.executions.recorder import ExecutionUpdate, upsert_execution
from tests.db_helpers import seed_api_job

pytestmark = pytest.mark.usefixtures("airflow_db")

START = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=1)
END = START + timedelta(minutes=3)


def _airflow_run(dag_id: str, run_id: str, state: str, **extra: Any) -> None:
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    with create_session() as session:
        run = DagRun(
            dag_id=dag_id,
            run_id=run_id,
            run_after=START,
            start_date=None if state == "queued" else START,
            state=DagRunState(state),
            run_type=extra.pop("run_type", DagRunType.SCHEDULED),
            triggered_by=DagRunTriggeredByType.TIMETABLE,
            **extra,
        )
        if state in {"success", "failed"}:
            run.end_date = END
        session.add(run)


def _rows(engine: Engine, job_id: str) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM job_executions WHERE job_id = :j"), {"j": job_id}).mappings()
        return {json.loads(r["result"])["run_id"]: {**r, "result": json.loads(r["result"])} for r in rows}


def _cli(capsys: pytest.CaptureFixture[str], job_id: str, **options: Any) -> dict[str, Any]:
    args = argparse.Namespace(
        **{"job_id": job_id, "since": None, "dry_run": False, "output_format": "json", **options}
    )
    reconcile_executions(args)
    return dict(json.loads(capsys.readouterr().out))


def test_reconcile_fills_in_and_corrects_rows(
    muxly_engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    job_id = f"rc_{uuid.uuid4().hex[:8]}"
    dag_id = f"muxly__{job_id}"
    seed_api_job(muxly_engine, job_id, f"{job_id}_c")
    for run_id, state in [("gone", "success"), ("stuck", "failed"), ("fine", "success"), ("now", "running")]:
        _airflow_run(dag_id, run_id, state)
    _airflow_run(dag_id, "waiting", "queued")
    base = ExecutionUpdate(job_id=job_id, dag_id=dag_id, run_id="stuck")
    # The operator recorded its counts; the listener's final write was lost: the row still says running.
    upsert_execution(
        muxly_engine, ExecutionUpdate(**{**base.__dict__, "status": "running", "start_time": START})
    )
    upsert_execution(muxly_engine, ExecutionUpdate(**{**base.__dict__, "result": {"records_in": 7}}))
    upsert_execution(
        muxly_engine,
        ExecutionUpdate(
            job_id=job_id,
            dag_id=dag_id,
            run_id="fine",
            status="success",
            start_time=START,
            end_time=END,
            triggered_by="schedule",
        ),
    )

    dry = _cli(capsys, job_id, dry_run=True)
    assert (dry["runs_checked"], dry["created"], dry["updated"], dry["dry_run"]) == (4, 2, 1, True)
    assert set(_rows(muxly_engine, job_id)) == {"stuck", "fine"}  # nothing written
    reasons = {c["run_id"]: c["reason"] for c in dry["changes"]}
    assert reasons["gone"] == "missing"
    assert reasons["stuck"].startswith("status running -> failed, end_time None -> ")

    done = _cli(capsys, job_id)
    assert [(c["action"], c["run_id"], c["status_before"], c["status_after"]) for c in done["changes"]] == [
        ("create", "gone", None, "success"),
        ("update", "stuck", "running", "failed"),
        ("create", "now", None, "running"),
    ]
    rows = _rows(muxly_engine, job_id)
    assert set(rows) == {"gone", "stuck", "fine", "now"}  # the queued run has nothing to mirror yet
    stuck = rows["stuck"]
    assert (stuck["status"], datetime.fromisoformat(str(stuck["end_time"])), stuck["triggered_by"]) == (
        "failed",
        END.replace(tzinfo=None),
        "schedule",
    )
    assert stuck["result"]["records_in"] == 7  # the operator's counts are kept
    assert stuck["result"]["error"] == "the DAG run failed"
    assert rows["gone"]["result"]["duration_seconds"] == 180.0
    assert (rows["now"]["status"], rows["now"]["end_time"]) == ("running", None)

    again = _cli(capsys, job_id)
    assert (again["created"], again["updated"], again["changes"]) == (0, 0, [])


def test_since_and_table_output(muxly_engine: Engine, capsys: pytest.CaptureFixture[str]) -> None:
    job_id = f"rc_{uuid.uuid4().hex[:8]}"
    seed_api_job(muxly_engine, job_id, f"{job_id}_c")
    _airflow_run(f"muxly__{job_id}", "old", "success")
    later = (START + timedelta(minutes=1)).isoformat()
    args = argparse.Namespace(job_id=job_id, since=later, dry_run=False, output_format="table")
    reconcile_executions(args)
    assert "0 Airflow run(s)" in capsys.readouterr().out
    args.since = START.replace(tzinfo=None).isoformat()  # naive: UTC
    reconcile_executions(args)
    out = capsys.readouterr().out
    assert "create" in out and "1 row(s) were created" in out
    args.since = "yesterday"
    with pytest.raises(SystemExit) as exit_info:
        reconcile_executions(args)
    assert exit_info.value.code == 1
    assert "--since 'yesterday' is not an ISO date-time" in capsys.readouterr().err
    assert parse_since(None, now=START) == START - timedelta(days=7)
