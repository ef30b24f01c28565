"""The DAG factory: one query per parse, deterministic, survives an outage, shards, worker-side parse."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import Engine, event, text

from tests.db_helpers import insert_row as _insert

JOBS = [f"job_{i:02d}" for i in range(12)]


@pytest.fixture
def seeded(muxly_engine: Engine) -> Engine:
    _insert(
        muxly_engine,
        "connectors",
        id="c1",
        name="C1",
        connector_type="api",
        auth_settings={"auth_type": "bearer", "params": {"token": "tok-secret-1"}},
        connection_settings={"base_url": "http://127.0.0.1:9/x"},
    )
    _insert(
        muxly_engine, "destinations", id="d1", name="D1", destination_type="file", config={"output_dir": "x"}
    )
    _insert(muxly_engine, "routing_rules", id="r1", name="R1")
    _insert(muxly_engine, "rule_destinations", rule_id="r1", destination_id="d1")
    _insert(muxly_engine, "routes", id="rt1", name="RT1", connector_id="c1")
    _insert(muxly_engine, "route_rules", route_id="rt1", rule_id="r1")
    for job_id in JOBS:
        _insert(
            muxly_engine,
            "scheduler_jobs",
            id=job_id,
            name=job_id,
            job_type="cron",
            schedule="*/5 * * * *",
            connector_id="c1",
            action_type="sync",
            action_params={"timezone": "Europe/Berlin"},
        )
    return muxly_engine


@pytest.fixture
def query_counter(seeded: Engine) -> Iterator[list[str]]:
    statements: list[str] = []

    def count(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    event.listen(seeded, "before_cursor_execute", count)
    yield statements
    event.remove(seeded, "before_cursor_execute", count)


def _parse(shard: int | None = None) -> dict[str, Any]:
    from muxly_provider.dag_factory.register import register_dags

    namespace: dict[str, Any] = {}
    register_dags(namespace, shard=shard)
    return namespace


def _serialized(dag: Any) -> str:
    from airflow.serialization.serialized_objects import DagSerialization

    return json.dumps(DagSerialization.to_dict(dag), sort_keys=True, default=str)


def test_one_query_per_parse_and_deterministic_output(seeded: Engine, query_counter: list[str]) -> None:
    first = _parse()
    assert len(query_counter) == 1
    assert sorted(first) == [f"muxly__{j}" for j in JOBS]
    second = _parse()
    assert {k: _serialized(v) for k, v in first.items()} == {k: _serialized(v) for k, v in second.items()}
    assert "tok-secret-1" not in "".join(_serialized(v) for v in first.values())
    dag = first["muxly__job_00"]
    assert dag.timetable.expression == "*/5 * * * *"


def test_a_changed_row_changes_its_dag(seeded: Engine) -> None:
    before = _parse()
    with seeded.begin() as conn:
        conn.execute(
            text("UPDATE scheduler_jobs SET schedule = '0 3 * * *', max_retries = 7 WHERE id = 'job_01'")
        )
        conn.execute(text("UPDATE scheduler_jobs SET enabled = :f WHERE id = 'job_02'"), {"f": False})
    after = _parse()
    assert "muxly__job_02" not in after
    assert after["muxly__job_01"].timetable.expression == "0 3 * * *"
    assert after["muxly__job_01"].default_args["retries"] == 7
    assert _serialized(before["muxly__job_03"]) == _serialized(after["muxly__job_03"])


def test_outage_keeps_the_last_good_dags(seeded: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from muxly_provider.db.engine import dispose_engines

    good = _parse()
    monkeypatch.setenv("AIRFLOW__MUXLY__SQL_ALCHEMY_CONN", "postgresql+psycopg2://postgres@127.0.0.1:1/none")
    dispose_engines()
    during = _parse()
    assert sorted(during) == sorted(good)
    assert {k: _serialized(v) for k, v in during.items()} == {k: _serialized(v) for k, v in good.items()}


def test_shards_split_the_jobs(seeded: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from muxly_provider.dag_factory.register import shard_of

    monkeypatch.setenv("AIRFLOW__MUXLY__DAG_FILE_SHARDS", "3")
    assert _parse() == {}
    parts = [set(_parse(shard=i)) for i in range(3)]
    assert set().union(*parts) == {f"muxly__{j}" for j in JOBS}
    assert sum(len(p) for p in parts) == len(JOBS)
    assert all(parts)
    assert all(f"muxly__{j}" in parts[shard_of(j, 3)] for j in JOBS)
    assert _parse(shard=5) == {}


def test_worker_builds_only_its_dag(
    seeded: Engine, query_counter: list[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_DAG_ID", "muxly__job_07")
    monkeypatch.setenv("_AIRFLOW_PARSING_CONTEXT_TASK_ID", "run_job")
    assert sorted(_parse()) == ["muxly__job_07"]
    assert len(query_counter) == 1


def test_dagbag_of_the_dag_file_has_no_import_error(seeded: Engine) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from tests.airflow_helpers import DAGS_DIR

    _insert(
        seeded,
        "scheduler_jobs",
        id="broken",
        name="b",
        job_type="cron",
        schedule="not cron",
        connector_id="c1",
        action_type="sync",
        action_params={},
    )
    bag = DagBag(dag_folder=DAGS_DIR, bundle_path=DAGS_DIR, bundle_name="dags-folder")
    assert bag.import_errors == {}
    assert sorted(bag.dags) == [f"muxly__{j}" for j in JOBS]
