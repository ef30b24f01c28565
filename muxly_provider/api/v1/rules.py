"""``/rules``: routing rules with their transformations and destinations; testing rules and conditions.

A rule's ``transformations`` and ``destination_ids`` are part of the rule: given on a write, they replace the
stored ones (transformations keep their stored secrets when sent back as ``"***"`` under the same id).
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from muxly_provider.api.errors import MuxlyHTTPError
from muxly_provider.api.v1 import crud
from muxly_provider.api.v1.common import (
    Id,
    Limit,
    Offset,
    Order,
    Page,
    StrictRequest,
    Timestamps,
    conflict,
    invalid,
)
from muxly_provider.auth.dependencies import DbSession, require
from muxly_provider.auth.permissions import Principal
from muxly_provider.config.rules import condition_expression
from muxly_provider.db.models import RuleDestination, RuleTransformation

TABLE = "routing_rules"
KIND = "rule"

router = APIRouter(prefix="/rules", tags=["rules"])

Records = Annotated[list[dict[str, Any]], Field(max_length=1000, description="Sample records (JSON objects)")]


class TransformationRequest(StrictRequest):
    """One transformation step of a rule."""

    id: Id | None = None
    transformation_type: str = Field(min_length=1, max_length=100)
    config: dict[str, Any] = Field(default_factory=dict)
    sequence_order: int | None = Field(default=None, ge=-1_000_000, le=1_000_000)


class TransformationResponse(Timestamps):
    """A transformation step."""

    id: str
    transformation_type: str
    config: dict[str, Any]
    sequence_order: int


class RuleCreateRequest(StrictRequest):
    """A new rule; ``condition`` is an expression (``null``: always)."""

    id: Id | None = None
    name: str = Field(min_length=1, max_length=500)
    priority: int = Field(default=100, ge=-1_000_000, le=1_000_000)
    enabled: bool = True
    condition: str | dict[str, Any] | None = Field(
        default=None, examples=["revenue > 1000 AND country == 'US'"]
    )
    transformations: list[TransformationRequest] = Field(default_factory=list, max_length=200)
    destination_ids: list[Annotated[str, Field(min_length=1, max_length=200)]] = Field(
        default_factory=list, max_length=200
    )


class RuleUpdateRequest(StrictRequest):
    """Changes to a rule; ``transformations`` and ``destination_ids`` replace the stored ones when given."""

    name: str | None = Field(default=None, min_length=1, max_length=500)
    priority: int | None = Field(default=None, ge=-1_000_000, le=1_000_000)
    enabled: bool | None = None
    condition: str | dict[str, Any] | None = None
    transformations: list[TransformationRequest] | None = Field(default=None, max_length=200)
    destination_ids: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        default=None, max_length=200
    )


class RuleResponse(Timestamps):
    """A rule with its steps (in order) and destinations."""

    id: str
    name: str
    priority: int
    enabled: bool
    condition: str | None
    transformations: list[TransformationResponse]
    destination_ids: list[str]


class RuleTestRequest(StrictRequest):
    """Records to run through a stored rule."""

    records: Records


class RuleTestResponse(BaseModel):
    """What the rule did with the records: its output per destination and the counts."""

    outputs: dict[str, list[dict[str, Any]]]
    stats: dict[str, Any]


class ConditionTestRequest(StrictRequest):
    """An expression and records to evaluate it on."""

    expression: str = Field(max_length=10_000)
    records: Records


class ConditionTestResponse(BaseModel):
    """Whether each record matches."""

    matches: list[bool]
    matched: int


def rule_dict(session: Session, row: dict[str, Any]) -> dict[str, Any]:
    """A rule as the API shows it (a :class:`RuleResponse`): the row with its steps and destinations."""
    rule_id = str(row["id"])
    steps = session.scalars(
        select(RuleTransformation.id)
        .where(RuleTransformation.rule_id == rule_id)
        .order_by(RuleTransformation.sequence_order, RuleTransformation.id)
    ).all()
    transformations = [crud.get(session, "rule_transformations", "transformation", str(s)) for s in steps]
    destinations = session.scalars(
        select(RuleDestination.destination_id)
        .where(RuleDestination.rule_id == rule_id)
        .order_by(RuleDestination.destination_id)
    ).all()
    try:
        condition = condition_expression(row.get("condition"))
    except ValueError:
        condition = None
    return {
        **row,
        "condition": condition,
        "transformations": transformations,
        "destination_ids": list(destinations),
    }


def _replace_children(
    session: Session,
    rule_id: str,
    transformations: list[TransformationRequest] | None,
    destination_ids: list[str] | None,
) -> None:
    if transformations is not None:
        stored = {
            str(t.id): crud.load_row(session, "rule_transformations", str(t.id))
            for t in session.scalars(select(RuleTransformation).where(RuleTransformation.rule_id == rule_id))
        }
        session.execute(delete(RuleTransformation).where(RuleTransformation.rule_id == rule_id))
        seen: set[str] = set()
        for index, step in enumerate(transformations):
            step_id = step.id or uuid.uuid4().hex
            if step_id in seen or crud.load_row(session, "rule_transformations", step_id) is not None:
                raise conflict(
                    f"transformation id {step_id!r} is already used", f"transformations[{index}].id"
                )
            seen.add(step_id)
            row = {
                "id": step_id,
                "rule_id": rule_id,
                "transformation_type": step.transformation_type,
                "config": step.config,
                "sequence_order": index if step.sequence_order is None else step.sequence_order,
            }
            try:
                checked = crud.check_row(session, "rule_transformations", row, stored.get(step_id))
            except MuxlyHTTPError as exc:
                raise _in_step(exc, index) from None
            crud.insert_row(session, "rule_transformations", checked)
    if destination_ids is not None:
        session.execute(delete(RuleDestination).where(RuleDestination.rule_id == rule_id))
        for index, destination_id in enumerate(dict.fromkeys(destination_ids)):
            if crud.load_row(session, "destinations", destination_id) is None:
                raise invalid(
                    f"destination_ids[{index}]", f"the id of a destination (got {destination_id!r})"
                )
            session.add(RuleDestination(rule_id=rule_id, destination_id=destination_id))
    session.flush()


def _in_step(exc: MuxlyHTTPError, index: int) -> MuxlyHTTPError:
    """``exc`` with its field placed under ``transformations[index]`` (the step of the request it is about)."""
    field = exc.details.get("field")
    if exc.status_code != 422 or not isinstance(field, str):
        return exc
    return invalid(
        f"transformations[{index}].{field}", str(exc.details.get("reason")), exc.details.get("errors", ())
    )


@router.get("", response_model=Page[RuleResponse], summary="List rules")
def list_rules(
    session: DbSession,
    _: Annotated[Principal, require("rules", "read")],
    limit: Limit = 100,
    offset: Offset = 0,
    sort: Annotated[Literal["id", "name", "priority", "created_at", "updated_at"], Query()] = "priority",
    order: Order = "asc",
    enabled: bool | None = None,
) -> dict[str, Any]:
    rows, total = crud.list_rows(
        session, TABLE, filters={"enabled": enabled}, sort=sort, order=order, limit=limit, offset=offset
    )
    return {"items": [rule_dict(session, r) for r in rows], "total": total, "limit": limit, "offset": offset}


@router.post("", response_model=RuleResponse, status_code=201, summary="Create a rule")
def create_rule(
    body: RuleCreateRequest, session: DbSession, _: Annotated[Principal, require("rules", "create")]
) -> dict[str, Any]:
    row = crud.create(session, TABLE, KIND, body.model_dump(exclude={"transformations", "destination_ids"}))
    _replace_children(session, str(row["id"]), body.transformations, body.destination_ids)
    return rule_dict(session, row)


@router.get("/{rule_id}", response_model=RuleResponse, summary="Get a rule")
def get_rule(
    rule_id: str, session: DbSession, _: Annotated[Principal, require("rules", "read")]
) -> dict[str, Any]:
    return rule_dict(session, crud.get(session, TABLE, KIND, rule_id))


@router.patch("/{rule_id}", response_model=RuleResponse, summary="Change a rule")
def update_rule(
    rule_id: str,
    body: RuleUpdateRequest,
    session: DbSession,
    _: Annotated[Principal, require("rules", "update")],
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True, exclude={"transformations", "destination_ids"})
    row = crud.update(session, TABLE, KIND, rule_id, changes)
    _replace_children(session, rule_id, body.transformations, body.destination_ids)
    return rule_dict(session, row)


@router.delete("/{rule_id}", status_code=204, summary="Delete a rule (with its steps and links)")
def delete_rule(
    rule_id: str, session: DbSession, _: Annotated[Principal, require("rules", "delete")]
) -> Response:
    session.execute(delete(RuleTransformation).where(RuleTransformation.rule_id == rule_id))
    session.execute(delete(RuleDestination).where(RuleDestination.rule_id == rule_id))
    crud.remove(session, TABLE, KIND, rule_id)
    return Response(status_code=204)


@router.post("/test-condition", response_model=ConditionTestResponse, summary="Test a condition on records")
def evaluate_condition(
    body: ConditionTestRequest, _: Annotated[Principal, require("rules", "read")]
) -> ConditionTestResponse:
    """Evaluate ``expression`` on each record (``422`` with the position when it is malformed)."""
    from muxly_provider.exceptions import MuxlyConditionError
    from muxly_provider.routing import compile_condition

    try:
        condition = compile_condition(body.expression)
    except MuxlyConditionError as exc:
        raise invalid("expression", f"a valid condition: {exc.message} at position {exc.position}") from None
    matches = [bool(condition(record)) for record in body.records]
    return ConditionTestResponse(matches=matches, matched=sum(matches))


@router.post("/{rule_id}/test", response_model=RuleTestResponse, summary="Run a stored rule on records")
def run_rule_test(
    rule_id: str, body: RuleTestRequest, session: DbSession, _: Annotated[Principal, require("rules", "read")]
) -> RuleTestResponse:
    """Route the records through the rule alone: its condition, its steps, its destinations."""
    from muxly_provider.exceptions import MuxlyError
    from muxly_provider.routing import Router, RouteSpec, RuleSpec, TransformationSpec

    rule = rule_dict(session, crud.get(session, TABLE, KIND, rule_id))
    steps = tuple(
        TransformationSpec(
            id=t["id"],
            transformation_type=t["transformation_type"],
            config=t["config"],
            sequence_order=t["sequence_order"],
        )
        for t in rule["transformations"]
    )
    spec = RuleSpec(
        id=rule_id,
        name=str(rule["name"]),
        condition=rule["condition"],
        destination_ids=tuple(rule["destination_ids"]) or ("(rule output)",),
        transformations=steps,
        priority=int(rule["priority"]),
    )
    try:
        routing = Router([RouteSpec(id="(test)", name="test", rules=(spec,))])
        outputs = routing.route_batch(body.records)
        for destination, records in routing.finish().items():
            outputs.setdefault(destination, []).extend(records)
    except MuxlyError as exc:
        raise invalid(_stored_field(exc, steps), _reason(exc)) from None
    return RuleTestResponse(outputs=outputs, stats=routing.stats.as_dict())


def _stored_field(exc: Exception, steps: tuple[Any, ...]) -> str:
    """The field of the stored rule an error of :func:`run_rule_test` is about."""
    from muxly_provider.exceptions import MuxlyConditionError, MuxlyConfigError

    if isinstance(exc, MuxlyConditionError):
        return "condition"
    if isinstance(exc, MuxlyConfigError):
        if exc.table == "rule_transformations":
            index = next((i for i, step in enumerate(steps) if step.id == exc.row_id), None)
            if index is not None:
                return f"transformations[{index}].{exc.field}"
        return exc.field
    return "rule"


def _reason(exc: Exception) -> str:
    from muxly_provider.exceptions import MuxlyConditionError, MuxlyConfigError

    if isinstance(exc, MuxlyConditionError):
        return f"a valid condition: {exc.message} at position {exc.position}"
    if isinstance(exc, MuxlyConfigError):
        return exc.expected
    return str(exc)
