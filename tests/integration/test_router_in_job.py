"""The original docs' conditions and a formula + format_string rule, through a real job run (``dag.test()``)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from examples.sample_api import make_server, sample_sales, start_in_thread
from tests.db_helpers import insert_row as _insert

pytestmark = pytest.mark.usefixtures("airflow_db", "files_root")


@pytest.fixture
def sales_api() -> Iterator[str]:
    server = make_server()
    start_in_thread(server)
    yield f"http://127.0.0.1:{server.server_address[1]}/api/v1/sales"
    server.shutdown()


RULES = {
    "rj_xyz": "product_id STARTS WITH 'XYZ' AND email CONTAINS '@example.com'",
    "rj_open": "NOT status == 'cancelled' AND (country == 'US' OR country == 'GB')",
    "rj_calc": "EXISTS purchase_amount AND NOT EXISTS discount",
}


def _seed(engine: Engine, api_url: str, out: Path) -> None:
    _insert(
        engine,
        "connectors",
        id="rj_sales",
        name="Sales",
        connector_type="api",
        auth_settings={"auth_type": "none"},
        connection_settings={"base_url": api_url, "metrics_path": "data.records"},
    )
    _insert(engine, "routes", id="rj_route", name="Router in a job", connector_id="rj_sales")
    for order, (rule_id, condition) in enumerate(RULES.items()):
        _insert(
            engine,
            "destinations",
            id=rule_id,
            name=rule_id,
            destination_type="file",
            config={"output_dir": str(out / rule_id), "file_format": "jsonl", "file_prefix": rule_id},
        )
        _insert(
            engine, "routing_rules", id=rule_id, name=rule_id, priority=10, condition=json.dumps(condition)
        )
        _insert(engine, "rule_destinations", rule_id=rule_id, destination_id=rule_id)
        _insert(engine, "route_rules", route_id="rj_route", rule_id=rule_id, sequence_order=order)
    _insert(
        engine,
        "rule_transformations",
        id="rj_t1",
        rule_id="rj_calc",
        transformation_type="formula",
        config={"output_field": "net", "formula": "round(purchase_amount * (1 - 0.1), 2)"},
        sequence_order=1,
    )
    _insert(
        engine,
        "rule_transformations",
        id="rj_t2",
        rule_id="rj_calc",
        transformation_type="format_string",
        config={"template": "{{order_id}} for {{customer_name}}: {{net}}", "output_field": "label"},
        sequence_order=2,
    )
    _insert(
        engine,
        "scheduler_jobs",
        id="rj.router",
        name="Router job",
        job_type="manual",
        connector_id="rj_sales",
        action_type="sync",
        action_params={},
        max_retries=0,
    )


def _written(directory: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for f in sorted(directory.iterdir()) for line in f.read_text().splitlines()]


def test_docs_conditions_and_formula_through_a_job_run(
    muxly_engine: Engine, sales_api: str, tmp_path: Path
) -> None:
    from muxly_provider.dag_factory.register import register_dags

    _seed(muxly_engine, sales_api, tmp_path)
    namespace: dict[str, Any] = {}
    register_dags(namespace)
    assert namespace["muxly__rj.router"].test().state == "success"

    records = sample_sales()
    xyz = [r for r in records if r["product_id"].startswith("XYZ") and "@example.com" in r["email"]]
    open_ = [r for r in records if r["status"] != "cancelled" and r["country"] in ("US", "GB")]
    assert xyz and open_ and len(open_) < len(records)
    assert _written(tmp_path / "rj_xyz") == xyz
    assert _written(tmp_path / "rj_open") == open_
    calc = _written(tmp_path / "rj_calc")
    assert [c["order_id"] for c in calc] == [r["order_id"] for r in records]
    for row, record in zip(calc, records, strict=True):
        assert row["net"] == pytest.approx(record["purchase_amount"] * 0.9, abs=0.006)
        assert row["label"] == f"{record['order_id']} for {record['customer_name']}: {row['net']}"
