"""Staging settings: the manifest URL carries no connection, a reading worker attaches its own and stays below
its ``staging_path``, and the errors name the setting or the extra to install."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from muxly_provider.destinations.base import RunInfo
from muxly_provider.runtime import staging
from muxly_provider.runtime.staging import MuxlyStagingError

RUN = RunInfo("muxly__job", "manual__1", "job", "api", datetime(2026, 1, 1, tzinfo=UTC))


@pytest.fixture
def local_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "staging"
    monkeypatch.setenv("AIRFLOW__MUXLY__STAGING_PATH", str(root))
    monkeypatch.delenv("AIRFLOW__MUXLY__STAGING_CONN_ID", raising=False)
    return root


def test_a_run_folder_round_trips_through_its_manifest_url(local_root: Path) -> None:
    uri = staging.run_uri(RUN)
    assert uri == f"file://{local_root}/muxly__job/{RUN.run_key}"
    folder = staging.open_run(uri)
    staging.write_batch(folder / "shares" / "d", 0, [{"a": 1}])
    manifest = {"path": "shares/d", "batches": 1, "records": 1}
    assert list(staging.read_share(uri, manifest)) == [[{"a": 1}]]
    assert (local_root / "muxly__job" / RUN.run_key / "shares" / "d" / "batch_000000.jsonl.gz").is_file()
    staging.cleanup(uri)
    assert not (local_root / "muxly__job" / RUN.run_key).exists()


@pytest.mark.parametrize(
    "uri",
    [
        "file:///etc",
        "file://{root}",  # the root itself: cleanup would remove every run's staging
        "file://{root}/../elsewhere/run",
        "file://{root}/dag/../../elsewhere",
        "file://{root}-other/dag/run",
        "s3://bucket{root}/dag/run",
        "file://{root}/dag/run?x=1",
    ],
)
def test_a_manifest_cannot_point_outside_staging_path(local_root: Path, uri: str) -> None:
    victim = local_root.parent / "elsewhere"
    victim.mkdir()
    with pytest.raises(MuxlyStagingError, match=r"not below this machine's \[muxly\] staging_path"):
        staging.cleanup(uri.format(root=local_root))
    assert victim.exists()


def test_a_share_path_from_a_manifest_stays_inside_the_run_folder(local_root: Path) -> None:
    uri = staging.run_uri(RUN)
    for path in ("../other/shares/d", "/abs", "", "shares/../../x"):
        with pytest.raises(MuxlyStagingError, match="not a plain relative path"):
            list(staging.read_share(uri, {"path": path, "batches": 1, "records": 1}))


def test_the_reading_worker_uses_its_own_connection_not_one_named_in_the_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AIRFLOW__MUXLY__STAGING_PATH", "s3://bucket/staging")
    monkeypatch.setenv("AIRFLOW__MUXLY__STAGING_CONN_ID", "mine")
    monkeypatch.setenv("AIRFLOW_CONN_MINE", '{"conn_type": "aws"}')
    folder = staging.open_run("s3://theirs@bucket/staging/dag/run")
    assert folder.conn_id == "mine"
    assert staging.uri_of(folder) == "s3://bucket/staging/dag/run"
    assert staging.run_uri(RUN) == f"s3://bucket/staging/muxly__job/{RUN.run_key}"
    with pytest.raises(MuxlyStagingError, match="not below"):
        staging.open_run("s3://theirs@other-bucket/staging/dag/run")


def test_s3_staging_without_the_extra_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__MUXLY__STAGING_PATH", "s3://bucket/staging")
    monkeypatch.delenv("AIRFLOW__MUXLY__STAGING_CONN_ID", raising=False)
    monkeypatch.setitem(sys.modules, "s3fs", None)  # what a fresh install without the extra has
    with pytest.raises(MuxlyStagingError) as caught:
        staging.run_folder(RUN)
    message = str(caught.value)
    assert "pip install 'airflow-provider-muxly[s3]'" in message
    assert "staging_path = 's3://bucket/staging'" in message and "s3fs" in message


def test_a_staging_connection_that_does_not_exist_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__MUXLY__STAGING_PATH", "s3://bucket/staging")
    monkeypatch.setenv("AIRFLOW__MUXLY__STAGING_CONN_ID", "no_such_staging_conn")
    # Without this check the S3 filesystem silently falls back to anonymous access on AWS.
    with pytest.raises(MuxlyStagingError, match="staging_conn_id = 'no_such_staging_conn': no such Airflow"):
        staging.run_folder(RUN)


def test_a_relative_local_staging_path_is_made_absolute(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("AIRFLOW__MUXLY__STAGING_PATH", "relative/staging")
    monkeypatch.delenv("AIRFLOW__MUXLY__STAGING_CONN_ID", raising=False)
    uri = staging.run_uri(RUN)
    assert uri == f"file://{tmp_path}/relative/staging/muxly__job/{RUN.run_key}"
    staging.write_batch(staging.open_run(uri), 0, [{"a": 1}])
    assert (
        tmp_path / "relative" / "staging" / "muxly__job" / RUN.run_key / "batch_000000.jsonl.gz"
    ).is_file()
