"""Exactly once under a retried delivery: a delivery task's process is SIGKILLed in the middle of its share,
then the task runs again in another process (as Airflow retries it on another worker). Staging is on moto's
S3 server through ``[muxly] staging_conn_id``; each record must then be in PostgreSQL (insert and upsert modes)
and in the file destination on S3 exactly once, and the retry's counts say every record was delivered."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine

from tests.integration.jobs.test_staged_runs import RECORDS, _seed
from tests.s3_helpers import MotoServer, create_bucket, list_keys, read_object

ROOT = Path(__file__).resolve().parents[3]
IDS = [r["order_id"] for r in RECORDS]


@pytest.fixture
def s3_staging(moto_s3: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    bucket = create_bucket(moto_s3.endpoint_url)
    monkeypatch.setenv("AIRFLOW_CONN_MUXLY_S3", moto_s3.connection_json())
    monkeypatch.setenv("AIRFLOW__MUXLY__STAGING_PATH", f"s3://{bucket}/staging")
    monkeypatch.setenv("AIRFLOW__MUXLY__STAGING_CONN_ID", "muxly_s3")
    monkeypatch.setenv("AIRFLOW__MUXLY__FILES_ROOT", str(tmp_path))
    return bucket


@pytest.fixture
def target(postgres_url: str) -> str:
    """The PostgreSQL URL of the database destinations (tables with unique names)."""
    return postgres_url.replace("postgresql+psycopg2://", "postgresql://")


def _deliver(tmp_path: Path, args: dict[str, Any], hang: str) -> subprocess.Popen[str]:
    path = tmp_path / f"args-{uuid.uuid4().hex[:6]}.json"
    path.write_text(json.dumps(args))
    return subprocess.Popen(
        [sys.executable, "-m", "tests.integration.destinations.killed_delivery", str(path), hang],
        cwd=ROOT,
        env=dict(os.environ),
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )


def _wait_ready(proc: subprocess.Popen[str]) -> None:
    """Read the process's output (logs, then ``READY``) until it reaches its hang."""
    assert proc.stdout is not None
    seen = []
    for line in proc.stdout:
        if line.strip() == "READY":
            return
        seen.append(line)
    raise AssertionError("the delivery did not reach its hang:\n" + "".join(seen[-20:]))


def _kill(proc: subprocess.Popen[str]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)


def _finish(proc: subprocess.Popen[str]) -> dict[str, Any]:
    try:
        out, _ = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=30)
    assert proc.returncode == 0, out
    [line] = [line for line in out.splitlines() if line.startswith("{")]
    counts: dict[str, Any] = json.loads(line)
    return counts


def _staged_run(muxly_engine: Engine, job_id: str, destinations: dict[str, Any]) -> dict[str, Any]:
    """Seed a job, route its records once and stage the shares on S3; return what a delivery task gets."""
    from muxly_provider.destinations.base import RunInfo
    from muxly_provider.runtime.loading import load_job_runtime
    from muxly_provider.runtime.runner import route_and_stage

    _seed(
        muxly_engine,
        "http://127.0.0.1:9/unused",
        job_id,
        destinations,
        [(f"{job_id}_all", None, list(destinations), [])],
    )
    run = RunInfo(
        f"muxly__{job_id}", "manual__retry", job_id, f"{job_id}_api", datetime(2026, 12, 2, tzinfo=UTC)
    )
    manifest, _ = route_and_stage(load_job_runtime(job_id, muxly_engine), run, [list(RECORDS)])
    assert manifest["uri"].startswith("s3://")
    return {
        "job_id": job_id,
        "dag_id": run.dag_id,
        "run_id": run.run_id,
        "connector_id": run.connector_id,
        "logical_date": run.logical_date.isoformat(),
        "manifest": manifest,
    }


def _ids(url: str, table: str) -> list[str]:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg2://"))
    try:
        with engine.connect() as conn:
            if not sa.inspect(conn).has_table(table):
                return []
            return [str(r[0]) for r in conn.execute(sa.text(f'SELECT order_id FROM "{table}"'))]
    finally:
        engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
