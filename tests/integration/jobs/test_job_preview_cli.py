"""``airflow muxly jobs preview``: rows written as Muxly writes them (secrets encrypted), the connector a loopback
API, on SQLite and PostgreSQL; a ``--sample`` file instead of the connector; nothing written or recorded."""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, func, select

from muxly_provider.cli.jobs_command import preview_job
from muxly_provider.crypto import encrypt_row_secrets
from tests.db_helpers import insert_row
from tests.unit.connectors.fake_servers import LocalServer, Reply, Request

TOKEN = "cli-token-9d8c7b6a"


def _row(engine: Engine, table: str, **values: Any) -> None:
    insert_row(engine, table, **encrypt_row_secrets(table, values))


@pytest.fixture
def source() -> Iterator[LocalServer]:
    def orders(request: Request) -> Reply:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        day = request.query.get("day")
        return Reply(200, [{"id": i, "total": 50 * i, "day": day, "secret": TOKEN} for i in range(1, 21)])

    with LocalServer(orders) as server:
        yield server


@pytest.fixture
def job(muxly_engine: Engine, files_root: Path, source: LocalServer) -> str:
    _row(
        muxly_engine,
        "connectors",
        id="shop",
        name="Shop",
        connector_type="api",
        auth_settings={"auth_type": "bearer", "params": {"token": TOKEN}},
        connection_settings={"base_url": source.url + "/orders", "query_params": {"day": "${DATE}"}},
    )
    _row(
        muxly_engine,
        "destinations",
        id="files",
        name="Files",
        destination_type="file",
        config={"output_dir": "out", "file_format": "jsonl"},
    )
    _row(muxly_engine, "routing_rules", id="big", name="Big", condition=json.dumps("total > 100"))
    _row(
        muxly_engine,
        "rule_transformations",
        id="cut",
        rule_id="big",
        transformation_type="remove_field",
        config={"field": "secret"},
        sequence_order=1,
    )
    _row(
        muxly_engine,
        "rule_transformations",
        id="mark",
        rule_id="big",
        transformation_type="set_field",
        config={"field": "meta.seen", "value": True},
        sequence_order=2,
    )
    _row(muxly_engine, "rule_destinations", rule_id="big", destination_id="files")
    _row(muxly_engine, "routes", id="main", name="Main", connector_id="shop", error_handling={"mode": "fail"})
    _row(muxly_engine, "route_rules", route_id="main", rule_id="big", sequence_order=0)
    _row(
        muxly_engine,
        "scheduler_jobs",
        id="orders",
        name="Orders",
        job_type="manual",
        connector_id="shop",
        action_type="sync",
        action_params={},
    )
    return "orders"


def _run(capsys: pytest.CaptureFixture[str], **options: Any) -> tuple[int, str, str]:
    args = {"job_id": "orders", "limit": None, "sample": None, "output_format": "table", **options}
    try:
        preview_job(argparse.Namespace(**args))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _executions(engine: Engine) -> int:
    from muxly_provider.db.models import JobExecution

    with engine.connect() as conn:
        return int(conn.execute(select(func.count()).select_from(JobExecution)).scalar_one())


def test_preview_prints_what_each_destination_would_get(
    job: str, muxly_engine: Engine, files_root: Path, source: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = _run(capsys, limit=4)
    assert code == 0, out
    lines = out.splitlines()
    assert lines[0] == "Preview of job orders (sync): 4 record(s) from the connector (more were there)"
    assert "destination files (file): 2 record(s), 2 line(s)" in lines
    day = source.requests[0].query["day"]
    assert f'  {{"id": 3, "total": 150, "day": "{day}", "meta": {{"seen": true}}}}' in lines
    assert lines[-1] == "Nothing was written and no execution was recorded."
    code, out, _ = _run(capsys, limit=4, output_format="json")
    preview = json.loads(out)
    assert preview["unmatched"] == 2 and preview["destinations"][0]["routed"] == 2
    assert TOKEN not in out
    assert not (files_root / "out").exists() and _executions(muxly_engine) == 0


def test_sample_files_and_a_failing_route(
    job: str, files_root: Path, source: LocalServer, capsys: pytest.CaptureFixture[str]
) -> None:
    sample = files_root / "sample.jsonl"
    sample.write_text('{"id": 1, "total": 500}\n\n{"id": 2, "total": 1}\n{"id": 3, "total": 900}\n')
    code, out, _ = _run(capsys, sample=str(sample), limit=2, output_format="json")
    assert code == 0
    preview = json.loads(out)
    assert preview["source"] == "records" and preview["records_in"] == 2 and preview["truncated"] is True
    assert preview["destinations"][0]["rendered"] == ['{"id": 1, "total": 500, "meta": {"seen": true}}']
    assert source.requests == []
    listed = files_root / "sample.json"
    listed.write_text(json.dumps([{"id": 1, "total": 500, "meta": "text"}, {"id": 2, "total": 700}]))
    code, out, _ = _run(capsys, sample=str(listed))
    assert code == 1  # the route is in "fail" mode: a run would fail at the first record
    assert "the run would fail: route 'main', rule 'big'" in out and "meta" in out
    bad = files_root / "bad.jsonl"
    bad.write_text('{"id": 1}\nnot json\n')
    code, _, err = _run(capsys, sample=str(bad))
    assert code == 1 and f"--sample {bad}: line 2 is not JSON" in err
    code, _, err = _run(capsys, sample=str(files_root / "missing.json"))
    assert code == 1 and "cannot be read" in err
    code, _, err = _run(capsys, job_id="nope")
    assert code == 1 and "cannot preview job 'nope'" in err
