"""``formula`` and ``join`` transformations, and the fused (generated) pipelines agreeing with the steps."""

from __future__ import annotations

import contextlib
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from muxly_provider.exceptions import MuxlyConfigError
from muxly_provider.routing import TransformationSpec, TransformStepError, compile_transformations
from muxly_provider.routing.formula import compile_formula
from muxly_provider.routing.formula_parser import FormulaSyntaxError, parse_formula
from muxly_provider.routing.transform_steps import MapStep, StepFailure
from muxly_provider.routing.transformations import FACTORIES


def formula(text: str, record: dict[str, Any]) -> Any:
    spec = TransformationSpec("f1", "formula", {"output_field": "out", "formula": text})
    return compile_transformations([spec])(record)[0]["out"]


@pytest.mark.parametrize(
    ("text", "record", "expected"),
    [
        ("price * discount_rate", {"price": 200, "discount_rate": 0.1}, 20.0),
        ("a + b * c", {"a": 1, "b": 2, "c": 3}, 7),
        ("(a + b) * c", {"a": 1, "b": 2, "c": 3}, 9),
        ("-a ** 2", {"a": 3}, -9),
        ("2 ** 3 ** 2", {}, 512),
        ("7 / 2", {}, 3.5),
        ("7 % 3 - -1", {}, 2),
        ("a.b * $.c[1]", {"a": {"b": 2}, "c": [0, 5]}, 10),
        ("$['unit price'] * qty", {"unit price": "2.5", "qty": "4"}, 10.0),
        ("round(2.5)", {}, 3),
        ("round(2.675, 2)", {}, 2.68),
        ("round(-2.5)", {}, -3),
        ("floor(x) + ceil(x)", {"x": 1.5}, 3),
        ("abs(min(a, b, -7)) + max(a, b)", {"a": 1, "b": 2}, 9),
        ("coalesce(discount, 0) + 1", {}, 1),
        ("coalesce(discount, 0) + 1", {"discount": None}, 1),
        ("coalesce(discount, 0) + 1", {"discount": 2}, 3),
        ("price * 2", {"price": Decimal("1.10")}, Decimal("2.20")),
        ("price * 0.5", {"price": Decimal("3")}, 1.5),
        ("ROUND(a, 1)", {"a": 1.25}, 1.3),
        ("round", {"round": 4}, 4),
    ],
)
def test_formula_values(text: str, record: dict[str, Any], expected: Any) -> None:
    result = formula(text, record)
    assert result == expected
    assert type(result) is type(expected)
    assert compile_formula(text)(record) == expected


@pytest.mark.parametrize(
    ("text", "record", "reason"),
    [
        ("a / b", {"a": 1, "b": 0}, "division by zero ('b' is 0)"),
        ("a % (b - 1)", {"a": 1, "b": 1}, "division by zero ('b - 1' is 0)"),
        ("a * 2", {}, "field 'a' is missing"),
        ("a * 2", {"a": None}, "field 'a' is null"),
        ("a * 2", {"a": "abc"}, "field 'a' is not a number"),
        ("a * 2", {"a": True}, "field 'a' is a boolean"),
        ("user.n + 1", {"user": {}}, "field 'user.n' is missing"),
        ("a * 1e308 * 10", {"a": 1.0}, "not a finite number"),
        ("coalesce(a, b)", {}, "every argument is missing or null"),
    ],
)
def test_formula_per_record_errors_name_step_and_field(
    text: str, record: dict[str, Any], reason: str
) -> None:
    spec = TransformationSpec("calc", "formula", {"output_field": "out", "formula": text})
    with pytest.raises(TransformStepError) as info:
        compile_transformations([spec])(record)
    assert info.value.step_id == "calc"
    assert reason in str(info.value)
    assert "abc" not in str(info.value)


@pytest.mark.parametrize(
    ("text", "message", "position"),
    [
        ("a * (b", "missing ')'", 6),
        ("a +", "expected a number", 3),
        ("a ^ 2", "use **", 2),
        ("sqrt(a)", "unknown function 'sqrt'", 0),
        ("round(a, 1, 2)", "round() takes 1 to 2", 0),
        ("a b", "expected an operator", 2),
        ("__import__('os')", "unknown function '__import__'", 0),
        ("a * 'x'", "unexpected character", 4),
        ("2x", "invalid number", 0),
        ("", "empty formula", 0),
        ("(" * 150 + "1" + ")" * 150, "nested more than", 100),
    ],
)
def test_formula_syntax_errors_have_positions(text: str, message: str, position: int) -> None:
    with pytest.raises(FormulaSyntaxError) as info:
        parse_formula(text)
    assert message in info.value.message
    assert info.value.position == position
    assert info.value.caret().splitlines()[1] == " " * position + "^"


def test_bad_formula_is_a_config_error_with_position() -> None:
    spec = TransformationSpec("f9", "formula", {"output_field": "x", "formula": "a * (b"})
    with pytest.raises(MuxlyConfigError) as info:
        compile_transformations([spec])
    assert info.value.field == "config.formula"
    assert "position 6" in info.value.expected


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="ab1.2()+-*/%, $[]'\"roundmax_ \t", max_size=40))
def test_formula_parser_fuzz_raises_only_syntax_errors(text: str) -> None:
    try:
        parse_formula(text)
    except FormulaSyntaxError:
        return
    evaluate = compile_formula(text)
    for record in ({"a": 1, "b": 2}, {"a": "x"}, {}):
        with contextlib.suppress(StepFailure):  # a per-record error, never a crash of another kind
            evaluate(record)


