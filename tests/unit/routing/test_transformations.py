"""Transformations: each type, ordering, config errors at compile time, per-record failures, no mutation."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from muxly_provider.exceptions import MuxlyConfigError, MuxlyTransformError
from muxly_provider.routing import TransformationSpec, compile_transformations


def step(kind: str, config: dict[str, Any], order: int = 0, step_id: str | None = None) -> TransformationSpec:
    return TransformationSpec(
        id=step_id or f"t-{kind}-{order}", transformation_type=kind, config=config, sequence_order=order
    )


def run(steps: list[TransformationSpec], record: dict[str, Any]) -> list[dict[str, Any]]:
    before = copy.deepcopy(record)
    out = compile_transformations(steps)(record)
    assert record == before  # never mutated
    return out


def test_rename_field() -> None:
    assert run(
        [step("rename_field", {"from": "purchase_amount", "to": "revenue"})], {"purchase_amount": 5}
    ) == [{"revenue": 5}]
    assert run([step("rename_field", {"from": "a.b", "to": "c.d"})], {"a": {"b": 1, "x": 2}}) == [
        {"a": {"x": 2}, "c": {"d": 1}}
    ]
    assert run([step("rename_field", {"from": "nope", "to": "x"})], {"a": 1}) == [{"a": 1}]


def test_set_and_remove_field() -> None:
    record = {"user": {"name": "ann", "meta": {"k": 1}}}
    out = run([step("set_field", {"field": "user.profile.country", "value": {"code": "US"}})], record)
    assert out == [{"user": {"name": "ann", "meta": {"k": 1}, "profile": {"country": {"code": "US"}}}}]
    assert out[0]["user"]["meta"] is record["user"]["meta"]  # copy-on-write shares untouched branches
    assert run([step("remove_field", {"field": "user.name"})], record) == [{"user": {"meta": {"k": 1}}}]
    assert run([step("remove_field", {"field": "nope"})], record) == [record]


def test_set_field_value_is_not_shared() -> None:
    pipeline = compile_transformations([step("set_field", {"field": "tags", "value": ["a"]})])
    first, second = pipeline({})[0], pipeline({})[0]
    assert first["tags"] is not second["tags"]


def test_output_is_never_the_input_object() -> None:
    record = {"a": 1}
    out = run([step("remove_field", {"field": "nope"})], record)
    assert out == [record]
    assert out[0] is not record


@pytest.mark.parametrize(
    ("operator", "value", "kept"),
    [
        (">", 100, [150]),
        ("<", 100, [50]),
        (">=", 150, [150]),
        ("<=", 50, [50]),
        ("=", 50, [50]),
        ("==", "150", [150]),
        ("!=", 50, [150, None]),
        ("in", [50, 7], [50]),
        ("exists", None, [150, 50]),
        ("not_exists", None, [None]),
    ],
)
def test_filter_numbers(operator: str, value: Any, kept: list[Any]) -> None:
    pipeline = compile_transformations([step("filter", {"field": "n", "operator": operator, "value": value})])
    records = [{"n": 150}, {"n": 50}, {}]
    out = [r.get("n") for rec in records for r in pipeline(rec)]
    assert out == kept
    assert pipeline.filtered == 3 - len(kept)


@pytest.mark.parametrize(
    ("operator", "value", "expected"),
    [
        ("contains", "@ex", True),
        ("not_contains", "@ex", False),
        ("starts_with", "ann", True),
        ("ends_with", ".org", False),
    ],
)
def test_filter_text(operator: str, value: str, expected: bool) -> None:
    pipeline = compile_transformations(
        [step("filter", {"field": "email", "operator": operator, "value": value})]
    )
    assert bool(pipeline({"email": "ann@ex.com"})) is expected


def test_extract() -> None:
    record = {"a": 1, "b": {"c": 2, "d": 3}, "e": 4}
    assert run([step("extract", {"fields": ["a", "b.c", "missing"]})], record) == [{"a": 1, "b": {"c": 2}}]


def test_format_string() -> None:
    steps = [
        step(
            "format_string",
            {
                "template": "Order from {{customer_name}} for ${{ total.amount }}{{x}}!",
                "output_field": "summary",
            },
        )
    ]
    out = run(steps, {"customer_name": "Ann", "total": {"amount": 12.5}})
    assert out[0]["summary"] == "Order from Ann for $12.5!"
    out = run(steps, {"customer_name": True, "total": {"amount": [1]}, "x": None})
    assert out[0]["summary"] == "Order from true for $[1]!"


def test_steps_run_in_sequence_order_then_id() -> None:
    steps = [
        step("set_field", {"field": "x", "value": 2}, order=2),
        step("rename_field", {"from": "x", "to": "y"}, order=1, step_id="b"),
        step("set_field", {"field": "x", "value": 1}, order=1, step_id="a"),
    ]
    assert run(steps, {}) == [{"y": 1, "x": 2}]


def test_array_flatten() -> None:
    record = {"order": 7, "items": [{"sku": "A", "qty": 1}, {"sku": "B", "qty": 2}, "loose"]}
    out = run([step("array_flatten", {"array_field": "items", "flatten_fields": ["sku"]})], record)
    assert out == [{"order": 7, "sku": "A"}, {"order": 7, "sku": "B"}, {"order": 7, "items": "loose"}]
    out = run([step("array_flatten", {"array_field": "items", "preserve_parent": False})], record)
    assert out[0] == {"sku": "A", "qty": 1}
    assert run([step("array_flatten", {"array_field": "items"})], {"items": "x"}) == [{"items": "x"}]


def test_aggregate_flushes_at_the_end() -> None:
    pipeline = compile_transformations(
        [
            step("filter", {"field": "amount", "operator": ">", "value": 0}),
            step(
                "aggregate",
                {
                    "group_by": ["country"],
                    "aggregations": [
                        {"function": "sum", "field": "amount", "as": "total"},
                        {"function": "count", "field": "*"},
                        {"function": "avg", "field": "amount"},
                        {"function": "max", "field": "amount"},
                    ],
                },
                order=1,
            ),
            step("set_field", {"field": "kind", "value": "summary"}, order=2),
        ]
    )
    rows = [
        {"country": "US", "amount": 10},
        {"country": "FR", "amount": "5"},
        {"country": "US", "amount": 20},
        {"country": "US", "amount": -1},
    ]
    assert [pipeline(r) for r in rows] == [[], [], [], []]
    assert pipeline.finish() == [
        {"country": "US", "total": 30, "count": 2, "avg_amount": 15.0, "max_amount": 20, "kind": "summary"},
        {"country": "FR", "total": 5, "count": 1, "avg_amount": 5.0, "max_amount": "5", "kind": "summary"},
    ]
    assert pipeline.finish() == []


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        (step("nope", {}), "transformation_type"),
        (step("rename_field", {"from": "a"}), "config.to"),
        (step("rename_field", {"from": "a", "to": "b["}), "config.to"),
        (step("set_field", {"value": 1}), "config.field"),
        (step("filter", {"field": "a", "operator": "like", "value": 1}), "config.operator"),
        (step("filter", {"field": "a", "operator": ">", "value": [1]}), "config.value"),
        (step("extract", {"fields": "a"}), "config.fields"),
        (step("extract", {"fields": ["a[0]"]}), "config.fields"),
        (step("format_string", {"template": "{{ a[ }}", "output_field": "x"}), "config.template"),
        (
            step("aggregate", {"aggregations": [{"function": "median", "field": "a"}]}),
            "config.aggregations[0].function",
        ),
        (step("formula", {"output_field": "x", "formula": "a * (b"}), "config.formula"),
        (step("formula", {"output_field": "x[", "formula": "a"}), "config.output_field"),
        (
            step("join", {"left_key": "a", "right_key": "b", "join_connector_id": "db"}),
            "config.join_connector_id",
        ),
        (step("join", {"left_key": "a", "right_key": "b", "lookup": [1]}), "config.lookup[0]"),
        (
            step("join", {"left_key": "a", "right_key": "b", "lookup": [], "join_type": "full"}),
            "config.join_type",
        ),
    ],
)
def test_config_errors_at_compile_time(spec: TransformationSpec, field: str) -> None:
    with pytest.raises(MuxlyConfigError) as info:
        compile_transformations([spec])
    assert (info.value.table, info.value.row_id, info.value.field) == ("rule_transformations", spec.id, field)


def test_per_record_failure_names_the_step_not_the_data() -> None:
    pipeline = compile_transformations([step("set_field", {"field": "a.b", "value": 1}, step_id="s1")])
    with pytest.raises(MuxlyTransformError) as info:
        pipeline({"a": "secret-value"})
    assert "s1" in str(info.value)
    assert "'a.b'" in str(info.value)
    assert "secret-value" not in str(info.value)
