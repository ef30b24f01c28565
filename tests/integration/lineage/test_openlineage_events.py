"""Real runs of generated job DAGs (``dag.test()``) emit OpenLineage events through the OpenLineage provider's
file transport: START and COMPLETE per task with the connector as input and each destination as output, the
schema of the records seen, column lineage of the rules' transformations; a failing run emits FAIL.

The runs happen in a child Python process configured the way a user configures the provider
(``AIRFLOW__OPENLINEAGE__TRANSPORT``): the provider decides at plugin load whether it is enabled, once per
process, and this test session's other DAG runs load plugins without a transport.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from examples.sample_api import make_server, sample_sales, start_in_thread
from tests.db_helpers import insert_row as _insert

pytest.importorskip("airflow.providers.openlineage")

pytestmark = [
    pytest.mark.usefixtures("airflow_db", "files_root"),
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]

SECRET = "tok-lineage-9876"

_RUN = """
import json, pathlib, sys
from muxly_provider.dag_factory.register import register_dags
namespace = {}
register_dags(namespace)
states = {dag_id: str(namespace[dag_id].test().state) for dag_id in sys.argv[2:]}
pathlib.Path(sys.argv[1]).write_text(json.dumps(states))
"""


@pytest.fixture
def sales_api() -> Iterator[str]:
    server = make_server(token=SECRET)
    start_in_thread(server)
    yield f"http://127.0.0.1:{server.server_address[1]}/api/v1/sales"
    server.shutdown()


def _seed(engine: Engine, api_url: str, out: Path) -> None:
    """Job ``lineage``: API -> rule ``big`` (rename, set, formula) -> files; rule ``us`` (remove) -> SQLite.
    Job ``broken``: the same rules on an API that is down."""
    for connector_id, url in (("sales", api_url), ("down", "http://127.0.0.1:9/api/v1/sales")):
        _insert(
            engine,
            "connectors",
            id=connector_id,
            name=connector_id,
            connector_type="api",
            auth_settings={"auth_type": "bearer", "params": {"token": SECRET}},
            connection_settings={"base_url": f"{url}?api_key={SECRET}", "metrics_path": "data.records"},
        )
    _insert(
        engine,
        "destinations",
        id="big",
        name="Big orders",
        destination_type="file",
        config={"output_dir": str(out / "big"), "file_format": "jsonl"},
    )
    _insert(
        engine,
        "destinations",
        id="warehouse",
        name="Warehouse",
        destination_type="database",
        config={
            "connection_string": f"sqlite:///{out / 'wh.db'}",
            "table": "us_orders",
            "create_table": True,
        },
    )
    steps = {
        "big": [
            ("rename_field", {"from": "purchase_amount", "to": "revenue"}),
            ("set_field", {"field": "segment", "value": "high"}),
            ("formula", {"output_field": "revenue_k", "formula": "revenue / 1000"}),
        ],
        "us": [("remove_field", {"field": "internal_notes"})],
    }
    conditions = {"big": "purchase_amount > 1000", "us": "country == 'US'"}
    targets = {"big": "big", "us": "warehouse"}
    for order, rule_id in enumerate(("big", "us")):
        _insert(
            engine,
            "routing_rules",
            id=rule_id,
            name=rule_id,
            priority=order,
            condition=json.dumps(conditions[rule_id]),
        )
        _insert(engine, "rule_destinations", rule_id=rule_id, destination_id=targets[rule_id])
        for index, (kind, config) in enumerate(steps[rule_id]):
            _insert(
                engine,
                "rule_transformations",
                id=f"{rule_id}_{index}",
                rule_id=rule_id,
                transformation_type=kind,
                config=config,
                sequence_order=index,
            )
    for connector_id in ("sales", "down"):
        _insert(engine, "routes", id=f"{connector_id}_route", name="Route", connector_id=connector_id)
        for order, rule_id in enumerate(("big", "us")):
            _insert(
                engine, "route_rules", route_id=f"{connector_id}_route", rule_id=rule_id, sequence_order=order
            )
    for job_id, connector_id in (("lineage", "sales"), ("broken", "down")):
        _insert(
            engine,
            "scheduler_jobs",
            id=job_id,
            name=job_id,
            job_type="manual",
            connector_id=connector_id,
            action_type="sync",
            action_params={},
            max_retries=0,
        )


def _run_with_lineage(events: Path, *dag_ids: str) -> dict[str, str]:
    """Run the DAGs in a child process with the provider's file transport; return their states."""
    result = events.with_suffix(".states.json")
    env = {
        **os.environ,
        "AIRFLOW__OPENLINEAGE__TRANSPORT": json.dumps(
            {"type": "file", "log_file_path": str(events), "append": True}
        ),
        "AIRFLOW__OPENLINEAGE__NAMESPACE": "muxly-tests",
    }
    done = subprocess.run(
        [sys.executable, "-c", _RUN, str(result), *dag_ids],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-4000:]
    (events.parent / "child.log").write_text(done.stdout + done.stderr)
    states: dict[str, str] = json.loads(result.read_text())
    return states


