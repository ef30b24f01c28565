"""job_executions upserts: one row per run whatever the writers' order, attempts, final states, errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine, text

from muxly_provider.executions.recorder import ExecutionUpdate, execution_id, upsert_execution
from tests.db_helpers import seed_api_job


def _row(engine: Engine, row_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT * FROM job_executions")).mappings().all()
    assert len(rows) == 1
    row = dict(rows[0])
    assert row["id"] == row_id
    row["result"] = json.loads(row["result"])
    return row


def test_writers_merge_into_one_row(muxly_engine: Engine) -> None:
    seed_api_job(muxly_engine, "j", "c")
    base = ExecutionUpdate(job_id="j", dag_id="muxly__j", run_id="r1")
    row_id = execution_id("muxly__j", "r1")
    start = datetime(2026, 11, 27, 1, 0, tzinfo=UTC)

    assert (
        upsert_execution(
            muxly_engine, ExecutionUpdate(**{**base.__dict__, "status": "queued", "triggered_by": "webhook"})
        )
        == row_id
    )
    upsert_execution(
        muxly_engine,
        ExecutionUpdate(**{**base.__dict__, "status": "running", "start_time": start, "attempt": 1}),
    )
    upsert_execution(muxly_engine, ExecutionUpdate(**{**base.__dict__, "result": {"error": "api down"}}))
    upsert_execution(
        muxly_engine,
        ExecutionUpdate(**{**base.__dict__, "status": "failed", "error_if_missing": "task_failure"}),
    )
    row = _row(muxly_engine, row_id)
    assert (row["status"], row["attempt"], row["triggered_by"]) == ("failed", 1, "webhook")
    assert row["result"]["error"] == "api down"

    # A late "running" from the first try does not undo the final state; a cleared run (attempt 2) does.
    upsert_execution(muxly_engine, ExecutionUpdate(**{**base.__dict__, "status": "running", "attempt": 1}))
    assert _row(muxly_engine, row_id)["status"] == "failed"
    upsert_execution(muxly_engine, ExecutionUpdate(**{**base.__dict__, "status": "running", "attempt": 2}))
    row = _row(muxly_engine, row_id)
    assert (row["status"], row["attempt"], row["end_time"]) == ("running", 2, None)
    upsert_execution(muxly_engine, ExecutionUpdate(**{**base.__dict__, "status": "queued"}))
    assert _row(muxly_engine, row_id)["status"] == "running"

    upsert_execution(
        muxly_engine,
        ExecutionUpdate(
            **{**base.__dict__, "status": "success", "result": {"records_in": 3}, "clear_error": True}
        ),
    )
    row = _row(muxly_engine, row_id)
    assert row["status"] == "success"
    assert "error" not in row["result"]
    assert row["result"] == {"dag_id": "muxly__j", "run_id": "r1", "records_in": 3}
