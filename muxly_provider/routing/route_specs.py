"""Plain, immutable specs of routes (rules, their transformations, error handling) the router is compiled from.

They are built from validated rows (see :mod:`muxly_provider.config`) by the operators, the CLI and the API, and
carry no Airflow, SQLAlchemy or pydantic types, so that the routing package stays pure.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

ErrorMode = Literal["continue", "fail", "dead_letter"]


@dataclass(frozen=True)
class TransformationSpec:
    """One step of a rule: ``transformation_type`` with its ``config``, applied in ``sequence_order``."""

    id: str
    transformation_type: str
    config: Mapping[str, Any]
    sequence_order: int = 0


@dataclass(frozen=True)
class RuleSpec:
    """A rule of a route: records matching ``condition`` (``None``: always) are transformed and sent on."""

    id: str
    name: str
    condition: str | None
    destination_ids: tuple[str, ...]
    transformations: tuple[TransformationSpec, ...] = ()
    priority: int = 100
    sequence_order: int = 0


@dataclass(frozen=True)
class ErrorHandlingSpec:
    """What a route does with unmatched records and records whose transformation fails."""

    mode: ErrorMode = "continue"
    default_destination_id: str | None = None
    dead_letter_destination_id: str | None = None
    max_failed_records: int | None = None


@dataclass(frozen=True)
class RouteSpec:
    """A route: its rules (any order; the router sorts them) and its error handling."""

    id: str
    name: str
    rules: tuple[RuleSpec, ...]
    error_handling: ErrorHandlingSpec = field(default_factory=ErrorHandlingSpec)
