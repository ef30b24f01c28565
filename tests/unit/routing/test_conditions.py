"""The condition language: operators, precedence, types, missing fields and error positions."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from typing import Any

import pytest

from muxly_provider.exceptions import MuxlyConditionError
from muxly_provider.routing import compile_condition, parse_condition
from muxly_provider.routing.condition_ast import And, Compare, Exists, In, Literal, Not, Or, Path, unparse
from muxly_provider.routing.conditions import compile_node

RECORD: dict[str, Any] = {
    "revenue": 1500,
    "country": "US",
    "category": "electronics",
    "status": "shipped",
    "email": "ann@example.com",
    "product_id": "XYZ-123",
    "total_purchases": 1200,
    "last_purchase_date": "2023-06-01",
    "shipping_address": {"city": "Austin"},
    "user": {"profile": {"country": "US"}},
    "items": [{"sku": "A1"}, {"sku": "B2"}],
    "tags": ["new", "vip", 7],
    "note": None,
    "active": True,
    "amount_text": "1500",
    "first name": "Ann",
}


def both(expression: str, record: Any) -> bool:
    """The generated-code and the closure form must agree; return their answer."""
    fast = compile_condition(expression)(record)
    slow = compile_node(parse_condition(expression))(record)
    assert fast is slow, expression
    return fast


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # the original documentation's examples
        ("revenue > 1000 AND country == 'US'", True),
        ("category == 'electronics' OR category == 'computers'", True),
        ("NOT status == 'cancelled'", True),
        ("EXISTS shipping_address", True),
        ("NOT EXISTS error_code", True),
        ("$.user.profile.country == 'US'", True),
        ("email CONTAINS '@example.com'", True),
        ("product_id STARTS WITH 'XYZ'", True),
        ("total_purchases > 1000 AND last_purchase_date > '2023-01-01'", True),
        # every operator
        ("revenue == 1500", True),
        ("revenue = 1500", True),
        ("revenue != 1500", False),
        ("revenue <> 1", True),
        ("revenue >= 1500", True),
        ("revenue < 1500", False),
        ("revenue <= 1500", True),
        ("email NOT CONTAINS 'example'", False),
        ("email ENDS WITH '.com'", True),
        ("country IN ('US', 'CA')", True),
        ("country NOT IN ('US', 'CA')", False),
        ("country IN ()", False),
        ("revenue IN (1, 1500)", True),
        ("$.items[0].sku == 'A1'", True),
        ("items[1].sku == 'B2'", True),
        ("$.items[-1].sku == 'B2'", True),
        ("$['first name'] == 'Ann'", True),
        ("shipping_address.city STARTS WITH 'Aus'", True),
        ("revenue > -5.5", True),
        ("revenue < 1e4", True),
        ("active == true", True),
        ("active == false", False),
        ("note == null", True),
        ("note != null", False),
        ("country != null", True),
        ("EXISTS note", True),
        ("EXISTS (user.profile)", True),
        ("tags CONTAINS 'vip'", True),
        ("tags CONTAINS 7", True),
        ("tags CONTAINS '7'", True),
        ("shipping_address CONTAINS 'city'", True),
        ("revenue > total_purchases", True),
        ("1000 < revenue", True),
        # keywords in any case
        ("revenue > 1000 and country == 'US'", True),
        ("email contains 'ann' AnD not EXISTS x", True),
        ("product_id starts with 'XYZ'", True),
    ],
)
def test_operators_and_examples(expression: str, expected: bool) -> None:
    assert both(expression, RECORD) is expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("a == 1 OR b == 1 AND c == 1", True),  # a OR (b AND c)
        ("(a == 1 OR b == 1) AND c == 1", False),
        ("NOT a == 1 OR a == 1", True),  # (NOT a) OR a
        ("NOT (a == 1 OR b == 2)", False),
        ("NOT NOT a == 1", True),
    ],
)
def test_precedence(expression: str, expected: bool) -> None:
    assert both(expression, {"a": 1, "b": 0, "c": 0}) is expected


def test_precedence_tree() -> None:
    a, b, c = (Compare("==", Path((name,)), Literal(1)) for name in "abc")
    assert parse_condition("a == 1 OR b == 1 AND c == 1") == Or((a, And((b, c))))
    assert parse_condition("NOT EXISTS a") == Not(Exists(Path(("a",))))
    assert parse_condition("a NOT IN (1, 'x')") == In(Path(("a",)), (Literal(1), Literal("x")), True)


@pytest.mark.parametrize(
    ("expression", "value", "expected"),
    [
        ("x > 1000", "1500", True),  # numeric strings compare numerically with numbers
        ("x == 1500", "1500", True),
        ("x > '1000'", 1500, True),
        ("x > 1000", "abc", False),  # mismatched types: false, no exception
        ("x < 1000", "abc", False),
        ("x == 1", True, False),  # booleans are not numbers
        ("x > 0", True, False),
        ("x == true", "TRUE", True),
        ("x > '2023-01-01'", "2023-06-01", True),  # ISO dates: lexicographic
        ("x > '2023-01-01'", dt.date(2023, 6, 1), True),
        ("x > '2023-01-01'", dt.datetime(2022, 6, 1, 12), False),
        ("x > 1", Decimal("2.5"), True),
        ("x == 2.5", Decimal("2.5"), True),
        ("x > 1", [5], False),
        ("x > 1", {"a": 1}, False),
        ("x == 'abc'", "ABC", False),  # case-sensitive
        ("x > 'b'", "a", False),
        ("x CONTAINS 'b'", 123, False),
        ("x STARTS WITH '1'", 123, False),
        ("x == null", None, True),
        ("x > null", 1, False),
        ("x == 1.0", 1, True),
        ("x IN ('1', 2)", 1, True),
        ("x IN (true)", "true", True),
    ],
)
def test_types(expression: str, value: Any, expected: bool) -> None:
    assert both(expression, {"x": value}) is expected


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        ("missing == 'x'", False),
        ("missing != 'x'", True),
        ("missing > 0", False),
        ("missing <= 0", False),
        ("NOT missing > 0", True),
        ("missing CONTAINS 'x'", False),
        ("missing NOT CONTAINS 'x'", True),
        ("missing STARTS WITH 'x'", False),
        ("missing IN ('x')", False),
        ("missing NOT IN ('x')", True),
        ("missing == null", True),
        ("missing != null", False),
        ("EXISTS missing", False),
        ("a.b.c == 1", False),
        ("$.a[3] == 1", False),
    ],
)
def test_missing_fields(expression: str, expected: bool) -> None:
    assert both(expression, {"a": {"b": 5}}) is expected


@pytest.mark.parametrize("record", [None, [], "text", 42, {"x": [1, 2]}, {"x": "abc"}, {"x": {"z": None}}])
@pytest.mark.parametrize(
    "expression",
    [
        "x.y == 1",
        "x[0] == 9",
        "x.y > 1",
        "EXISTS x.y",
        "x.y CONTAINS 'a'",
        "x.y IN ('a')",
        "x.y STARTS WITH 'a'",
    ],
)
def test_wrong_shapes_are_false(record: Any, expression: str) -> None:
    assert both(expression, record) is False


def test_list_index_never_reads_a_string() -> None:
    assert both("x[0] == 'a'", {"x": "abc"}) is False


@pytest.mark.parametrize("expression", [None, "", "   \n"])
def test_empty_is_always(expression: str | None) -> None:
    assert compile_condition(expression)({}) is True


@pytest.mark.parametrize(
    ("expression", "message", "position"),
    [
        ("revenue >", "expected a value after '>'", 9),
        ("revenue > 'abc", "unterminated string", 10),
        ("revenue => 5", "unknown operator '=>'", 8),
        ("revenue LIKE 'a%'", "unknown operator 'LIKE'", 8),
        ("a && b", "unknown operator '&&' (use AND)", 2),
        ("(a == 1", "missing ')'", 7),
        ("a == 1)", "unexpected ')'", 6),
        ("a == 1 b == 2", "expected AND, OR or the end", 7),
        ('a == "x"', "single quotes", 5),
        ("a STARTS 'x'", "expected WITH after STARTS", 9),
        ("a NOT 'x'", "expected CONTAINS or IN after NOT", 6),
        ("a IN 'x'", "expected '(' after IN", 5),
        ("a IN ('x' 'y')", "expected ',' or ')'", 10),
        ("a IN (b)", "expected a value in the IN list", 6),
        ("EXISTS 5", "expected a field path after EXISTS", 7),
        ("a == 12abc", "invalid number", 5),
        ("a ~ 1", "unknown operator '~'", 2),
        ("a == 1 AND", "expected a condition", 10),
        ("a", "expected an operator after 'a'", 1),
        ("$ == 1", "expected '.' or '['", 1),
        ("a.b. == 1", "expected a field name", 4),
        ("a[x] == 1", "expected an index or a quoted key", 2),
        ("a[*] == 1", "wildcards are not supported", 2),
        ("a[0 == 1", "missing ']'", 1),
        ("a # 1", "unexpected character '#'", 2),
        ("a == " + "9" * 5000, "number too long", 5),
    ],
)
def test_errors(expression: str, message: str, position: int) -> None:
    with pytest.raises(MuxlyConditionError) as info:
        compile_condition(expression)
    assert message in info.value.message
    assert info.value.position == position
    assert info.value.caret().splitlines()[1] == " " * position + "^"


def test_nesting_limit() -> None:
    deep = "(" * 101 + "a == 1" + ")" * 101
    with pytest.raises(MuxlyConditionError, match="nested"):
        compile_condition(deep)
    with pytest.raises(MuxlyConditionError, match="nested"):
        compile_condition("NOT " * 150 + "a == 1")
    ok = "(" * 100 + "a == 1" + ")" * 100
    assert compile_condition(ok)({"a": 1}) is True


def test_long_flat_expression_compiles() -> None:
    expression = " OR ".join(f"a == {i}" for i in range(3000))
    matches = compile_condition(expression)
    assert matches({"a": 2999}) is True
    assert matches({"a": -1}) is False


def test_quotes_and_escapes() -> None:
    assert both("name == 'O''Brien'", {"name": "O'Brien"})
    assert both("name == 'O\\'Brien'", {"name": "O'Brien"})
    assert both("path == 'C:\\temp'", {"path": "C:\\temp"})


def test_generated_code_holds_no_user_text() -> None:
    evil = "__import__('os').system('false')"
    quoted = evil.replace("'", "''")
    matches = compile_condition(f"$['{quoted}'] == '{quoted}'")
    assert matches({evil: evil}) is True
    assert matches({}) is False


def test_unparse_round_trip() -> None:
    expression = "(a == 1 OR b.c[0] != 'x''y') AND NOT EXISTS $['d e'] AND f NOT IN (1, 2.5, true, null)"
    tree = parse_condition(expression)
    assert parse_condition(unparse(tree)) == tree


def test_cached() -> None:
    assert compile_condition("a == 1") is compile_condition("a == 1")