def _events(path: Path) -> dict[tuple[str, str], dict[str, Any]]:
    """Task events by (job name, event type); DAG-level events are left out."""
    found: dict[tuple[str, str], dict[str, Any]] = {}
    for line in path.read_text().splitlines():
        event = json.loads(line)
        found[(event["job"]["name"], event["eventType"])] = event
    return found


def _names(datasets: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(d["namespace"], d["name"]) for d in datasets]


def _schema(dataset: dict[str, Any]) -> dict[str, str]:
    return {f["name"]: f["type"] for f in dataset["facets"]["schema"]["fields"]}


def _lineage(dataset: dict[str, Any]) -> dict[str, set[tuple[str, str]]]:
    fields = dataset["facets"]["columnLineage"]["fields"]
    return {
        name: {(i["field"], i["transformations"][0]["subtype"]) for i in value["inputFields"]}
        for name, value in fields.items()
    }


def test_runs_emit_start_complete_and_fail_with_datasets_schema_and_column_lineage(
    muxly_engine: Engine, sales_api: str, tmp_path: Path
) -> None:
    _seed(muxly_engine, sales_api, tmp_path)
    events_file = tmp_path / "events.jsonl"
    states = _run_with_lineage(events_file, "muxly__lineage", "muxly__broken")
    assert states == {"muxly__lineage": "success", "muxly__broken": "failed"}
    events = _events(events_file)
    raw = events_file.read_text()
    assert SECRET not in raw  # neither the bearer token nor the api_key of the URL's query

    source = ("http://127.0.0.1:" + sales_api.split(":")[2].split("/")[0], "/api/v1/sales")
    records = sample_sales()
    big = [r for r in records if r["purchase_amount"] > 1000]
    us = [r for r in records if r["country"] == "US"]

    # extract: reads the API (known at START from the config), with the records' schema on COMPLETE.
    start = events[("muxly__lineage.extract", "START")]
    assert start["job"]["namespace"] == "muxly-tests"
    assert _names(start["inputs"]) == [source] and start["outputs"] == []
    complete = events[("muxly__lineage.extract", "COMPLETE")]
    [read] = complete["inputs"]
    assert (read["namespace"], read["name"]) == source
    assert _schema(read) == {
        "order_id": "string",
        "customer_name": "string",
        "email": "string",
        "country": "string",
        "product_id": "string",
        "purchase_amount": "double",
        "status": "string",
        "internal_notes": "string",
    }
    assert read["inputFacets"]["inputStatistics"]["rowCount"] == len(records)

    # deliver__big: API -> the output folder, with the transformed records' schema and their lineage.
    assert _names(events[("muxly__lineage.deliver__big", "START")]["outputs"]) == [
        ("file", str(tmp_path / "big"))
    ]
    complete = events[("muxly__lineage.deliver__big", "COMPLETE")]
    assert _names(complete["inputs"]) == [source]
    [written] = complete["outputs"]
    assert (written["namespace"], written["name"]) == ("file", str(tmp_path / "big"))
    schema = _schema(written)
    assert schema["revenue"] == "double" and schema["segment"] == "string" and schema["revenue_k"] == "double"
    assert "purchase_amount" not in schema
    lineage = _lineage(written)
    assert lineage["revenue"] == {("purchase_amount", "IDENTITY")}
    assert lineage["revenue_k"] == {("purchase_amount", "TRANSFORMATION")}
    assert lineage["order_id"] == {("order_id", "IDENTITY")}
    assert "segment" not in lineage  # a constant: no input field
    [condition] = written["facets"]["columnLineage"]["dataset"]
    assert condition["field"] == "purchase_amount" and condition["transformations"][0]["subtype"] == "FILTER"
    assert written["outputFacets"]["outputStatistics"]["rowCount"] == len(big)

    # deliver__warehouse: a SQLite table, without the removed field.
    complete = events[("muxly__lineage.deliver__warehouse", "COMPLETE")]
    [table] = complete["outputs"]
    assert (table["namespace"], table["name"]) == (f"sqlite://{tmp_path / 'wh.db'}", "us_orders")
    assert "internal_notes" not in _schema(table) and "country" in _schema(table)
    assert "internal_notes" not in _lineage(table)
    assert table["outputFacets"]["outputStatistics"]["rowCount"] == len(us)

    # broken: the extract fails; its FAIL event still names what it tried to read.
    assert ("muxly__broken.extract", "START") in events
    failed = events[("muxly__broken.extract", "FAIL")]
    assert _names(failed["inputs"]) == [("http://127.0.0.1:9", "/api/v1/sales")]
    assert not any(job == "muxly__broken.extract" and kind == "COMPLETE" for job, kind in events)
