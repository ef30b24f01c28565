"""``airflow muxly conditions test`` and ``airflow muxly rules test``: try the condition language on records.

Both take ``--data``: one JSON record or a JSON list of records. For one record the answer is a line ``MATCH``
or ``NO MATCH``; for a list each line is prefixed with the record's index (``[0] MATCH``). ``rules test`` then
prints each matched record's transformed outputs as JSON lines. Errors (a bad expression with a caret under
its position, a bad transformation, a per-record transformation error) go to standard output too, and the
command exits with status 1.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Mapping
from typing import Any

from muxly_provider.exceptions import MuxlyConditionError, MuxlyConfigError, MuxlyTransformError


def _fail(*lines: str) -> None:
    for line in lines:
        print(line)
    raise SystemExit(1)


def _records(data: str) -> list[Any]:
    try:
        value = json.loads(data)
    except ValueError as exc:
        _fail(f"--data is not valid JSON: {exc}")
    if isinstance(value, Mapping):
        return [value]
    if isinstance(value, list):
        return value
    _fail("--data must be a JSON object (a record) or a JSON list of records")
    return []


def _label(index: int, single: bool) -> str:
    return "" if single else f"[{index}] "


def _condition_error(exc: MuxlyConditionError) -> None:
    _fail(f"Invalid condition: {exc.message} at position {exc.position}", exc.caret())


def test_condition(args: argparse.Namespace) -> None:
    """Evaluate ``args.expression`` against the records of ``args.data``; exit 1 on a bad expression.

    :param args: ``expression`` and ``data`` (JSON of one record or a list of records)
    """
    from muxly_provider.routing import compile_condition

    records = _records(args.data)
    single = args.data.lstrip().startswith("{")
    try:
        condition = compile_condition(args.expression)
    except MuxlyConditionError as exc:
        _condition_error(exc)
        return
    for index, record in enumerate(records):
        print(f"{_label(index, single)}{'MATCH' if condition(record) else 'NO MATCH'}")


def _json_config(row: Mapping[str, Any]) -> Any:
    config = row.get("config")
    if isinstance(config, str):
        return json.loads(config) if config.strip() else {}
    return config or {}


def _load_rule(rule_id: str) -> tuple[str | None, list[Any]]:
    """The rule's expression and its transformation specs, validated; exits with the error otherwise."""
    from muxly_provider.config.rules import condition_expression
    from muxly_provider.config.validation import validate_row
    from muxly_provider.db.snapshot import load_snapshot
    from muxly_provider.routing import TransformationSpec, compile_condition

    snapshot = load_snapshot(tables=("routing_rules", "rule_transformations"))
    rule = snapshot.by_id("routing_rules").get(rule_id)
    if rule is None:
        _fail(f"No routing rule with id {rule_id!r}")
        return None, []
    try:
        expression = condition_expression(rule.get("condition"))
    except ValueError as exc:
        _fail(f"routing_rules row {rule_id!r}: field 'condition': {exc}")
        return None, []
    if expression is not None:
        try:
            compile_condition(expression)
        except MuxlyConditionError as exc:
            _condition_error(exc)
    steps = []
    try:
        validate_row("routing_rules", rule)
        for row in snapshot.rows("rule_transformations"):
            if row["rule_id"] != rule_id:
                continue
            validate_row("rule_transformations", row)
            steps.append(
                TransformationSpec(
                    id=str(row["id"]),
                    transformation_type=str(row["transformation_type"]),
                    config=_json_config(row),
                    sequence_order=int(row["sequence_order"] or 0),
                )
            )
    except MuxlyConfigError as exc:
        _fail(f"Invalid rule: {exc}")
    return expression, steps


def test_rule(args: argparse.Namespace) -> None:
    """Run the stored rule ``args.rule_id`` (condition and transformations) on the records of ``args.data``.

    Prints ``MATCH``/``NO MATCH`` per record and, for matches, the transformed records as JSON lines; records
    held until the end of the stream (``aggregate``) are printed last. Exits 1 on any error.

    :param args: ``rule_id`` and ``data`` (JSON of one record or a list of records)
    """
    from muxly_provider.routing import compile_condition, compile_transformations
    from muxly_provider.routing.formula_parser import FormulaSyntaxError

    records = _records(args.data)
    single = args.data.lstrip().startswith("{")
    expression, steps = _load_rule(args.rule_id)
    condition = compile_condition(expression)
    try:
        pipeline = compile_transformations(steps)
    except MuxlyConfigError as exc:
        cause = exc.__cause__
        _fail(
            f"Invalid transformation: {exc}",
            *([cause.caret()] if isinstance(cause, FormulaSyntaxError) else []),
        )
        return
    failed = False
    for index, record in enumerate(records):
        label = _label(index, single)
        if not condition(record):
            print(f"{label}NO MATCH")
            continue
        print(f"{label}MATCH")
        try:
            outputs = pipeline(record)
        except MuxlyTransformError as exc:
            print(f"{label}ERROR {exc}")
            failed = True
            continue
        if not outputs:
            print(f"{label}(no output: filtered or held until the end of the stream)")
        for output in outputs:
            print(json.dumps(output, default=str))
    try:
        held = pipeline.finish() if pipeline.streaming else []
    except MuxlyTransformError as exc:
        _fail(f"ERROR at the end of the stream: {exc}")
        return
    if held:
        print("End of stream:")
        for output in held:
            print(json.dumps(output, default=str))
    if failed:
        raise SystemExit(1)
