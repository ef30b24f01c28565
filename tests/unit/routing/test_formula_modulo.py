"""``%`` takes the sign of the divisor for every number type (docs/routing.md), ``Decimal`` included."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from muxly_provider.routing import TransformationSpec, compile_transformations
from muxly_provider.routing.formula import compile_expr, compile_formula
from muxly_provider.routing.formula_parser import parse_formula
from muxly_provider.routing.transform_steps import StepFailure


def _all_forms(text: str, record: dict[str, Any]) -> list[Any]:
    """The value of ``text`` from the generated code, the closure form and a compiled transformation."""
    spec = TransformationSpec("f1", "formula", {"output_field": "out", "formula": text})
    return [
        compile_formula(text)(record),
        compile_expr(parse_formula(text))(record),
        compile_transformations([spec])(dict(record))[0]["out"],
    ]


@pytest.mark.parametrize(
    ("text", "record", "expected"),
    [
        ("a % b", {"a": Decimal("-7"), "b": 3}, Decimal("2")),
        ("a % b", {"a": Decimal("7"), "b": Decimal("-3")}, Decimal("-2")),
        ("a % b", {"a": Decimal("-7.5"), "b": Decimal("2")}, Decimal("0.5")),
        ("a % b", {"a": -7, "b": Decimal("3")}, Decimal("2")),
        ("a % b", {"a": Decimal("-6"), "b": 3}, Decimal("0")),
        ("a * 1 % b + 1", {"a": Decimal("-7"), "b": 3}, Decimal("3")),
        ("a % b % c", {"a": Decimal("-7"), "b": 5, "c": Decimal("-2")}, Decimal("-1")),
        ("a % b", {"a": Decimal("-7"), "b": 2.0}, 1.0),
        ("a % b", {"a": -7, "b": 3}, 2),
        ("a % b", {"a": 7.5, "b": -2}, -0.5),
    ],
)
def test_modulo_takes_the_sign_of_the_divisor(text: str, record: dict[str, Any], expected: Any) -> None:
    for value in _all_forms(text, record):
        assert value == expected and type(value) is type(expected)


@given(st.integers(-(10**6), 10**6), st.integers(-1000, 1000).filter(bool))
def test_decimal_modulo_matches_int_modulo(a: int, b: int) -> None:
    expected = Decimal(a % b)
    assert _all_forms("a % b", {"a": Decimal(a), "b": Decimal(b)}) == [expected] * 3


def test_decimal_modulo_by_zero_names_the_divisor() -> None:
    with pytest.raises(StepFailure, match=r"division by zero \('b' is 0\)"):
        compile_formula("a % b")({"a": Decimal("1"), "b": Decimal("0")})
