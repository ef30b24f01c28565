"""The raw-bytes JSON depth measure of :mod:`muxly_provider.api.limits` agrees with the parsed depth."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from muxly_provider.api.limits import MAX_JSON_DEPTH, json_too_deep

TEXT = st.text(alphabet=st.sampled_from(list('ab[]{}"\\\n é')), max_size=8)
JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=40,
)


def _depth(value: Any) -> int:
    if isinstance(value, list):
        return 1 + max((_depth(v) for v in value), default=0)
    if isinstance(value, dict):
        return 1 + max((_depth(v) for v in value.values()), default=0)
    return 0


@settings(max_examples=300, deadline=None)
@given(JSON, st.integers(min_value=0, max_value=6), st.booleans())
def test_the_raw_measure_agrees_with_the_parsed_depth(value: Any, limit: int, ascii_only: bool) -> None:
    body = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert json_too_deep(body, limit) == (_depth(value) > limit)


@pytest.mark.parametrize(
    "body",
    [
        b"[" * 1_000_000,
        b"[]" * 500_000,
        b'"' * 1_000_000,
        b"\\" * 1_000_000,
        b'"\\' * 500_000,
        b'"a",[' * 200_000,
    ],
)
def test_a_mebibyte_is_measured_in_linear_time(body: bytes) -> None:
    started = time.monotonic()
    json_too_deep(body, MAX_JSON_DEPTH)
    assert time.monotonic() - started < 1.0
