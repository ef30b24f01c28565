"""``airflow muxly doctor``: each check on real databases and a real S3-compatible store, then the CLI itself."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from muxly_provider import doctor
from muxly_provider.db.engine import get_engine
from muxly_provider.db.migrate import upgrade
from muxly_provider.db.models import metadata
from tests.s3_helpers import aws_connection_json, create_bucket, free_port

AIRFLOW = Path(sys.executable).with_name("airflow")


def _checks(write_fingerprint: bool = True) -> dict[str, doctor.Check]:
    return {check.name: check for check in doctor.run_checks(write_fingerprint).checks}


@pytest.fixture
def ready(db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A migrated Muxly database, a local staging folder, LocalExecutor: every check passes."""
    upgrade(db_url)
    monkeypatch.setenv("AIRFLOW__MUXLY__STAGING_PATH", str(tmp_path / "staging"))
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "LocalExecutor")
    monkeypatch.setenv("AIRFLOW__MUXLY__MACHINE_ROLE", "worker")
    return db_url


def test_a_ready_machine_passes_every_check_and_records_its_settings(ready: str) -> None:
    report = doctor.run_checks()

    assert not report.failed
    assert {check.name: check.status for check in report.checks} == {
        "database_url": "ok",
        "database_reachable": "ok",
        "database_migrated": "ok",
        "fernet_key": "ok",
        "staging": "ok",
        "local_paths": "ok",
        "dag_processor_order": "ok",
        "settings_agree": "ok",
    }
    table = metadata.tables["machine_settings"]
    with get_engine().connect() as conn:
        rows = conn.execute(select(table)).mappings().all()
    assert [(row["role"], row["fingerprint"]) for row in rows] == [
        ("worker", doctor.fingerprint_of(doctor.fingerprint_settings(ready)))
    ]
    stored = json.loads(rows[0]["settings"])
    assert set(stored) == set(doctor.FINGERPRINT_KEYS)
    assert os.environ["AIRFLOW__CORE__FERNET_KEY"] not in rows[0]["settings"]  # only a short hash
    assert "@" not in stored["database"]  # no user, no password


def test_server_airflow_database_without_muxly_url_fails_naming_the_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", "postgresql://af:secret@db.example/airflow")
    monkeypatch.delenv("AIRFLOW__MUXLY__SQL_ALCHEMY_CONN")

    checks = _checks()

    assert checks["database_url"].status == "failed"
    assert "Airflow runs on postgresql" in checks["database_url"].detail
    assert "secret" not in checks["database_url"].detail
    assert "AIRFLOW__MUXLY__SQL_ALCHEMY_CONN" in checks["database_url"].fix
    assert checks["database_reachable"].status == "skipped"
    assert checks["settings_agree"].status == "skipped"
    assert not (tmp_path / "muxly.db").exists()


def test_unreachable_database_fails_within_the_connect_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW__MUXLY__SQL_ALCHEMY_CONN", f"postgresql+psycopg2://u:pw@127.0.0.1:{free_port()}/x"
    )
    monkeypatch.setenv("AIRFLOW__MUXLY__DB_CONNECT_TIMEOUT", "2")

    checks = _checks()

    assert checks["database_url"].status == "ok"
    assert checks["database_reachable"].status == "failed"
    assert "[muxly] db_connect_timeout" in checks["database_reachable"].detail
    assert "[muxly] sql_alchemy_conn" in checks["database_reachable"].fix
    assert checks["database_migrated"].status == "skipped"


