"""How values compare in conditions and ``filter`` transformations: the rules users rely on.

* **Numbers** (int, float, ``Decimal``; never booleans) compare numerically. A string that is a plain JSON number
  (``'1500'``, ``'-2.5'``, ``'1e3'``; no spaces, no ``_``) compares numerically with a number: ``'1500' > 1000``.
* **Strings** compare with strings exactly and lexicographically (code points), so ISO dates order correctly:
  ``'2023-06-01' > '2023-01-01'``. Comparisons are case-sensitive.
* **Dates and datetimes** (from database connectors) compare as their ISO 8601 text.
* **Booleans** equal booleans, and the strings ``'true'``/``'false'`` (any case), never numbers; they have no order.
* **null**: ``x == null`` holds when ``x`` is null *or missing*; null and missing values have no order.
* **Mismatched types** (a number and a non-numeric string, a list and a number, ...) are unequal and unordered:
  ``==``, ``>``, ``<``, ... are false. Nothing ever raises.
* ``CONTAINS``: substring of a string, element of a list (with the equality above), key of an object.
* ``STARTS WITH`` / ``ENDS WITH``: strings only.

Every negated operator is exactly the negation of its positive form: ``a != b`` is ``NOT a == b``,
``NOT CONTAINS`` is ``NOT (... CONTAINS ...)``, ``NOT IN`` is ``NOT (... IN ...)``.
"""

from __future__ import annotations

import datetime as dt
import numbers
import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from fractions import Fraction
from typing import Any, Final

from muxly_provider.routing.paths import MISSING

NONE: Final = 0
BOOL: Final = 1
NUM: Final = 2
STR: Final = 3
LIST: Final = 4
MAP: Final = 5
OTHER: Final = 6

_NUMERIC = re.compile(r"-?(?:\d+(?:\.\d*)?|\.\d+)(?:[eE][+-]?\d+)?")
_KINDS: dict[type, int] = {
    str: STR,
    int: NUM,
    float: NUM,
    bool: BOOL,
    type(None): NONE,
    list: LIST,
    tuple: LIST,
    dict: MAP,
    Decimal: NUM,
    Fraction: NUM,
}


def as_number(text: str) -> int | float | None:
    """The number a string spells (JSON number syntax), ``None`` when it spells none."""
    if len(text) > 400 or _NUMERIC.fullmatch(text) is None:
        return None
    if any(c in text for c in ".eE"):
        return float(text)
    return int(text)


def normalize(value: Any) -> tuple[int, Any]:
    """The kind of ``value`` and the value to compare (missing is null, a date is its ISO text)."""
    kind = _KINDS.get(type(value))
    if kind is not None:
        return kind, value
    if value is MISSING:
        return NONE, None
    if isinstance(value, bool):
        return BOOL, value
    if isinstance(value, numbers.Real | Decimal):
        return NUM, value
    if isinstance(value, str):
        return STR, str(value)
    if isinstance(value, dt.date | dt.time):
        return STR, value.isoformat()
    if isinstance(value, list | tuple):
        return LIST, value
    if isinstance(value, Mapping):
        return MAP, value
    return OTHER, value


def _bool_text(text: str) -> bool | None:
    lowered = text.lower()
    return True if lowered == "true" else False if lowered == "false" else None


def equals(a: Any, b: Any) -> bool:
    """``a == b`` in the condition language (see the module docstring)."""
    try:
        ka, va = normalize(a)
        kb, vb = normalize(b)
        if ka == kb:
            return ka != OTHER and bool(va == vb)
        if ka > kb:
            ka, va, kb, vb = kb, vb, ka, va
        if ka == NUM and kb == STR:
            number = as_number(vb)
            return number is not None and bool(va == number)
        if ka == BOOL and kb == STR:
            return _bool_text(vb) is va
    except Exception:
        return False
    return False


def order(a: Any, b: Any) -> int | None:
    """-1, 0 or 1 as ``a`` sorts before, with or after ``b``; ``None`` when they have no order."""
    try:
        ka, va = normalize(a)
        kb, vb = normalize(b)
        if ka == STR and kb == NUM:
            va = as_number(va)
            ka = NUM if va is not None else STR
        elif ka == NUM and kb == STR:
            vb = as_number(vb)
            kb = NUM if vb is not None else STR
        if ka != kb or ka not in (NUM, STR):
            return None
        return -1 if va < vb else 1 if va > vb else 0 if va == vb else None
    except Exception:
        return None


def contains(a: Any, b: Any) -> bool:
    """``a CONTAINS b``: substring, list element or object key."""
    try:
        ka, va = normalize(a)
        if ka == STR:
            kb, vb = normalize(b)
            return kb == STR and vb in va
        if ka == LIST:
            return any(equals(item, b) for item in va)
        if ka == MAP:
            return isinstance(b, str) and b in va
    except Exception:
        return False
    return False


def starts_with(a: Any, b: Any) -> bool:
    """``a STARTS WITH b`` (strings only)."""
    ka, va = normalize(a)
    kb, vb = normalize(b)
    return ka == STR and kb == STR and bool(va.startswith(vb))


def ends_with(a: Any, b: Any) -> bool:
    """``a ENDS WITH b`` (strings only)."""
    ka, va = normalize(a)
    kb, vb = normalize(b)
    return ka == STR and kb == STR and bool(va.endswith(vb))


def _gt(a: Any, b: Any) -> bool:
    return order(a, b) == 1


def _ge(a: Any, b: Any) -> bool:
    return order(a, b) in (0, 1)


def _lt(a: Any, b: Any) -> bool:
    return order(a, b) == -1


def _le(a: Any, b: Any) -> bool:
    return order(a, b) in (0, -1)


BINARY: dict[str, Callable[[Any, Any], bool]] = {
    "==": equals,
    "!=": lambda a, b: not equals(a, b),
    ">": _gt,
    ">=": _ge,
    "<": _lt,
    "<=": _le,
    "CONTAINS": contains,
    "NOT CONTAINS": lambda a, b: not contains(a, b),
    "STARTS WITH": starts_with,
    "ENDS WITH": ends_with,
}
"""The general (slow-path) implementation of every binary operator."""
