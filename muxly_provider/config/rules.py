"""``routing_rules``, ``rule_transformations``, ``routes`` and the two join tables.

``routing_rules.condition`` is accepted in three forms (SPEC §2), all meaning the same expression:

* NULL, an empty string, a JSON ``null``/``""`` or ``{"expression": ""}``: the rule always matches;
* a JSON string (``"\\"revenue > 1000\\""``) or a JSON object ``{"expression": "revenue > 1000"}``;
* plain text that is not JSON (``revenue > 1000``), which is what users type; it is taken as the expression.

``routes.error_handling`` accepts the original service's names ``on_error`` (for ``mode``) and
``error_destination_id`` (for ``dead_letter_destination_id``).
"""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import AliasChoices, Field, model_validator

from muxly_provider.config.base import NonEmptyStr, NonNegativeInt, StrictConfig
from muxly_provider.config.transformations import TransformationConfig


def condition_expression(raw: Any) -> str | None:
    """The expression held by a ``routing_rules.condition`` value, ``None`` for "always".

    :param raw: the column's text, or an already parsed value (a string or ``{"expression": ...}``)
    :raises ValueError: when the value is JSON of another shape
    """
    value: Any = raw
    if isinstance(raw, str):
        text = raw.strip()
        if not text:
            return None
        try:
            value = json.loads(text)
        except ValueError:
            # Plain text that is not JSON is the expression itself.
            return text
        if not isinstance(value, str | dict) and value is not None:
            # ``42`` or ``true`` parse as JSON but are meant as (odd) expressions: leave them to the parser.
            return text
    if value is None:
        return None
    if isinstance(value, str):
        return value.strip() or None
    if isinstance(value, dict):
        unknown = sorted(set(value) - {"expression"})
        if unknown:
            raise ValueError(f"an object with only the key 'expression' (unknown: {', '.join(unknown)})")
        expression = value.get("expression")
        if expression is None:
            return None
        if not isinstance(expression, str):
            raise ValueError("'expression' to be a string")
        return expression.strip() or None
    raise ValueError('an expression: a string or {"expression": "..."}')


class ErrorHandlingConfig(StrictConfig):
    """``routes.error_handling``: what a route does with unmatched and failed records.

    ``mode``: ``continue`` (count and go on), ``fail`` (fail the run) or ``dead_letter`` (send failed records
    to ``dead_letter_destination_id``). Unmatched records go to ``default_destination_id`` when set. The run
    fails when more than ``max_failed_records`` records failed.
    """

    mode: Literal["continue", "fail", "dead_letter"] = Field(
        default="continue", validation_alias=AliasChoices("mode", "on_error")
    )
    default_destination_id: NonEmptyStr | None = None
    dead_letter_destination_id: NonEmptyStr | None = Field(
        default=None, validation_alias=AliasChoices("dead_letter_destination_id", "error_destination_id")
    )
    max_failed_records: NonNegativeInt | None = None

    @model_validator(mode="before")
    @classmethod
    def _one_name_each(cls, data: Any) -> Any:
        if isinstance(data, dict):
            for name, alias in (("mode", "on_error"), ("dead_letter_destination_id", "error_destination_id")):
                if name in data and alias in data:
                    raise ValueError(f"either {name!r} or its alias {alias!r}, not both")
        return data

    @model_validator(mode="after")
    def _dead_letter_target(self) -> ErrorHandlingConfig:
        if self.mode == "dead_letter" and not self.dead_letter_destination_id:
            raise ValueError("'dead_letter_destination_id' when mode is 'dead_letter'")
        return self


class RoutingRuleRowSpec(StrictConfig):
    """A validated ``routing_rules`` row; ``condition`` is the expression (``None``: always)."""

    id: NonEmptyStr
    name: NonEmptyStr
    priority: int = 100
    enabled: bool = True
    condition: str | None = None


class RuleTransformationRowSpec(StrictConfig):
    """A validated ``rule_transformations`` row."""

    id: NonEmptyStr
    rule_id: NonEmptyStr
    transformation_type: NonEmptyStr
    config: TransformationConfig
    sequence_order: int = 0


class RouteRowSpec(StrictConfig):
    """A validated ``routes`` row (compiled into :class:`muxly_provider.routing.route_specs.RouteSpec` for a run)."""

    id: NonEmptyStr
    name: NonEmptyStr
    connector_id: NonEmptyStr
    enabled: bool = True
    error_handling: ErrorHandlingConfig = Field(default_factory=ErrorHandlingConfig)


class RouteRuleRowSpec(StrictConfig):
    """A validated ``route_rules`` row: rule ``rule_id`` belongs to route ``route_id``."""

    route_id: NonEmptyStr
    rule_id: NonEmptyStr
    sequence_order: int = 0


class RuleDestinationRowSpec(StrictConfig):
    """A validated ``rule_destinations`` row: rule ``rule_id`` sends to ``destination_id``."""

    rule_id: NonEmptyStr
    destination_id: NonEmptyStr
