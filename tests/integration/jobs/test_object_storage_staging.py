"""Staging on object storage through real runs (``dag.test()``) on moto's S3 server: ``[muxly] staging_path`` is
``s3://<bucket>/staging`` reached through the Airflow connection ``[muxly] staging_conn_id`` (an ``aws``
connection whose extras hold ``endpoint_url`` and keys). Extract writes the shares there, each delivery reads its
share from there (never from a local folder), cleanup removes the run's objects, and the records are delivered.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from tests.integration.jobs.test_staged_runs import RECORDS, _dag, _execution, _seed, _states
from tests.s3_helpers import MotoServer, create_bucket, list_keys, read_object
from tests.unit.connectors.fake_servers import LocalServer, Reply, Request

pytestmark = pytest.mark.usefixtures("airflow_db")


@pytest.fixture
def sales_api() -> Iterator[str]:
    from examples.sample_api import make_server, start_in_thread

    server = make_server(records=RECORDS)
    start_in_thread(server)
    yield f"http://127.0.0.1:{server.server_address[1]}/api/v1/sales"
    server.shutdown()


@pytest.fixture
def s3_staging(moto_s3: MotoServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """Staging on a new bucket of the moto server, through the connection ``muxly_s3``; returns the bucket."""
    bucket = create_bucket(moto_s3.endpoint_url)
    monkeypatch.setenv("AIRFLOW_CONN_MUXLY_S3", moto_s3.connection_json())
    monkeypatch.setenv("AIRFLOW__MUXLY__STAGING_PATH", f"s3://{bucket}/staging")
    monkeypatch.setenv("AIRFLOW__MUXLY__STAGING_CONN_ID", "muxly_s3")
    monkeypatch.setenv("AIRFLOW__MUXLY__FILES_ROOT", str(tmp_path))
    return bucket


def _objects(moto: MotoServer, bucket: str, prefix: str) -> list[dict[str, Any]]:
    records = []
    for key in list_keys(moto.endpoint_url, bucket, prefix):
        records.extend(json.loads(line) for line in read_object(moto.endpoint_url, bucket, key).splitlines())
    return records


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_staged_run_goes_through_object_storage_only(
    muxly_engine: Engine,
    sales_api: str,
    s3_staging: str,
    moto_s3: MotoServer,
    airflow_home: Path,
) -> None:
    bucket = s3_staging
    staged_while_delivering: list[list[str]] = []

    def hook(request: Request) -> Reply:
        # The delivery of "hook" runs now: the run's shares are on S3, where extract wrote them.
        staged_while_delivering.append(list_keys(moto_s3.endpoint_url, bucket, "staging/"))
        return Reply(body={"ok": True})

    with LocalServer(hook) as server:
        _seed(
            muxly_engine,
            sales_api,
            "s3st",
            {
                "files": (
                    "file",
                    {"output_dir": f"s3://{bucket}/out", "conn_id": "muxly_s3", "file_prefix": "sales"},
                ),
                "hook": ("webhook", {"url": server.url + "/hook", "retry_count": 0, "batch_size": 1000}),
            },
            [("s3st_all", None, ["files", "hook"], [])],
        )
        dag = _dag("s3st")
        dag_run = dag.test()

    assert dag_run.state == "success", _states(dag_run)
    # The hook's delivery read its share from S3 (one request: the whole share in one batch).
    [staged] = staged_while_delivering
    run_folder = f"staging/{dag.dag_id}/"
    assert any(k.startswith(run_folder) and k.endswith("shares/hook/batch_000000.jsonl.gz") for k in staged)
    assert any(k.endswith("shares/hook/manifest.json") for k in staged)
    assert any(k.endswith("shares/files/batch_000000.jsonl.gz") for k in staged)
    # Nothing was staged on this machine's disk, and cleanup removed the run's objects.
    assert not (airflow_home / "muxly" / "staging" / dag.dag_id).exists()
    assert list_keys(moto_s3.endpoint_url, bucket, "staging/") == []

    [request] = [r for r in server.requests if r.path == "/hook"]
    assert [r["order_id"] for r in request.json()] == [r["order_id"] for r in RECORDS]
    assert [r["order_id"] for r in _objects(moto_s3, bucket, "out/")] == [r["order_id"] for r in RECORDS]
    result = _execution(muxly_engine, "s3st")
    assert result["status"] == "success"
    for dest in ("files", "hook"):
        counts = result["destinations"][dest]
        assert (counts["routed"], counts["delivered"], counts["lost"]) == (len(RECORDS), len(RECORDS), 0)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_an_unreachable_store_fails_extract_naming_the_staging_settings(
    muxly_engine: Engine, sales_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tests.s3_helpers import aws_connection_json, free_port

    monkeypatch.setenv("AIRFLOW_CONN_MUXLY_S3_DOWN", aws_connection_json(f"http://127.0.0.1:{free_port()}"))
    monkeypatch.setenv("AIRFLOW__MUXLY__STAGING_PATH", "s3://down-bucket/staging")
    monkeypatch.setenv("AIRFLOW__MUXLY__STAGING_CONN_ID", "muxly_s3_down")
    monkeypatch.setenv("AIRFLOW__MUXLY__FILES_ROOT", str(tmp_path))
    _seed(
        muxly_engine,
        sales_api,
        "s3down",
        {"files": ("file", {"output_dir": str(tmp_path / "out"), "file_prefix": "x"})},
        [("s3down_all", None, ["files"], [])],
    )
    dag_run = _dag("s3down").test()

    assert dag_run.state == "failed"
    assert _states(dag_run)["extract"] == "failed"
    result = _execution(muxly_engine, "s3down")
    assert result["status"] == "failed"
    error = result["error"]
    assert (
        "staging_path = 's3://down-bucket/staging'" in error and "staging_conn_id = 'muxly_s3_down'" in error
    )
    assert "EndpointConnectionError" in error


def test_probe_round_trips_and_a_missing_bucket_fails_without_being_created(
    moto_s3: MotoServer,
    s3_staging: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from datetime import UTC, datetime

    from muxly_provider.destinations.base import RunInfo
    from muxly_provider.runtime import staging

    assert staging.probe() == f"s3://{s3_staging}/staging"
    assert list_keys(moto_s3.endpoint_url, s3_staging) == []  # the probe removed its object

    monkeypatch.setenv("AIRFLOW__MUXLY__STAGING_PATH", "s3://muxly-no-such-bucket/staging")
    run = RunInfo("muxly__j", "manual__1", "j", "c", datetime(2026, 1, 1, tzinfo=UTC))
    with pytest.raises(staging.MuxlyStagingError) as caught:
        staging.write_batch(staging.run_folder(run) / "shares" / "d", 0, [{"a": 1}])
    message = str(caught.value)
    assert "NoSuchBucket" in message or "does not exist" in message, message
    assert "staging_path = 's3://muxly-no-such-bucket/staging'" in message
    buckets = [b["Name"] for b in moto_s3.client().list_buckets()["Buckets"]]
    assert "muxly-no-such-bucket" not in buckets
