"""A job written with plain SQL becomes a DAG, runs through Airflow (``dag.test()``), writes its files and
one ``job_executions`` row; bad job rows are isolated and reported."""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from examples.sample_api import make_server, sample_sales, start_in_thread
from tests.db_helpers import insert_row as _insert

pytestmark = pytest.mark.usefixtures("airflow_db", "files_root")

TOKEN = "tok-e2e-123"


@pytest.fixture
def sales_api() -> Iterator[str]:
    server = make_server(token=TOKEN)
    start_in_thread(server)
    yield f"http://127.0.0.1:{server.server_address[1]}/api/v1/sales"
    server.shutdown()


def _seed(engine: Engine, api_url: str, out_dir: Path) -> None:
    _insert(
        engine,
        "connectors",
        id="sales",
        name="Sales",
        connector_type="api",
        auth_settings={"auth_type": "bearer", "params": {"token": TOKEN}},
        connection_settings={"base_url": api_url, "metrics_path": "data.records"},
    )
    _insert(
        engine,
        "destinations",
        id="big",
        name="Big orders",
        destination_type="file",
        config={"output_dir": str(out_dir / "big"), "file_format": "jsonl", "file_prefix": "big"},
    )
    _insert(
        engine,
        "destinations",
        id="us",
        name="US orders",
        destination_type="file",
        config={"output_dir": str(out_dir / "us"), "file_format": "csv"},
    )
    _insert(
        engine,
        "routing_rules",
        id="r_big",
        name="big",
        priority=1,
        condition=json.dumps("purchase_amount > 1000"),
    )
    _insert(
        engine,
        "routing_rules",
        id="r_us",
        name="us",
        priority=2,
        condition=json.dumps({"expression": "country == 'US' OR country == 'GB'"}),
    )
    _insert(
        engine,
        "rule_transformations",
        id="t1",
        rule_id="r_big",
        transformation_type="rename_field",
        config={"from": "purchase_amount", "to": "revenue"},
        sequence_order=1,
    )
    _insert(
        engine,
        "rule_transformations",
        id="t2",
        rule_id="r_big",
        transformation_type="set_field",
        config={"field": "segment", "value": "high"},
        sequence_order=2,
    )
    _insert(
        engine,
        "rule_transformations",
        id="t3",
        rule_id="r_us",
        transformation_type="remove_field",
        config={"field": "internal_notes"},
        sequence_order=1,
    )
    _insert(engine, "rule_destinations", rule_id="r_big", destination_id="big")
    _insert(engine, "rule_destinations", rule_id="r_us", destination_id="us")
    _insert(engine, "routes", id="main", name="Main", connector_id="sales")
    _insert(engine, "route_rules", route_id="main", rule_id="r_big", sequence_order=1)
    _insert(engine, "route_rules", route_id="main", rule_id="r_us", sequence_order=2)
    _insert(
        engine,
        "scheduler_jobs",
        id="sales.sync/daily",
        name="Daily sales",
        job_type="cron",
        schedule="@daily",
        connector_id="sales",
        action_type="sync",
        action_params={"data_spec": {"query_params": {"day": "${YESTERDAY}"}}},
        max_retries=0,
    )
    # Three bad rows: a broken cron, an unknown connector type, invalid JSON.
    _insert(
        engine,
        "connectors",
        id="ftp",
        name="FTP",
        connector_type="ftp",
        auth_settings={"auth_type": "none"},
        connection_settings={},
    )
    _insert(
        engine,
        "scheduler_jobs",
        id="bad_cron",
        name="Bad cron",
        job_type="cron",
        schedule="61 * * * *",
        connector_id="sales",
        action_type="sync",
        action_params={},
    )
    _insert(
        engine,
        "scheduler_jobs",
        id="bad_connector",
        name="Bad connector",
        job_type="manual",
        connector_id="ftp",
        action_type="sync",
        action_params={},
    )
    _insert(
        engine,
        "scheduler_jobs",
        id="bad_json",
        name="Bad JSON",
        job_type="manual",
        connector_id="sales",
        action_type="sync",
        action_params="{not json",
    )
    _insert(
        engine,
        "scheduler_jobs",
        id="manual_export",
        name="Export all",
        job_type="manual",
        connector_id="sales",
        action_type="export",
        action_params={"destination_ids": ["big"]},
        max_retries=0,
    )


