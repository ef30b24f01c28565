"""``airflow muxly rules test``: a stored rule (written with plain SQL) run on records, on SQLite and PostgreSQL."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest
from sqlalchemy import Engine

from muxly_provider.cli.routing_command import test_rule as run_rule_command
from tests.db_helpers import insert_row as _insert


def run(rule_id: str, data: Any, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    try:
        run_rule_command(argparse.Namespace(rule_id=rule_id, data=json.dumps(data)))
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    return code, capsys.readouterr().out.splitlines()


def test_rule_test_prints_matches_outputs_and_errors(
    muxly_engine: Engine, capsys: pytest.CaptureFixture[str]
) -> None:
    _insert(muxly_engine, "routing_rules", id="cli_big", name="big", condition=json.dumps("revenue > 1000"))
    _insert(
        muxly_engine,
        "rule_transformations",
        id="cli_t1",
        rule_id="cli_big",
        transformation_type="formula",
        config={"output_field": "net", "formula": "revenue / qty"},
        sequence_order=1,
    )
    _insert(
        muxly_engine,
        "rule_transformations",
        id="cli_t2",
        rule_id="cli_big",
        transformation_type="format_string",
        config={"template": "{{id}}: {{net}}", "output_field": "label"},
        sequence_order=2,
    )
    _insert(muxly_engine, "routing_rules", id="cli_bad", name="bad", condition="revenue >> 1")

    code, lines = run(
        "cli_big", [{"id": "a", "revenue": 1500, "qty": 3}, {"revenue": 5}, {"revenue": 2000}], capsys
    )
    assert code == 1
    assert lines[0] == "[0] MATCH"
    assert json.loads(lines[1]) == {"id": "a", "revenue": 1500, "qty": 3, "net": 500.0, "label": "a: 500.0"}
    assert lines[2] == "[1] NO MATCH"
    assert lines[3] == "[2] MATCH"
    assert (
        lines[4].startswith("[2] ERROR") and "'cli_t1'" in lines[4] and "field 'qty' is missing" in lines[4]
    )

    code, lines = run("cli_bad", {"revenue": 5}, capsys)
    assert code == 1
    assert lines[1:] == ["revenue >> 1", "        ^"]
    assert run("nope", {}, capsys)[0] == 1
