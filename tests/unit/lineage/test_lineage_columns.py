"""Column lineage of rules' transformations, and the schema sampled from records."""

from __future__ import annotations

from typing import Any

from muxly_provider.lineage.columns import condition_fields, destination_columns, formula_fields
from muxly_provider.lineage.schema import SAMPLE_PER_BATCH, OutputSchemas, SchemaCollector
from muxly_provider.routing.route_specs import ErrorHandlingSpec, RouteSpec, RuleSpec, TransformationSpec


def _rule(
    rule_id: str,
    dests: tuple[str, ...],
    steps: list[tuple[str, dict[str, Any]]],
    condition: str | None = None,
) -> RuleSpec:
    return RuleSpec(
        id=rule_id,
        name=rule_id,
        condition=condition,
        destination_ids=dests,
        transformations=tuple(
            TransformationSpec(f"{rule_id}{i}", kind, config, i) for i, (kind, config) in enumerate(steps)
        ),
    )


def _route(*rules: RuleSpec, default: str | None = None) -> RouteSpec:
    return RouteSpec(
        id="r", name="r", rules=rules, error_handling=ErrorHandlingSpec(default_destination_id=default)
    )


INPUT = ["order_id", "amount", "rate", "country", "first", "last", "notes"]


def test_rename_set_remove_formula_and_format_string() -> None:
    route = _route(
        _rule(
            "big",
            ("d",),
            [
                ("rename_field", {"from": "amount", "to": "revenue"}),
                ("set_field", {"field": "segment", "value": "high"}),
                ("remove_field", {"field": "notes"}),
                ("formula", {"output_field": "net", "formula": "round(revenue * (1 - rate), 2)"}),
                ("format_string", {"template": "{{first}} {{ last }}", "output_field": "name"}),
                ("rename_field", {"from": "net", "to": "net_revenue"}),
            ],
            condition="amount > 100 AND $.country IN ('US', 'GB')",
        )
    )
    out = ["order_id", "revenue", "rate", "country", "first", "last", "segment", "name", "net_revenue"]
    columns = destination_columns([route], "d", output_fields=out, input_fields=INPUT)
    assert columns.complete
    assert columns.fields == {
        "country": {("country", "IDENTITY")},
        "first": {("first", "IDENTITY")},
        "last": {("last", "IDENTITY")},
        "name": {("first", "TRANSFORMATION"), ("last", "TRANSFORMATION")},
        "net_revenue": {("amount", "TRANSFORMATION"), ("rate", "TRANSFORMATION")},
        "order_id": {("order_id", "IDENTITY")},
        "rate": {("rate", "IDENTITY")},
        "revenue": {("amount", "IDENTITY")},
    }
    assert columns.filters == {"amount", "country"}
    # Before any record was seen (a task's start), only what the transformations establish.
    start = destination_columns([route], "d")
    assert set(start.fields) == {"revenue", "name", "net_revenue"}


def test_extract_aggregate_filter_and_unknown_steps() -> None:
    route = _route(
        _rule(
            "x",
            ("extracted",),
            [
                ("extract", {"fields": ["order_id", "$.amount"]}),
                ("filter", {"field": "amount", "operator": ">", "value": 1}),
            ],
        ),
        _rule(
            "agg",
            ("totals",),
            [
                ("rename_field", {"from": "country", "to": "c"}),
                (
                    "aggregate",
                    {
                        "group_by": ["c"],
                        "aggregations": [{"function": "sum", "field": "amount"}, {"function": "count"}],
                    },
                ),
            ],
        ),
        _rule("j", ("joined",), [("join", {"lookup": [], "left_key": "a", "right_key": "b"})]),
    )
    extracted = destination_columns(
        [route], "extracted", output_fields=["order_id", "amount", "rate"], input_fields=INPUT
    )
    assert extracted.fields == {"order_id": {("order_id", "IDENTITY")}, "amount": {("amount", "IDENTITY")}}
    assert extracted.filters == {"amount"}
    totals = destination_columns(
        [route], "totals", output_fields=["c", "sum_amount", "count"], input_fields=INPUT
    )
    assert totals.fields == {"c": {("country", "IDENTITY")}, "sum_amount": {("amount", "AGGREGATION")}}
    assert totals.group_by == {"country"}
    joined = destination_columns([route], "joined", output_fields=["a", "b"], input_fields=INPUT)
    assert not joined.complete and joined.fields == {}


def test_default_destination_and_export_pass_records_unchanged() -> None:
    route = _route(
        _rule("a", ("d",), [], condition="country == 'US'"),
        _rule("b", ("e",), [], condition="amount > 5"),
        default="rest",
    )
    rest = destination_columns([route], "rest", output_fields=["order_id", "extra"], input_fields=INPUT)
    assert rest.fields == {"order_id": {("order_id", "IDENTITY")}}  # "extra" is not an input field
    assert rest.filters == {"country", "amount"}
    export = destination_columns([], "x", export=True, output_fields=["amount"], input_fields=None)
    assert export.fields == {"amount": {("amount", "IDENTITY")}}


def test_fields_read_by_formulas_and_conditions() -> None:
    assert formula_fields("coalesce(a.b, 0) + max(c, -d) ** 2 % $.e[0]") == {"a.b", "c", "d", "e[0]"}
    assert condition_fields("NOT (x == 1 OR EXISTS y.z) AND w IN (1, 2)") == {"x", "y.z", "w"}
    assert condition_fields(None) == set()


def test_schema_collector_samples_batches_and_keeps_nested_fields() -> None:
    collector = SchemaCollector()
    batch: list[dict[str, Any]] = [
        {"id": i, "v": None, "user": {"name": "n", "tags": []}} for i in range(1000)
    ]
    batch[500]["rare"] = 1  # not sampled: only about SAMPLE_PER_BATCH records of a batch are looked at
    batch[0]["v"] = 1.5
    collector.observe(batch)
    collector.observe([{"id": 1, "v": None, "flag": True}])
    assert collector.as_json() == {
        "id": "integer",
        "v": "double",
        "user": {"name": "string", "tags": "array"},
        "flag": "boolean",
    }
    looked_at: list[int] = []

    class Spy(dict[str, Any]):
        def items(self) -> Any:
            looked_at.append(1)
            return super().items()

    SchemaCollector().observe([Spy(a=1) for _ in range(10_000)])
    assert len(looked_at) <= SAMPLE_PER_BATCH + 1
    shares = OutputSchemas()
    shares.observe("b", [{"x": "1"}])
    shares.observe("a", [{"y": 2}])
    assert shares.as_json() == {"a": {"y": "integer"}, "b": {"x": "string"}}
