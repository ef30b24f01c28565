"""Muxly's date variables (``${DATE}``, ``${YESTERDAY}``, ``${TIMESTAMP}``, ``${YEAR}``, ``${MONTH}``, ``${DAY}``).

They are resolved in every string of ``action_params`` against the run's logical date (or its start when it
has none). Unknown ``${NAME}`` placeholders are left as they are.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

_VARIABLE = re.compile(r"\$\{([A-Z_]+)\}")


def date_variables(when: datetime) -> dict[str, str]:
    """The values of the date variables for ``when``."""
    return {
        "DATE": when.strftime("%Y-%m-%d"),
        "YESTERDAY": (when - timedelta(days=1)).strftime("%Y-%m-%d"),
        "TIMESTAMP": when.strftime("%Y%m%d_%H%M%S"),
        "YEAR": when.strftime("%Y"),
        "MONTH": when.strftime("%m"),
        "DAY": when.strftime("%d"),
    }


def resolve(value: Any, variables: Mapping[str, str]) -> Any:
    """``value`` with every ``${NAME}`` of ``variables`` replaced, recursively through dicts and lists."""
    if isinstance(value, str):
        return _VARIABLE.sub(lambda m: variables.get(m.group(1), m.group(0)), value)
    if isinstance(value, Mapping):
        return {k: resolve(v, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, variables) for v in value]
    return value
