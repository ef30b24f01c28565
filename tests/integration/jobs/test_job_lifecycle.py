"""run_condition and notifications around a real job run (``dag.test()``)."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from examples.sample_api import make_server, start_in_thread
from tests.db_helpers import insert_row as _insert

pytestmark = pytest.mark.usefixtures("airflow_db", "files_root")


@pytest.fixture
def api_url() -> Iterator[str]:
    server = make_server()
    start_in_thread(server)
    yield f"http://127.0.0.1:{server.server_address[1]}/api/v1/sales"
    server.shutdown()


def _dags() -> dict[str, Any]:
    from muxly_provider.dag_factory.register import register_dags

    namespace: dict[str, Any] = {}
    register_dags(namespace)
    return namespace


def _notes(folder: Path) -> list[dict[str, Any]]:
    return [
        json.loads(line) for path in sorted(folder.glob("*.jsonl")) for line in path.read_text().splitlines()
    ]


def test_run_condition_and_notifications(muxly_engine: Engine, api_url: str, tmp_path: Path) -> None:
    gate = tmp_path / "gate.db"
    with sqlite3.connect(gate) as conn:
        conn.execute("CREATE TABLE gate (open INTEGER)")
        conn.execute("INSERT INTO gate VALUES (0)")
    _insert(
        muxly_engine,
        "connectors",
        id="hk_api",
        name="API",
        connector_type="api",
        auth_settings={"auth_type": "none"},
        connection_settings={"base_url": api_url, "metrics_path": "data.records"},
    )
    _insert(
        muxly_engine,
        "connectors",
        id="hk_down",
        name="Down",
        connector_type="api",
        auth_settings={"auth_type": "none"},
        connection_settings={"base_url": "http://127.0.0.1:9/x"},
    )
    _insert(
        muxly_engine,
        "connectors",
        id="hk_gate",
        name="Gate",
        connector_type="database",
        auth_settings={"auth_type": "none"},
        connection_settings={"connection_string": f"sqlite:///{gate}"},
    )
    _insert(
        muxly_engine,
        "destinations",
        id="hk_out",
        name="Out",
        destination_type="file",
        config={"output_dir": str(tmp_path / "out"), "file_format": "jsonl"},
    )
    _insert(
        muxly_engine,
        "destinations",
        id="hk_notes",
        name="Notes",
        destination_type="file",
        config={"output_dir": str(tmp_path / "notes"), "file_format": "jsonl"},
    )
    notify = {
        "on_success": ["hk_notes"],
        "on_failure": [
            {"destination_id": "hk_notes", "message_template": "${job_id} broke: ${error_message}"}
        ],
    }
    _insert(
        muxly_engine,
        "scheduler_jobs",
        id="hk_gated",
        name="Gated export",
        job_type="manual",
        connector_id="hk_api",
        action_type="export",
        max_retries=0,
        action_params={
            "destination_ids": ["hk_out"],
            "notifications": notify,
            "run_condition": {"connector_id": "hk_gate", "query": "SELECT open FROM gate"},
        },
    )
    _insert(
        muxly_engine,
        "scheduler_jobs",
        id="hk_failing",
        name="Failing export",
        job_type="manual",
        connector_id="hk_down",
        action_type="export",
        max_retries=0,
        action_params={"destination_ids": ["hk_out"], "notifications": notify},
    )
    dags = _dags()
    gated = dags["muxly__hk_gated"]
    assert set(gated.task_ids) == {
        "check_run_condition",
        "extract",
        "deliver__hk_out",
        "cleanup",
        "notify_success",
        "notify_failure",
        "run_failed",
    }

    closed = gated.test()
    assert closed.state == "success"
    states = {ti.task_id: ti.state for ti in closed.get_task_instances()}
    assert states["extract"] == "skipped"
    assert states["deliver__hk_out"] == "skipped"
    assert not (tmp_path / "out").exists()

    with sqlite3.connect(gate) as conn:
        conn.execute("UPDATE gate SET open = 1")
    opened = gated.test()
    assert opened.state == "success"
    assert len(_notes(tmp_path / "out")) == 20
    [note] = _notes(tmp_path / "notes")
    assert note["status"] == "success"
    assert note["job_id"] == "hk_gated"
    assert "succeeded" in note["message"]

    failed = dags["muxly__hk_failing"].test()
    assert failed.state == "failed"
    failure = [n for n in _notes(tmp_path / "notes") if n["status"] == "failed"]
    assert len(failure) == 1
    assert failure[0]["message"].startswith("hk_failing broke: connector 'hk_down'")


def test_a_query_run_condition_needs_a_connector_that_runs_queries(muxly_engine: Engine) -> None:
    """A file connector ignores a query and reads its first record: the condition would hold by chance."""
    from muxly_provider.exceptions import MuxlyConfigError
    from muxly_provider.runtime.lifecycle import run_condition_holds

    _insert(
        muxly_engine,
        "connectors",
        id="files",
        name="files",
        connector_type="file",
        auth_settings={"auth_type": "none"},
        connection_settings={"path": "in.jsonl"},
    )
    for condition in ("a +", {"query": "SELECT 1"}):
        with pytest.raises(MuxlyConfigError, match="a query needs a connector of type bigquery or database"):
            run_condition_holds("j", condition, "files", muxly_engine)


def test_a_lookup_or_run_condition_connectors_secrets_are_masked_in_task_logs(
    muxly_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    import airflow.sdk.log

    from muxly_provider.runtime.loading import connector_context

    masked: list[str] = []
    monkeypatch.setattr(airflow.sdk.log, "mask_secret", masked.append)
    _insert(
        muxly_engine,
        "connectors",
        id="lookup",
        name="lookup",
        connector_type="api",
        auth_settings={"auth_type": "bearer", "params": {"token": "lookup-token-77"}},
        connection_settings={"base_url": "http://127.0.0.1:9/x"},
    )
    connector_context("lookup", muxly_engine)
    assert "lookup-token-77" in masked
