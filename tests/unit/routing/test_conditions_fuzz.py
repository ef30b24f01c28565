"""Property tests: no input breaks the parser, trees round-trip, both compiled forms agree."""

from __future__ import annotations

import time
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from muxly_provider.exceptions import MuxlyConditionError
from muxly_provider.routing import compile_condition, parse_condition
from muxly_provider.routing.condition_ast import (
    COMPARE_OPS,
    And,
    Compare,
    Exists,
    In,
    Literal,
    Node,
    Not,
    Or,
    Path,
    unparse,
)
from muxly_provider.routing.conditions import compile_node

ALPHABET = st.sampled_from(
    [*list("abcxyz_$.[]()'\"=!<>-,0123456789 eEANDORTINSXWH\\\t~&|*%#"), "é", "²", "\x00"]
)
TOKENS = st.sampled_from(
    [
        "a",
        "b.c",
        "$.d[0]",
        "==",
        "!=",
        ">",
        "<=",
        "AND",
        "OR",
        "NOT",
        "(",
        ")",
        "'x'",
        "''",
        "1",
        "-2.5",
        "CONTAINS",
        "STARTS",
        "WITH",
        "IN",
        "EXISTS",
        ",",
        "null",
        "true",
        "[",
        "]",
        "'",
        "$",
        ".",
    ]
)


def _check(text: str) -> None:
    started = time.monotonic()
    error: MuxlyConditionError | None = None
    try:
        matches = compile_condition(text)
    except MuxlyConditionError as exc:
        error = exc
    if error is not None:
        assert 0 <= error.position <= len(text)
    else:
        for record in ({}, {"a": 1, "b": {"c": "x"}, "d": [None]}, [], None):
            assert matches(record) in (True, False)  # type: ignore[arg-type]
    assert time.monotonic() - started < 1.0


@settings(max_examples=400, deadline=None, database=None)
@given(st.text(ALPHABET, max_size=80))
def test_arbitrary_text_only_raises_condition_errors(text: str) -> None:
    _check(text)


@settings(max_examples=400, deadline=None, database=None)
@given(st.lists(TOKENS, max_size=25))
def test_token_soup_only_raises_condition_errors(tokens: list[str]) -> None:
    _check(" ".join(tokens))


@settings(max_examples=100, deadline=None, database=None)
@given(st.text(max_size=200))
def test_unicode_text(text: str) -> None:
    _check(text)


KEYS = st.sampled_from(["a", "b", "c", "in", "first name", "x-y", "2023", "it's"])
SEGMENTS = st.lists(st.one_of(KEYS, st.integers(-3, 3)), min_size=0, max_size=3)
PATHS = st.builds(lambda first, rest: Path((first, *rest)), KEYS, SEGMENTS)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=32),
    st.text(st.sampled_from(list("ab'\\ 1.-eT")), max_size=6),
)
LITERALS = st.builds(Literal, SCALARS)
OPERANDS = st.one_of(PATHS, LITERALS)
LEAVES = st.one_of(
    st.builds(Compare, st.sampled_from(COMPARE_OPS), OPERANDS, OPERANDS),
    st.builds(In, OPERANDS, st.lists(LITERALS, max_size=3).map(tuple), st.booleans()),
    st.builds(Exists, PATHS),
)


def _tree(children: st.SearchStrategy[Node]) -> st.SearchStrategy[Node]:
    many = st.lists(children, min_size=2, max_size=3).map(tuple)
    return st.one_of(st.builds(Not, children), st.builds(And, many), st.builds(Or, many))


TREES = st.recursive(LEAVES, _tree, max_leaves=8)

VALUES: st.SearchStrategy[Any] = st.recursive(
    SCALARS,
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(KEYS, inner, max_size=3)),
    max_leaves=6,
)
RECORDS = st.one_of(st.dictionaries(KEYS, VALUES, max_size=5), VALUES)


@settings(max_examples=300, deadline=None, database=None)
@given(TREES)
def test_trees_round_trip(tree: Node) -> None:
    text = unparse(tree)
    assert parse_condition(text) == tree, text


@settings(max_examples=300, deadline=None, database=None)
@given(TREES, st.lists(RECORDS, max_size=4))
def test_generated_code_agrees_with_closures(tree: Node, records: list[Any]) -> None:
    text = unparse(tree)
    fast = compile_condition(text)
    slow = compile_node(tree)
    for record in records:
        assert fast(record) is slow(record), (text, record)
