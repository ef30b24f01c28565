"""Property tests of formulas: no input crashes the parser with anything but :class:`FormulaSyntaxError`, what
parses compiles and evaluates (or fails the record with :class:`StepFailure`), the generated code and the
closure form agree, and long chains work (issue 10: 300 terms answered 500, 1,000 a RecursionError)."""

from __future__ import annotations

import math
import time
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from muxly_provider.exceptions import MuxlyConfigError
from muxly_provider.routing import TransformationSpec, compile_transformations
from muxly_provider.routing.formula import compile_expr, compile_formula
from muxly_provider.routing.formula_parser import (
    MAX_DEPTH,
    Chain,
    FormulaSyntaxError,
    parse_formula,
    unparse_formula,
)
from muxly_provider.routing.transform_steps import StepFailure

TOKENS = st.sampled_from(
    [
        "a",
        "b",
        "$.c[0]",
        "d.e",
        "1",
        "2.5",
        ".5",
        "1e3",
        "0",
        "+",
        "-",
        "*",
        "/",
        "%",
        "**",
        "(",
        ")",
        ",",
        "round(",
        "min(",
        "max(",
        "abs(",
        "coalesce(",
        "floor(",
        "ceil(",
        "sqrt(",
        "^",
        "//",
        "'",
        "[",
        "]",
        "$",
        " ",
    ]
)
RECORDS: list[dict[str, Any]] = [
    {},
    {"a": 1, "b": 2, "c": [3], "d": {"e": 4}},
    {"a": 0, "b": -1.5, "c": ["7"], "d": {"e": Decimal("2.5")}},
    {"a": "x", "b": None, "c": [True], "d": {"e": 1e308}},
]


def _check(text: str) -> None:
    started = time.monotonic()
    error: FormulaSyntaxError | None = None
    try:
        tree = parse_formula(text)
    except FormulaSyntaxError as exc:
        error = exc
    if error is not None:
        assert 0 <= error.position <= len(text)
        assert error.caret().splitlines()[-1] == " " * error.position + "^"
        return
    generated, closure = compile_formula(text), compile_expr(tree)
    for record in RECORDS:
        outcomes = []
        for evaluate in (generated, closure):
            try:
                outcomes.append(evaluate(record))
            except StepFailure:
                outcomes.append(StepFailure)
        if outcomes[0] is not StepFailure and outcomes[1] is not StepFailure:
            assert _same(outcomes[0], outcomes[1]), (text, record, outcomes)
    assert parse_formula(unparse_formula(tree)) is not None  # the canonical text parses again
    assert time.monotonic() - started < 2.0


def _same(left: Any, right: Any) -> bool:
    if isinstance(left, float) and isinstance(right, float) and math.isnan(left) and math.isnan(right):
        return True
    return bool(left == right)


@settings(max_examples=400, deadline=None)
@given(st.lists(TOKENS, max_size=30).map("".join))
def test_token_soup_never_crashes(text: str) -> None:
    _check(text)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=60))
def test_any_text_never_crashes(text: str) -> None:
    _check(text)


def _formula(depth: int) -> st.SearchStrategy[str]:
    leaf = st.sampled_from(["a", "b", "$.c[0]", "d.e", "2", "0.5", "3e2", "0"])
    if depth == 0:
        return leaf
    inner = _formula(depth - 1)
    return st.one_of(
        leaf,
        st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "%", "**"]), inner).map(
            lambda t: f"{t[0]} {t[1]} {t[2]}"
        ),
        inner.map(lambda x: f"({x})"),
        inner.map(lambda x: f"-{x}"),
        st.tuples(st.sampled_from(["min", "max", "coalesce"]), st.lists(inner, min_size=1, max_size=3)).map(
            lambda t: f"{t[0]}({', '.join(t[1])})"
        ),
        st.tuples(st.sampled_from(["abs", "floor", "ceil", "round"]), inner).map(lambda t: f"{t[0]}({t[1]})"),
    )


@settings(max_examples=300, deadline=None)
@given(_formula(4))
def test_well_formed_formulas_parse_compile_and_agree(text: str) -> None:
    parse_formula(text)  # never a syntax error: the grammar above only makes valid formulas
    _check(text)


@pytest.mark.parametrize(("opening", "cost"), [("(", 1), ("-(", 2), ("abs(", 1), ("1 ** (", 2), ("- ", 1)])
def test_nesting_up_to_the_limit_works_and_one_more_is_refused(opening: str, cost: int) -> None:
    """Each parenthesis, sign, power and call is one level; the deepest formula still runs."""

    def nested(levels: int) -> str:
        return opening * levels + "a" + ")" * (levels * opening.count("("))

    assert compile_formula(nested(MAX_DEPTH // cost))({"a": 1}) is not None
    with pytest.raises(FormulaSyntaxError, match=f"nested more than {MAX_DEPTH} levels"):
        parse_formula(nested(MAX_DEPTH // cost + 1))


@pytest.mark.parametrize("terms", [300, 1_000, 10_000])
@pytest.mark.parametrize("op", ["+", "-", "*", "/", "%"])
def test_long_chains_parse_flat_and_compute(terms: int, op: str) -> None:
    text = f" {op} ".join(["a"] * terms)
    tree = parse_formula(text)
    assert isinstance(tree, Chain) and len(tree.rest) == terms - 1
    expected = {"+": terms * 2, "-": 2 - (terms - 1) * 2, "*": 2**terms, "/": 2 / 2 ** (terms - 1), "%": 0}
    spec = TransformationSpec("long", "formula", {"output_field": "out", "formula": text})
    if op == "*" and terms > 1000:  # 2 ** 10,000 is a fine int; the formula result must stay finite
        assert compile_formula(text)({"a": 2}) == expected[op]
        return
    result = compile_transformations([spec])({"a": 2})[0]["out"]
    assert result == pytest.approx(expected[op])
    assert compile_formula(text)({"a": 2}) == pytest.approx(expected[op])


def test_a_chain_reports_the_operand_at_fault() -> None:
    text = " + ".join(["a"] * 500) + " / (b - 1)"
    with pytest.raises(StepFailure, match=r"division by zero \('b - 1' is 0\)"):
        compile_formula(text)({"a": 1, "b": 1})


@pytest.mark.parametrize(
    ("text", "position"),
    [("a +", 3), ("a + * b", 4), ("a +" + " a +" * 999, 3999), ("(a", 2), (")", 0)],
)
def test_incomplete_formulas_name_the_position(text: str, position: int) -> None:
    with pytest.raises(FormulaSyntaxError) as info:
        parse_formula(text)
    assert info.value.position == position


def test_the_length_limit_is_named() -> None:
    with pytest.raises(FormulaSyntaxError, match="longer than 100000 characters"):
        parse_formula("a" * 100_001)


def test_write_time_validation_names_the_position() -> None:
    from muxly_provider.config.validation import validate_row

    row = {
        "id": "t1",
        "rule_id": "r1",
        "transformation_type": "formula",
        "config": {"output_field": "x", "formula": "price * (1 +"},
        "sequence_order": 0,
    }
    with pytest.raises(MuxlyConfigError) as info:
        validate_row("rule_transformations", row)
    assert info.value.field == "config.formula"
    assert "at position 12" in info.value.expected
    row["config"] = {"output_field": "x", "formula": " + ".join(["price"] * 10_000)}
    assert validate_row("rule_transformations", row) is not None