@pytest.mark.parametrize("mode", ["insert", "upsert"])
def test_a_database_delivery_killed_mid_share_and_retried_writes_each_record_once(
    muxly_engine: Engine, s3_staging: str, target: str, tmp_path: Path, mode: str
) -> None:
    table = f"sales_{mode}_{uuid.uuid4().hex[:6]}"
    config: dict[str, Any] = {
        "connection_string": target,
        "table": table,
        "create_table": True,
        "batch_size": 5,
    }
    if mode == "upsert":
        config["upsert_key"] = "order_id"
    args = {**_staged_run(muxly_engine, f"kill{mode}", {"pg": ("database", config)}), "dest_id": "pg"}

    killed = _deliver(tmp_path, args, "database")
    try:
        _wait_ready(killed)
        # Two batches (10 records) are written in the delivery's open transaction: none shows.
        assert _ids(target, table) == []
    finally:
        _kill(killed)
    assert _ids(target, table) == []  # the server rolled the killed try back

    counts = _finish(_deliver(tmp_path, args, "none"))  # the retry, on "another worker"
    assert (counts["routed"], counts["delivered"], counts["lost"], counts["failed"]) == (20, 20, 0, 0)
    ids = _ids(target, table)
    assert Counter(ids) == Counter(IDS) and len(ids) == len(IDS)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_file_delivery_to_s3_killed_mid_upload_and_retried_holds_each_record_once(
    muxly_engine: Engine,
    s3_staging: str,
    moto_s3: MotoServer,
    tmp_path: Path,
) -> None:
    bucket = s3_staging
    config = {
        "output_dir": f"s3://{bucket}/out",
        "conn_id": "muxly_s3",
        "file_prefix": "sales",
        "rotation": "size",
        "max_file_size_mb": 0.001,  # about one batch of 5 records per part: 4 parts
        "batch_size": 5,
    }
    args = {**_staged_run(muxly_engine, "killfiles", {"files": ("file", config)}), "dest_id": "files"}

    killed = _deliver(tmp_path, args, "upload")
    try:
        _wait_ready(killed)
    finally:
        _kill(killed)
    assert len(list_keys(moto_s3.endpoint_url, bucket, "out/")) == 1  # the killed try uploaded one part

    counts = _finish(_deliver(tmp_path, args, "none"))
    assert (counts["routed"], counts["delivered"], counts["lost"]) == (20, 20, 0)
    keys = list_keys(moto_s3.endpoint_url, bucket, "out/")
    assert len(keys) == 4 and len(counts["outputs"]) == 4
    written = [
        json.loads(line)["order_id"]
        for key in keys
        for line in read_object(moto_s3.endpoint_url, bucket, key).decode().splitlines()
    ]
    assert written == IDS  # each record once, in order, across the parts


@pytest.mark.postgres
@pytest.mark.usefixtures("airflow_db")
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_real_run_whose_deliveries_fail_after_their_batches_is_retried_to_exactly_once(
    muxly_engine: Engine,
    s3_staging: str,
    moto_s3: MotoServer,
    target: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """``dag.test()`` with Airflow's task retries: each delivery task's first try fails after every batch was
    written (before its commit), the second try succeeds; PostgreSQL in insert mode and the S3 file hold each
    record once, and the execution row counts every record delivered once."""
    from datetime import timedelta

    from examples.sample_api import make_server, start_in_thread
    from muxly_provider.dag_factory import builder
    from muxly_provider.runtime.delivery import Delivery
    from tests.integration.jobs.test_staged_runs import _dag, _execution, _states

    bucket = s3_staging
    table = f"sales_run_{uuid.uuid4().hex[:6]}"
    failed_once: set[str] = set()
    flush = Delivery.flush

    def failing_flush(self: Delivery) -> None:
        [dest_id] = self.channels
        if dest_id not in failed_once:
            failed_once.add(dest_id)
            raise ConnectionResetError(f"injected: the worker of {dest_id} failed after its batches")
        flush(self)

    monkeypatch.setattr(Delivery, "flush", failing_flush)
    monkeypatch.setattr(builder, "RETRY_DELAY", timedelta(seconds=1))
    server = make_server(records=RECORDS)
    start_in_thread(server)
    try:
        _seed(
            muxly_engine,
            f"http://127.0.0.1:{server.server_address[1]}/api/v1/sales",
            "rerun",
            {
                "pg": (
                    "database",
                    {"connection_string": target, "table": table, "create_table": True, "batch_size": 5},
                ),
                "files": (
                    "file",
                    {"output_dir": f"s3://{bucket}/out", "conn_id": "muxly_s3", "file_prefix": "sales"},
                ),
            },
            [("rerun_all", None, ["pg", "files"], [])],
        )
        with muxly_engine.begin() as conn:
            conn.execute(sa.text("UPDATE scheduler_jobs SET max_retries = 1, backoff_strategy = 'fixed'"))
        dag = _dag("rerun")
        dag_run = dag.test()
    finally:
        server.shutdown()

    assert dag_run.state == "success", _states(dag_run)
    assert failed_once == {"pg", "files"}
    tries = {ti.task_id: ti.try_number for ti in dag_run.get_task_instances()}
    assert tries["deliver__pg"] == 2 and tries["deliver__files"] == 2
    ids = _ids(target, table)
    assert Counter(ids) == Counter(IDS) and len(ids) == len(IDS)
    [key] = list_keys(moto_s3.endpoint_url, bucket, "out/")
    lines = read_object(moto_s3.endpoint_url, bucket, key).decode().splitlines()
    assert [json.loads(line)["order_id"] for line in lines] == IDS
    result = _execution(muxly_engine, "rerun")
    assert result["status"] == "success"
    for dest in ("pg", "files"):
        counts = result["destinations"][dest]
        assert (counts["routed"], counts["delivered"], counts["lost"]) == (20, 20, 0)
