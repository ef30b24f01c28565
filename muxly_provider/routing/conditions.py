"""Muxly's condition language: parse an expression once, compile it into nested closures, run it per record.

Syntax (SPEC §2; see ``docs/conditions.md`` for the full guide)::

    revenue > 1000 AND country == 'US'
    category == 'electronics' OR category == 'computers'
    NOT status == 'cancelled'
    EXISTS shipping_address AND NOT EXISTS error_code
    $.user.profile.country IN ('US', 'CA') AND $.items[0].sku STARTS WITH 'XYZ'

* operators ``==`` (also ``=``), ``!=`` (also ``<>``), ``>``, ``>=``, ``<``, ``<=``, ``CONTAINS``,
  ``NOT CONTAINS``, ``STARTS WITH``, ``ENDS WITH``, ``IN (...)``, ``NOT IN (...)``, ``EXISTS path``,
  ``NOT EXISTS path``; ``AND``, ``OR``, ``NOT`` and parentheses, ``AND`` binding tighter than ``OR``;
  keywords in any case;
* values: single-quoted strings (a quote inside is doubled, ``'O''Brien'``, or escaped, ``'O\\'Brien'``),
  numbers (``42``, ``-1.5``, ``1e3``), ``true``, ``false``, ``null``;
* fields: dotted paths or JSONPath (:mod:`muxly_provider.routing.paths`); either side of a comparison may be a
  field, so ``shipped_at > ordered_at`` compares two fields.

Semantics (the decisions users trip over; details in :mod:`muxly_provider.routing.condition_values`):

* a **missing** field equals ``null`` and nothing else, and has no order: ``missing == null`` is true,
  ``missing > 0``, ``missing == 'x'``, ``missing CONTAINS 'x'`` are false, and therefore ``missing != 'x'``,
  ``missing NOT CONTAINS 'x'`` and ``missing NOT IN ('x')`` are true (every negated form is exactly ``NOT`` of
  its positive form);
* ``EXISTS path`` is true when the path resolves to any value, ``null`` included; ``x != null`` is true when
  ``x`` holds a non-null value;
* numeric strings compare numerically with numbers (``'1500' > 1000``); other type mismatches are simply
  false; strings compare lexicographically (ISO dates order correctly); ``'true'``/``'false'`` equal the
  booleans;
* a record of the wrong shape (not an object, or a list where an object is expected) makes the comparison
  false; a compiled condition never raises.

Expressions are tokenized and parsed by hand (never ``eval``); a malformed one raises
:class:`~muxly_provider.exceptions.MuxlyConditionError` with the 0-based position of the error.
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from functools import lru_cache
from typing import Any

from muxly_provider.routing.condition_ast import (
    Always,
    And,
    Compare,
    Exists,
    In,
    Literal,
    Node,
    Not,
    Operand,
    Or,
    Path,
    unparse,
)
from muxly_provider.routing.condition_codegen import generate
from muxly_provider.routing.condition_parser import MAX_DEPTH, MAX_LENGTH, parse
from muxly_provider.routing.condition_values import BINARY, as_number, contains, equals, order
from muxly_provider.routing.paths import MISSING, compile_getter

__all__ = [
    "MAX_DEPTH",
    "MAX_LENGTH",
    "Condition",
    "compile_condition",
    "compile_node",
    "parse_condition",
    "unparse",
]

Condition = Callable[[Mapping[str, Any]], bool]
"""A compiled condition: record -> whether it matches."""

_FLIP = {"==": "==", "!=": "!=", ">": "<", ">=": "<=", "<": ">", "<=": ">="}


def _always(record: Mapping[str, Any]) -> bool:
    return True


@lru_cache(maxsize=2048)
def parse_condition(expression: str | None) -> Node:
    """The syntax tree of ``expression``; :class:`Always` for ``None``, empty or blank text.

    :param expression: the condition's text
    :raises MuxlyConditionError: when the expression is malformed (with the position of the error)
    """
    if expression is None or not expression.strip():
        return Always()
    return parse(expression)


@lru_cache(maxsize=2048)
def compile_condition(expression: str | None) -> Condition:
    """A function telling whether a record matches ``expression`` (``None``/empty: always true).

    :param expression: the condition's text
    :raises MuxlyConditionError: when the expression is malformed (with the position of the error)
    """
    node = parse_condition(expression)
    return generate(node, compile_node(node), compile_node)


def compile_node(node: Node) -> Condition:
    """The compiled form of a syntax tree (nested closures; no ``eval``).

    :param node: a tree from :func:`parse_condition`
    """
    if isinstance(node, Compare):
        return _compare(node)
    if isinstance(node, In):
        return _in(node)
    if isinstance(node, Exists):
        get = compile_getter(node.path.segments)
        return lambda record: get(record) is not MISSING
    if isinstance(node, Not):
        inner = compile_node(node.operand)
        return lambda record: not inner(record)
    if isinstance(node, And):
        return _and([compile_node(child) for child in node.operands])
    if isinstance(node, Or):
        return _or([compile_node(child) for child in node.operands])
    return _always


def _and(preds: list[Condition]) -> Condition:
    if len(preds) == 2:
        a, b = preds
        return lambda record: a(record) and b(record)
    if len(preds) == 3:
        a, b, c = preds
        return lambda record: a(record) and b(record) and c(record)
    all_preds = tuple(preds)

    def and_(record: Mapping[str, Any]) -> bool:
        for pred in all_preds:  # noqa: SIM110 (a loop is faster than all() over a generator)
            if not pred(record):
                return False
        return True

    return and_


def _or(preds: list[Condition]) -> Condition:
    if len(preds) == 2:
        a, b = preds
        return lambda record: a(record) or b(record)
    if len(preds) == 3:
        a, b, c = preds
        return lambda record: a(record) or b(record) or c(record)
    all_preds = tuple(preds)

    def or_(record: Mapping[str, Any]) -> bool:
        for pred in all_preds:  # noqa: SIM110 (a loop is faster than any() over a generator)
            if pred(record):
                return True
        return False

    return or_


def _value_of(operand: Operand) -> Callable[[Any], Any]:
    if isinstance(operand, Path):
        return compile_getter(operand.segments)
    value = operand.value
    return lambda record: value


def _compare(node: Compare) -> Condition:
    op: str = node.op
    left, right = node.left, node.right
    if isinstance(left, Literal) and isinstance(right, Path) and op in _FLIP:
        left, right, op = right, left, _FLIP[op]
    if isinstance(left, Path) and isinstance(right, Literal):
        fast = _fast_compare(op, compile_getter(left.segments), right.value)
        if fast is not None:
            return fast
    get_left, get_right = _value_of(left), _value_of(right)
    general = BINARY[op]
    return lambda record: general(get_left(record), get_right(record))


def _fast_compare(op: str, get: Callable[[Any], Any], value: Any) -> Condition | None:
    """A specialized closure for ``path OP literal``: exact JSON types inline, everything else general."""
    if op in ("==", "!="):
        eq = _fast_equals(get, value)
        if op == "==":
            return eq
        return lambda record: not eq(record)
    if op in (">", ">=", "<", "<="):
        return _fast_order(op, get, value)
    if op == "CONTAINS" and type(value) is str:
        text = value

        def contains_str(record: Mapping[str, Any]) -> bool:
            v = get(record)
            if type(v) is str:
                return text in v
            return contains(v, text)

        return contains_str
    if op in ("STARTS WITH", "ENDS WITH") and type(value) is str:
        prefix = value
        general = BINARY[op]
        method = str.startswith if op == "STARTS WITH" else str.endswith

        def affix(record: Mapping[str, Any]) -> bool:
            v = get(record)
            if type(v) is str:
                return method(v, prefix)
            return general(v, prefix)

        return affix
    return None


def _fast_equals(get: Callable[[Any], Any], value: Any) -> Condition:
    if value is None:
        return lambda record: get(record) in (None, MISSING)
    kind = type(value)

    def eq(record: Mapping[str, Any]) -> bool:
        v = get(record)
        if type(v) is kind:
            return bool(v == value)
        return equals(v, value)

    return eq


def _fast_order(op: str, get: Callable[[Any], Any], value: Any) -> Condition:
    if type(value) not in (int, float, str):
        # booleans and null have no order
        return lambda record: False
    compare: Callable[[Any, Any], bool] = {
        ">": operator.gt,
        ">=": operator.ge,
        "<": operator.lt,
        "<=": operator.le,
    }[op]
    wanted = {">": (1,), ">=": (0, 1), "<": (-1,), "<=": (-1, 0)}[op]
    fast_type: type = str if type(value) is str else float

    def ordered(record: Mapping[str, Any]) -> bool:
        v = get(record)
        t = type(v)
        if t is fast_type or (t is int and fast_type is float):
            return compare(v, value)
        return order(v, value) in wanted

    return ordered


def _in(node: In) -> Condition:
    get = _value_of(node.operand)
    values = tuple(literal.value for literal in node.values)
    # Fast membership for exact strings when no value needs coercion.
    strings = frozenset(v for v in values if type(v) is str)
    simple = all(
        type(v) is str and as_number(v) is None and v.lower() not in ("true", "false") for v in values
    )

    def member(record: Mapping[str, Any]) -> bool:
        v = get(record)
        if simple and type(v) is str:
            return v in strings
        return any(equals(v, candidate) for candidate in values)

    if node.negated:
        return lambda record: not member(record)
    return member