def _execution(engine: Engine, job_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        rows = (
            conn.execute(text("SELECT * FROM job_executions WHERE job_id = :j"), {"j": job_id})
            .mappings()
            .all()
        )
    assert len(rows) == 1, rows
    row = dict(rows[0])
    row["result"] = json.loads(row["result"])
    return row


def test_job_rows_become_dags_and_run_end_to_end(
    muxly_engine: Engine, sales_api: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from muxly_provider.cli.jobs_command import validate_jobs
    from muxly_provider.dag_factory.register import register_dags

    _seed(muxly_engine, sales_api, tmp_path)
    namespace: dict[str, Any] = {}
    register_dags(namespace)
    assert sorted(namespace) == ["muxly__manual_export", "muxly__sales.sync_daily"]
    dag = namespace["muxly__sales.sync_daily"]
    assert dag.tags == {"muxly", "muxly:sales"}
    assert "Connector:** `sales`" in dag.doc_md and "`big` (file)" in dag.doc_md
    assert TOKEN not in json.dumps(dag.doc_md)

    capsys.readouterr()  # drop the factory's warnings about the bad rows
    with pytest.raises(SystemExit) as exit_info:
        validate_jobs(argparse.Namespace(output_format="json"))
    assert exit_info.value.code == 1
    problems = {p["job_id"]: p for p in json.loads(capsys.readouterr().out)}
    assert set(problems) == {"bad_cron", "bad_connector", "bad_json"}
    assert "schedule" in problems["bad_cron"]["field"]
    assert "ftp" in problems["bad_connector"]["reason"]
    assert "action_params" in problems["bad_json"]["field"]

    assert set(dag.task_ids) == {"extract", "deliver__big", "deliver__us", "cleanup"}
    dag_run = dag.test()
    assert dag_run.state == "success"
    # The extract task staged the records outside XCom (only the manifest went there); cleanup removed them.
    manifest = next(ti for ti in dag_run.get_task_instances() if ti.task_id == "extract").xcom_pull(
        task_ids="extract"
    )
    assert manifest["records_in"] == 20
    # Routed once by extract: each destination's share staged apart, with its own batches.
    assert set(manifest["shares"]) == {"big", "us"}
    assert all(share["batches"] >= 1 for share in manifest["shares"].values())
    from muxly_provider import settings

    staged = Path(settings.staging_path()) / "muxly__sales.sync_daily"
    assert not staged.exists() or not any(staged.iterdir())

    records = sample_sales()
    big = [r for r in records if r["purchase_amount"] > 1000]
    us = [r for r in records if r["country"] in ("US", "GB")]
    execution = _execution(muxly_engine, "sales.sync/daily")
    assert execution["status"] == "success"
    assert execution["triggered_by"] == "manual"
    assert execution["attempt"] == 1
    assert execution["end_time"] is not None
    result = execution["result"]
    assert result["dag_id"] == "muxly__sales.sync_daily" and result["run_id"] == dag_run.run_id
    assert result["records_in"] == len(records)
    assert result["destinations"]["big"]["delivered"] == len(big)
    assert result["destinations"]["us"]["delivered"] == len(us)
    assert result["destinations"]["big"]["failed"] == 0
    assert result["unmatched"] == len([r for r in records if r not in big and r not in us])
    assert result["dead_lettered"] == 0
    assert "duration_seconds" in result
    assert TOKEN not in json.dumps(result)

    [big_file] = (tmp_path / "big").iterdir()
    written = [json.loads(line) for line in big_file.read_text().splitlines()]
    assert [w["order_id"] for w in written] == [r["order_id"] for r in big]
    assert all(w["segment"] == "high" and "revenue" in w and "purchase_amount" not in w for w in written)
    [us_file] = (tmp_path / "us").iterdir()
    with open(us_file, newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["order_id"] for r in rows] == [r["order_id"] for r in us]
    assert "internal_notes" not in rows[0]


def test_secrets_written_by_plain_sql_and_connector_failure_recorded(
    muxly_engine: Engine, tmp_path: Path
) -> None:
    """A run whose API is down ends failed with the connector named in the result."""
    from muxly_provider.dag_factory.register import register_dags

    _seed(muxly_engine, "http://127.0.0.1:9/api/v1/sales", tmp_path)
    namespace: dict[str, Any] = {}
    register_dags(namespace)
    dag_run = namespace["muxly__manual_export"].test()
    assert dag_run.state == "failed"
    execution = _execution(muxly_engine, "manual_export")
    assert execution["status"] == "failed"
    assert "connector 'sales'" in execution["result"]["error"]
    assert TOKEN not in json.dumps(execution["result"])
