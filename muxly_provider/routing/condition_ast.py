"""The syntax tree of Muxly's condition language, and its canonical text (:func:`unparse`).

The tree is made of small frozen dataclasses: it is hashable, shareable between threads and safe to cache.
:mod:`muxly_provider.routing.condition_parser` builds it; :mod:`muxly_provider.routing.conditions` compiles it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal as TypingLiteral

from muxly_provider.routing.paths import Segment, format_path

Scalar = str | int | float | bool | None
"""The value of a literal: a single-quoted string, a number, ``true``, ``false`` or ``null``."""

CompareOp = TypingLiteral[
    "==", "!=", ">", ">=", "<", "<=", "CONTAINS", "NOT CONTAINS", "STARTS WITH", "ENDS WITH"
]
"""The binary operators (``=`` and ``<>`` are parsed as ``==`` and ``!=``)."""

COMPARE_OPS: tuple[CompareOp, ...] = (
    "==",
    "!=",
    ">",
    ">=",
    "<",
    "<=",
    "CONTAINS",
    "NOT CONTAINS",
    "STARTS WITH",
    "ENDS WITH",
)

KEYWORDS = frozenset(
    {"AND", "OR", "NOT", "CONTAINS", "STARTS", "ENDS", "WITH", "IN", "EXISTS", "TRUE", "FALSE", "NULL"}
)
"""Words that are never field names (case-insensitive); write ``$.in`` for a field named ``in``."""


@dataclass(frozen=True, slots=True)
class Path:
    """A field of the record, e.g. ``user.profile.country`` -> ``("user", "profile", "country")``."""

    segments: tuple[Segment, ...]


@dataclass(frozen=True, slots=True)
class Literal:
    """A constant value."""

    value: Scalar


Operand = Path | Literal


@dataclass(frozen=True, slots=True)
class Compare:
    """``left op right``."""

    op: CompareOp
    left: Operand
    right: Operand


@dataclass(frozen=True, slots=True)
class In:
    """``operand IN (values...)``, or ``NOT IN`` when ``negated``."""

    operand: Operand
    values: tuple[Literal, ...]
    negated: bool = False


@dataclass(frozen=True, slots=True)
class Exists:
    """``EXISTS path``: the path resolves to a value (``null`` included)."""

    path: Path


@dataclass(frozen=True, slots=True)
class Not:
    """``NOT operand``."""

    operand: Node


@dataclass(frozen=True, slots=True)
class And:
    """``a AND b AND ...`` (two or more operands)."""

    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Or:
    """``a OR b OR ...`` (two or more operands)."""

    operands: tuple[Node, ...]


@dataclass(frozen=True, slots=True)
class Always:
    """The empty condition: matches every record."""


Node = Compare | In | Exists | Not | And | Or | Always
"""Any node of a condition."""


def _is_identifier(key: str) -> bool:
    return (
        bool(key)
        and (key[0].isalpha() or key[0] == "_")
        and all(c.isalnum() or c in "_-" for c in key)
        and key.upper() not in KEYWORDS
    )


def _number(value: int | float) -> str:
    if isinstance(value, float):
        if math.isnan(value):
            raise ValueError("NaN has no text in the condition language")
        if math.isinf(value):
            return "1e999" if value > 0 else "-1e999"
    return repr(value)


def unparse_operand(operand: Operand) -> str:
    """The text of a path or a literal."""
    if isinstance(operand, Path):
        return format_path(operand.segments, identifier=_is_identifier)
    value = operand.value
    if value is None:
        return "null"
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
    return _number(value)


def unparse(node: Node) -> str:
    """The canonical text of ``node``; parsing it gives ``node`` back.

    :param node: a condition tree
    """
    if isinstance(node, Always):
        return ""
    if isinstance(node, Compare):
        return f"{unparse_operand(node.left)} {node.op} {unparse_operand(node.right)}"
    if isinstance(node, In):
        values = ", ".join(unparse_operand(v) for v in node.values)
        return f"{unparse_operand(node.operand)} {'NOT IN' if node.negated else 'IN'} ({values})"
    if isinstance(node, Exists):
        return f"EXISTS {unparse_operand(node.path)}"
    if isinstance(node, Not):
        inner = unparse(node.operand)
        return f"NOT ({inner})" if isinstance(node.operand, And | Or) else f"NOT {inner}"
    joiner = " AND " if isinstance(node, And) else " OR "
    parts = []
    for operand in node.operands:
        text = unparse(operand)
        # Same-kind children are grouped only when written in parentheses, so keep them; an OR inside an AND
        # needs them for precedence.
        parts.append(f"({text})" if isinstance(operand, And | Or) else text)
    return joiner.join(parts)
