"""Muxly's date variables."""

from __future__ import annotations

from datetime import UTC, datetime

from muxly_provider.runtime.variables import date_variables, resolve


def test_date_variables_resolve_recursively() -> None:
    when = datetime(2026, 3, 1, 6, 5, 4, tzinfo=UTC)
    params = {
        "q": {"day": "${YESTERDAY}", "list": ["${DATE}", 3]},
        "f": "out_${TIMESTAMP}_${YEAR}${MONTH}${DAY}",
        "keep": "${UNKNOWN} and $DATE",
    }
    assert resolve(params, date_variables(when)) == {
        "q": {"day": "2026-02-28", "list": ["2026-03-01", 3]},
        "f": "out_20260301_060504_20260301",
        "keep": "${UNKNOWN} and $DATE",
    }