LOOKUP = [
    {"sku": 1, "name": "Pen", "price": 2},
    {"sku": "2", "name": "Ink", "price": 5},
    {"sku": 1, "name": "Duplicate", "price": 9},
    {"sku": None, "name": "No key"},
]


def join(**config: Any) -> Any:
    spec = TransformationSpec(
        "j", "join", {"left_key": "item", "right_key": "sku", "lookup": LOOKUP, **config}
    )
    return compile_transformations([spec])


def test_left_join_enriches_first_row_wins_and_keeps_unmatched() -> None:
    pipeline = join()
    assert pipeline({"item": "1", "price": 0}) == [{"item": "1", "price": 2, "name": "Pen"}]
    assert pipeline({"item": 2.0}) == [{"item": 2.0, "name": "Ink", "price": 5}]
    assert pipeline({"item": 3}) == [{"item": 3}]
    assert pipeline({"item": True}) == [{"item": True}]
    assert pipeline({}) == [{}]


def test_inner_join_drops_unmatched_and_prefixes() -> None:
    pipeline = join(join_type="inner", prefix_fields=True)
    assert pipeline({"item": 3}) == []
    assert pipeline.filtered == 1
    assert pipeline({"item": 1, "price": 0}) == [
        {"item": 1, "price": 0, "lookup_name": "Pen", "lookup_price": 2}
    ]
    assert join(join_type="inner", prefix_fields=True, prefix="p_")({"item": 1}) == [
        {"item": 1, "p_name": "Pen", "p_price": 2}
    ]


def test_right_join_emits_unused_lookup_rows_at_finish() -> None:
    pipeline = join(join_type="right")
    assert pipeline({"item": 3}) == []
    assert pipeline({"item": 1}) == [{"item": 1, "name": "Pen", "price": 2}]
    assert pipeline.finish() == [{"item": "2", "name": "Ink", "price": 5}]


def test_join_on_a_connector_uses_the_loader_once() -> None:
    from muxly_provider.routing import Router, RouteSpec, RuleSpec

    calls: list[tuple[str, dict[str, Any]]] = []

    def loader(connector_id: str, data_spec: Any) -> list[dict[str, Any]]:
        calls.append((connector_id, dict(data_spec)))
        return [{"id": 1, "label": "one"}]

    step = TransformationSpec(
        "j",
        "join",
        {"left_key": "k", "right_key": "id", "join_connector_id": "db", "join_data_spec": {"query": "q"}},
    )
    rules = tuple(RuleSpec(f"r{i}", "r", None, (f"d{i}",), (step,)) for i in range(2))
    router = Router([RouteSpec("route", "route", rules)], lookup_loader=loader)
    assert calls == [("db", {"query": "q"})]
    assert router.route_batch([{"k": 1}]) == {
        "d0": [{"k": 1, "label": "one"}],
        "d1": [{"k": 1, "label": "one"}],
    }
    with pytest.raises(MuxlyConfigError, match="lookup loader"):
        Router([RouteSpec("route", "route", rules)])


SAMPLE_STEPS: list[tuple[str, dict[str, Any]]] = [
    ("rename_field", {"from": "a", "to": "b"}),
    ("set_field", {"field": "s", "value": [1]}),
    ("remove_field", {"field": "c"}),
    ("filter", {"field": "a", "operator": ">", "value": 0}),
    ("format_string", {"template": "x{{a}}-{{n.m}}", "output_field": "t"}),
    ("formula", {"output_field": "f", "formula": "a * 2 + round(a / 3, 1)"}),
    ("join", {"left_key": "a", "right_key": "id", "lookup": [{"id": 1, "z": 2}]}),
]


@pytest.mark.parametrize(("kind", "config"), SAMPLE_STEPS)
def test_fragments_run_without_falling_back(kind: str, config: dict[str, Any]) -> None:
    """A fragment that raises would silently take the slow path: check that it runs on plain records."""
    spec = TransformationSpec("s", kind, config)
    factory = FACTORIES.get(kind)
    step = factory(spec) if factory else compile_transformations([spec]).steps[0][1]
    assert isinstance(step, MapStep) and step.inline is not None
    namespace: dict[str, Any] = {"__builtins__": {}, "_drop": lambda: None}

    def bind(prefix: str, value: Any) -> str:
        name = f"_{prefix}{len(namespace)}"
        namespace[name] = value
        return name

    lines = step.inline(bind)
    exec("def f(record):\n" + "".join(f"    {line}\n" for line in lines) + "    return record\n", namespace)
    for record in ({"a": 1, "c": 2, "n": {"m": True}}, {"a": 5}, {"a": -1}):
        expected = step.apply(dict(record))
        assert namespace["f"](dict(record)) == (None if expected is None else dict(expected))


@pytest.mark.parametrize(
    "record", [{"a": 1, "c": 2}, {"a": "3"}, {"a": 0}, {"a": None}, {"a": {"x": 1}}, {"b": 1}, {"a": [1]}]
)
def test_fused_pipeline_matches_step_by_step(record: dict[str, Any]) -> None:
    specs = [TransformationSpec(f"s{i}", k, c, sequence_order=i) for i, (k, c) in enumerate(SAMPLE_STEPS[2:])]
    pipeline = compile_transformations(specs)
    try:
        expected: Any = pipeline.apply_one(record)
    except TransformStepError as exc:
        expected = str(exc)
    try:
        got: Any = pipeline.fast_one(record)
    except TransformStepError as exc:
        got = str(exc)
    assert got == expected
