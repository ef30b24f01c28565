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


def test_a_shard_reads_only_its_jobs_in_full(seeded: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shard filter: the shard's jobs whole (and their connectors), the others as id/enabled/connector only;
    the DAGs are the ones the full snapshot gives."""
    from muxly_provider.dag_factory.register import shard_of
    from muxly_provider.dag_factory.specs import build_job_specs
    from muxly_provider.db.snapshot import load_factory_snapshot

    monkeypatch.setenv("AIRFLOW__MUXLY__DAG_FILE_SHARDS", "3")
    with seeded.begin() as conn:  # a row written by plain SQL, never through Muxly
        conn.execute(
            text(
                "INSERT INTO scheduler_jobs (id, name, job_type, schedule, connector_id, action_type, "
                "action_params) VALUES ('plain_sql', 'p', 'cron', '0 1 * * *', 'c1', 'sync', '{}')"
            )
        )
    full = load_factory_snapshot()
    for shard in range(3):
        mine = lambda job_id, s=shard: shard_of(job_id, 3) == s  # noqa: E731
        part = load_factory_snapshot(jobs=mine)
        whole = [r for r in part.rows("scheduler_jobs") if "schedule" in r]
        stubs = [r for r in part.rows("scheduler_jobs") if "schedule" not in r]
        assert sorted(r["id"] for r in whole) == sorted(j for j in [*JOBS, "plain_sql"] if mine(j))
        assert all(set(r) == {"id", "enabled", "connector_id"} and not mine(r["id"]) for r in stubs)
        assert len(whole) + len(stubs) == len(JOBS) + 1
        assert build_job_specs(part, mine) == build_job_specs(full, mine)
        assert set(_parse(shard=shard)) == {f"muxly__{j}" for j in [*JOBS, "plain_sql"] if mine(j)}


def test_unchanged_rows_skip_validation_changed_rows_do_not(
    seeded: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The last-good cache remembers digests of valid rows and DAGs; it only saves work, never hides a change."""
    from muxly_provider.dag_factory import builder, specs
    from muxly_provider.dag_factory.register import _cache_path

    _cache_path(None).unlink(missing_ok=True)  # another test's parse of the same rows would be remembered
    validated: list[str] = []
    real_validate = specs._validate
    monkeypatch.setattr(specs, "_validate", lambda t, r: (validated.append(r["id"]), real_validate(t, r)))
    checked: list[bool] = []
    real_build = builder.build_dag
    monkeypatch.setattr(
        builder,
        "build_dag",
        lambda s, validate=True: (checked.append(validate), real_build(s, validate=validate))[1],
    )
    first = _parse()
    assert sorted(validated) == sorted([*JOBS, "c1"]) and checked == [True] * len(JOBS)
    validated.clear()
    checked.clear()
    second = _parse()
    assert validated == [] and checked == [False] * len(JOBS)
    assert {k: _serialized(v) for k, v in first.items()} == {k: _serialized(v) for k, v in second.items()}
    with seeded.begin() as conn:
        conn.execute(text("UPDATE scheduler_jobs SET backoff_strategy = 'bogus' WHERE id = 'job_03'"))
        conn.execute(text("UPDATE scheduler_jobs SET max_retries = 9 WHERE id = 'job_04'"))
    checked.clear()
    third = _parse()
    assert sorted(validated) == ["job_03", "job_04"]
    assert "muxly__job_03" not in third
    assert third["muxly__job_04"].default_args["retries"] == 9
    assert checked.count(True) == 1  # job_04's spec changed: its DAG is checked again


def test_a_cache_of_other_code_is_not_trusted(seeded: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    from muxly_provider.dag_factory import specs
    from muxly_provider.dag_factory.register import _cache_path

    _parse()
    path = _cache_path(None)
    data = json.loads(path.read_text())
    data["code"] = "another version"
    path.write_text(json.dumps(data))
    validated: list[str] = []
    real_validate = specs._validate
    monkeypatch.setattr(specs, "_validate", lambda t, r: (validated.append(r["id"]), real_validate(t, r)))
    _parse()
    assert sorted(validated) == sorted([*JOBS, "c1"])
