"""The staged DAG shape through real runs (``dag.test()``): records are routed once per run whatever the number
of destinations, what a destination refuses reaches the route's dead-letter destination with its error, disabled
destinations get no task, and destination ids that clean to the same name still get their own tasks."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from examples.sample_api import make_server, sample_sales, start_in_thread
from tests.db_helpers import insert_row as _insert
from tests.integration.destinations.destination_servers import free_port
from tests.unit.connectors.fake_servers import LocalServer, Reply, Request

pytestmark = pytest.mark.usefixtures("airflow_db")

BAD_AMOUNTS = {"ORD-0004", "ORD-0011", "ORD-0017"}
"""Orders whose amount is not a number: the ``net`` formula fails for them (transformation failures)."""


def _records() -> list[dict[str, Any]]:
    records = sample_sales()
    for record in records:
        if record["order_id"] in BAD_AMOUNTS:
            record["purchase_amount"] = "n/a"
    return records


RECORDS = _records()


@pytest.fixture
def sales_api() -> Iterator[str]:
    server = make_server(records=RECORDS)
    start_in_thread(server)
    yield f"http://127.0.0.1:{server.server_address[1]}/api/v1/sales"
    server.shutdown()


@pytest.fixture(autouse=True)
def _files_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__MUXLY__FILES_ROOT", str(tmp_path))


def _file(tmp_path: Path, name: str) -> dict[str, Any]:
    return {"output_dir": str(tmp_path / name), "file_format": "jsonl", "file_prefix": name}


def _written(directory: Path) -> list[dict[str, Any]]:
    if not directory.exists():
        return []
    return [json.loads(line) for f in sorted(directory.iterdir()) for line in f.read_text().splitlines()]


def _seed(
    engine: Engine,
    api_url: str,
    job_id: str,
    destinations: dict[str, tuple[str, dict[str, Any]]],
    rules: list[tuple[str, str | None, list[str], list[dict[str, Any]]]],
    error_handling: dict[str, Any] | None = None,
    disabled: frozenset[str] = frozenset(),
) -> None:
    """A sync job: connector ``<job>_api`` -> route ``<job>_route`` with ``rules`` (id, condition,
    destination ids, transformations) -> ``destinations`` (id -> type, config)."""
    _insert(
        engine,
        "connectors",
        id=f"{job_id}_api",
        name="Sales",
        connector_type="api",
        auth_settings={"auth_type": "none"},
        connection_settings={"base_url": api_url, "metrics_path": "data.records"},
    )
    for dest_id, (kind, config) in destinations.items():
        _insert(
            engine,
            "destinations",
            id=dest_id,
            name=dest_id,
            destination_type=kind,
            config=config,
            enabled=dest_id not in disabled,
        )
    _insert(
        engine,
        "routes",
        id=f"{job_id}_route",
        name="Route",
        connector_id=f"{job_id}_api",
        error_handling=error_handling or {"mode": "continue"},
    )
    for order, (rule_id, condition, targets, steps) in enumerate(rules):
        _insert(
            engine,
            "routing_rules",
            id=rule_id,
            name=rule_id,
            priority=order,
            condition=json.dumps(condition) if condition else None,
        )
        _insert(engine, "route_rules", route_id=f"{job_id}_route", rule_id=rule_id, sequence_order=order)
        for dest_id in targets:
            _insert(engine, "rule_destinations", rule_id=rule_id, destination_id=dest_id)
        for index, step in enumerate(steps):
            _insert(
                engine,
                "rule_transformations",
                id=f"{rule_id}_t{index}",
                rule_id=rule_id,
                transformation_type=step["type"],
                config=step["config"],
                sequence_order=index,
            )
    _insert(
        engine,
        "scheduler_jobs",
        id=job_id,
        name=job_id,
        job_type="manual",
        connector_id=f"{job_id}_api",
        action_type="sync",
        action_params={},
        max_retries=0,
    )


def _dag(job_id: str) -> Any:
    from muxly_provider.dag_factory.register import register_dags

    namespace: dict[str, Any] = {}
    register_dags(namespace)
    return namespace.get(f"muxly__{job_id}")


def _execution(engine: Engine, job_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        [(status, result)] = conn.execute(
            text("SELECT status, result FROM job_executions WHERE job_id = :j"), {"j": job_id}
        ).all()
    return {"status": status, **json.loads(result)}


def _table_letters(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text("SELECT * FROM dead_letters")).mappings()]


def _states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(ti.state) for ti in dag_run.get_task_instances()}


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_records_are_routed_once_per_run_whatever_the_number_of_destinations(
    muxly_engine: Engine, sales_api: str, tmp_path: Path
) -> None:
    """Each rule joins a lookup connector: its rows are fetched when the run's router is built, so the
    number of lookup requests is the number of times the run was routed."""
    countries = [
        {"code": c, "region": "EU" if c in ("DE", "FR", "GB") else "other"}
        for c in ["DE", "FR", "GB", "US", "JP"]
    ]

    def lookup(request: Request) -> Reply:
        return Reply(body=countries)

    with LocalServer(lookup) as server:
        _insert(
            muxly_engine,
            "connectors",
            id="countries",
            name="Countries",
            connector_type="api",
            auth_settings={"auth_type": "none"},
            connection_settings={"base_url": server.url + "/countries"},
        )
        join = {
            "type": "join",
            "config": {"join_connector_id": "countries", "left_key": "country", "right_key": "code"},
        }
        _seed(
            muxly_engine,
            sales_api,
            "once",
            {name: ("file", _file(tmp_path, name)) for name in ("eu", "us", "all")},
            [
                ("once_eu", "country IN ('DE', 'FR', 'GB')", ["eu"], [join]),
                ("once_us", "country == 'US'", ["us"], [join]),
                ("once_all", None, ["all"], [join]),
            ],
        )
        dag = _dag("once")
        assert sorted(dag.task_ids) == ["cleanup", "deliver__all", "deliver__eu", "deliver__us", "extract"]
        dag_run = dag.test()
        lookups = [r for r in server.requests if r.path == "/countries"]

    assert len(lookups) == 1  # routed once (it was once per delivery task: 3)
    assert dag_run.state == "success"
    written_all = _written(tmp_path / "all")
    assert [r["order_id"] for r in written_all] == [r["order_id"] for r in RECORDS]
    assert all(r["region"] in ("EU", "other") for r in written_all)
    assert {r["country"] for r in _written(tmp_path / "eu")} == {"DE", "FR", "GB"}
    assert len(_written(tmp_path / "us")) == sum(r["country"] == "US" for r in RECORDS)
    result = _execution(muxly_engine, "once")
    assert result["status"] == "success"
    assert result["routed"] == result["delivered"] == len(RECORDS) + 9 + 8
    assert result["lost"] == 0 and result["dead_lettered"] == 0
    assert "route_seconds" in result


@pytest.mark.parametrize(
    "db_url", ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)], indirect=True
)
def test_a_destination_down_for_the_whole_run_dead_letters_to_the_route_dead_letter_destination(
    muxly_engine: Engine, sales_api: str, tmp_path: Path
) -> None:
    from muxly_provider.destinations.base import RunInfo
    from muxly_provider.runtime import staging

    _seed(
        muxly_engine,
        sales_api,
        "dl",
        {
            "files": ("file", _file(tmp_path, "files")),
            "hook": (
                "webhook",
                {"url": f"http://127.0.0.1:{free_port()}/hook", "retry_count": 0, "timeout_seconds": 2},
            ),
            "dlq": ("file", _file(tmp_path, "dlq")),
        },
        [
            (
                "dl_net",
                None,
                ["files"],
                [{"type": "formula", "config": {"output_field": "net", "formula": "purchase_amount * 0.9"}}],
            ),
            ("dl_us", "country == 'US'", ["hook"], []),
        ],
        error_handling={"mode": "dead_letter", "dead_letter_destination_id": "dlq"},
    )
    dag = _dag("dl")
    assert sorted(dag.task_ids) == ["cleanup", "dead_letters", "deliver__files", "deliver__hook", "extract"]
    assert dag.get_task("dead_letters").trigger_rule == "all_done"
    dag_run = dag.test()

    # The run fails (a destination failed: operators must notice), but nothing is lost.
    assert dag_run.state == "failed"
    states = _states(dag_run)
    assert states["deliver__hook"] == "failed" and states["deliver__files"] == "success"
    assert states["dead_letters"] == "success" and states["cleanup"] == "upstream_failed"

    good = [r for r in RECORDS if r["order_id"] not in BAD_AMOUNTS]
    us = [r for r in RECORDS if r["country"] == "US"]
    files = _written(tmp_path / "files")
    assert [r["order_id"] for r in files] == [r["order_id"] for r in good]
    letters = _written(tmp_path / "dlq")
    transform = [letter for letter in letters if letter["transformation_id"]]
    assert all(letter["job_id"] == "dl" and letter["run_id"] == dag_run.run_id for letter in letters)
    delivery = [letter for letter in letters if letter["destination_id"] == "hook"]
    assert len(letters) == len(transform) + len(delivery)
    assert sorted(letter["record"]["order_id"] for letter in transform) == sorted(BAD_AMOUNTS)
    assert all("not a number" in t["error"] and t["rule_id"] == "dl_net" for t in transform)
    assert [letter["record"] for letter in delivery] == us
    assert all("hook" in letter["error"] and letter["run_id"] == dag_run.run_id for letter in delivery)
    assert _table_letters(muxly_engine) == []

    result = _execution(muxly_engine, "dl")
    assert result["status"] == "failed" and "hook" in result["error"]
    hook, files_counts = result["destinations"]["hook"], result["destinations"]["files"]
    assert (hook["routed"], hook["delivered"], hook["dead_lettered"], hook["lost"]) == (
        len(us),
        0,
        len(us),
        0,
    )
    assert (files_counts["routed"], files_counts["delivered"]) == (len(good), len(good))
    assert result["routed"] == result["delivered"] + result["dead_lettered"] + result["lost"]
    assert result["dead_lettered"] == result["dead_letters"]["transform"] + result["dead_letters"]["delivery"]
    assert result["lost"] == 0 and result["dead_letters"]["transform"] == len(BAD_AMOUNTS)
    dlq = result["dead_letter_destinations"]["dlq"]
    assert (dlq["routed"], dlq["delivered"], dlq["lost"]) == (len(letters), len(letters), 0)
    assert "dlq" not in result["destinations"]
    # The failed run keeps its staged shares, so that clearing deliver__hook can deliver them again.
    run = RunInfo(dag.dag_id, dag_run.run_id, "dl", "dl_api", datetime.now(UTC))
    assert (staging.run_folder(run) / "shares" / "hook" / "batch_000000.jsonl.gz").exists()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_a_disabled_destination_gets_no_task_and_its_records_are_counted(
    muxly_engine: Engine, sales_api: str, tmp_path: Path
) -> None:
    _seed(
        muxly_engine,
        sales_api,
        "off",
        {"on": ("file", _file(tmp_path, "on")), "off": ("file", _file(tmp_path, "off"))},
        [("off_all", None, ["on", "off"], [])],
        disabled=frozenset({"off"}),
    )
    dag = _dag("off")
    assert "deliver__off" not in dag.task_ids and "deliver__on" in dag.task_ids
    assert "off" in dag.doc_md
    dag_run = dag.test()

    assert dag_run.state == "success"
    assert len(_written(tmp_path / "on")) == len(RECORDS) and not (tmp_path / "off").exists()
    result = _execution(muxly_engine, "off")
    assert result["status"] == "success" and "error" not in result
    assert result["skipped_disabled"] == {"off": len(RECORDS)}
    assert "off" not in result["destinations"]

    with muxly_engine.begin() as conn:
        conn.execute(text("UPDATE destinations SET enabled = :t WHERE id = 'off'"), {"t": True})
    assert "deliver__off" in _dag("off").task_ids  # re-enabled: back at the next parse


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_destination_ids_that_clean_to_the_same_name_get_their_own_tasks(
    muxly_engine: Engine, sales_api: str, tmp_path: Path
) -> None:
    _seed(
        muxly_engine,
        sales_api,
        "ids",
        {"crm:eu": ("file", _file(tmp_path, "crm_colon")), "crm@eu": ("file", _file(tmp_path, "crm_at"))},
        [
            ("ids_eu", "country IN ('DE', 'FR', 'GB')", ["crm:eu"], []),
            ("ids_us", "country == 'US'", ["crm@eu"], []),
        ],
    )
    dag = _dag("ids")
    assert dag is not None  # DuplicateTaskIdFound dropped the whole DAG
    from muxly_provider.dag_factory.naming import delivery_task_id

    first, second = delivery_task_id("crm:eu"), delivery_task_id("crm@eu")
    assert first != second and {first, second} <= set(dag.task_ids)
    assert dag.test().state == "success"
    assert {r["country"] for r in _written(tmp_path / "crm_colon")} == {"DE", "FR", "GB"}
    assert {r["country"] for r in _written(tmp_path / "crm_at")} == {"US"}