def test_unmigrated_database_fails_until_migrated(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if db_url.startswith("sqlite"):
        checks = _checks()
        assert checks["database_reachable"].status == "failed"  # the file does not exist yet
        assert "does not exist yet" in checks["database_reachable"].detail
        Path(db_url.removeprefix("sqlite:///")).touch()

    checks = _checks()
    assert checks["database_reachable"].status == "ok"
    assert checks["database_migrated"].status == "failed"
    assert "airflow db migrate" in checks["database_migrated"].fix

    upgrade(db_url)
    assert _checks()["database_migrated"].status == "ok"


@pytest.mark.parametrize(
    ("key", "found"), [("", "set [core] fernet_key"), ("not-a-key", "not a valid Fernet key")]
)
def test_missing_or_invalid_fernet_key_fails(
    ready: str, monkeypatch: pytest.MonkeyPatch, key: str, found: str
) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", key)

    check = _checks()["fernet_key"]

    assert check.status == "failed"
    assert found in check.detail
    assert "[core] fernet_key" in check.fix


def test_staging_that_cannot_be_written_fails_naming_the_settings(
    ready: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    monkeypatch.setenv("AIRFLOW__MUXLY__STAGING_PATH", str(tmp_path / "a-file" / "staging"))

    check = _checks()["staging"]

    assert check.status == "failed"
    assert "[muxly] staging_path" in check.fix


def test_staging_on_s3_through_the_staging_connection(
    ready: str,
    moto_s3: object,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from tests.s3_helpers import list_keys

    endpoint = moto_s3.endpoint_url  # type: ignore[attr-defined]
    bucket = create_bucket(endpoint)
    # Connection ids of this test only: Airflow caches a connection's filesystem per process, and other tests
    # (with their own moto server) use "muxly_s3".
    monkeypatch.setenv("AIRFLOW_CONN_MUXLY_DOCTOR_S3", moto_s3.connection_json())  # type: ignore[attr-defined]
    monkeypatch.setenv("AIRFLOW__MUXLY__STAGING_PATH", f"s3://{bucket}/staging")
    monkeypatch.setenv("AIRFLOW__MUXLY__STAGING_CONN_ID", "muxly_doctor_s3")

    check = _checks()["staging"]
    assert check.status == "ok", check
    assert f"s3://{bucket}/staging" in check.detail
    assert list_keys(endpoint, bucket) == []  # the probe object was deleted

    # A store that does not answer (the connection's endpoint_url on a closed port) fails, naming the settings.
    monkeypatch.setenv(
        "AIRFLOW_CONN_MUXLY_DOCTOR_S3_DEAD",
        aws_connection_json(
            f"http://127.0.0.1:{free_port()}",
            config_kwargs={"retries": {"max_attempts": 1}, "connect_timeout": 1},
        ),
    )
    monkeypatch.setenv("AIRFLOW__MUXLY__STAGING_CONN_ID", "muxly_doctor_s3_dead")
    started = time.monotonic()
    failed = _checks()["staging"]
    assert failed.status == "failed", failed
    assert "[muxly] staging_conn_id" in failed.fix
    assert time.monotonic() - started < 120


def test_local_paths_with_a_remote_executor(ready: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__EXECUTOR", "CeleryExecutor")

    check = _checks()["local_paths"]
    assert check.status == "failed"
    assert "is a local folder while [core] executor is CeleryExecutor" in check.detail
    assert "[muxly] staging_path" in check.fix and "[muxly] staging_conn_id" in check.fix

    monkeypatch.setenv("AIRFLOW__MUXLY__STAGING_PATH", "s3://bucket/staging")
    check = _checks()["local_paths"]
    assert check.status == "warning"
    assert "[muxly] files_root" in check.detail


def test_shard_files_with_the_modified_time_order_are_a_warning(
    ready: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__MUXLY__DAG_FILE_SHARDS", "20")
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__FILE_PARSING_SORT_MODE", "modified_time")
    check = _checks()["dag_processor_order"]
    assert check.status == "warning", check
    assert "file_parsing_sort_mode = alphabetical" in check.fix

    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__FILE_PARSING_SORT_MODE", "alphabetical")
    assert _checks()["dag_processor_order"].status == "ok"
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__FILE_PARSING_SORT_MODE", "modified_time")
    monkeypatch.setenv("AIRFLOW__MUXLY__DAG_FILE_SHARDS", "1")
    assert _checks()["dag_processor_order"].status == "ok"


def test_settings_that_disagree_with_another_machine_are_listed(ready: str) -> None:
    values = doctor.fingerprint_settings(ready)
    same = dict(values)
    other = {**values, "staging_path": "/elsewhere", "fernet_key_sha256": "0" * 12}
    table = metadata.tables["machine_settings"]
    with get_engine().begin() as conn:
        for host, settings in (("same-host", same), ("api-host", other)):
            conn.execute(
                insert(table).values(
                    hostname=host,
                    role="api-server",
                    fingerprint=doctor.fingerprint_of(settings),
                    settings=json.dumps(settings),
                )
            )

    report = doctor.run_checks()
    check = {c.name: c for c in report.checks}["settings_agree"]

    assert check.status == "failed"
    assert "api-host (api-server" in check.detail
    assert "same-host" not in check.detail
    assert check.fix == "make [core] fernet_key, [muxly] staging_path the same on every machine"
    assert report.machines[0]["differ"]["staging_path"] == {
        "here": values["staging_path"],
        "there": "/elsewhere",
    }


def test_database_identity_hides_credentials_and_driver() -> None:
    assert doctor.database_identity("postgresql+psycopg2://u:pw@db.example:5433/muxly") == (
        "postgresql://db.example:5433/muxly"
    )
    assert (
        doctor.database_identity("mysql+pymysql://u:pw@db.example/muxly") == "mysql://db.example:3306/muxly"
    )


def test_cli_doctor_in_a_fresh_airflow_home(tmp_path: Path) -> None:
    home = tmp_path / "home"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__FERNET_KEY=os.environ["AIRFLOW__CORE__FERNET_KEY"],
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
    )

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(AIRFLOW), "muxly", *args], env=env, capture_output=True, text=True, timeout=300, check=False
        )

    before = run("doctor")
    assert before.returncode == 1, before.stdout + before.stderr
    assert re.search(r"^database_reachable +FAILED", before.stdout, re.MULTILINE), before.stdout
    assert "fix: run 'airflow db migrate'" in before.stdout
    assert "Muxly is NOT ready on this machine" in before.stdout

    assert run("db", "migrate").returncode == 0
    after = run("doctor", "--output-format", "json")
    assert after.returncode == 0, after.stdout + after.stderr
    report = json.loads(after.stdout)  # nothing but the JSON on stdout
    assert report["ok"] is True
    assert [c["status"] for c in report["checks"]] == ["ok"] * 8

    env["AIRFLOW__CORE__EXECUTOR"] = "CeleryExecutor"
    remote = run("doctor", "--output-format", "json")
    assert remote.returncode == 1
    failed = {c["name"]: c for c in json.loads(remote.stdout)["checks"] if c["status"] == "failed"}
    assert set(failed) == {"database_url", "local_paths"}
    assert "[core] executor is CeleryExecutor" in failed["database_url"]["detail"]
