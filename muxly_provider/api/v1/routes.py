"""``/routes``: a connector's records through rules (``rules`` lists the rule ids in order) to destinations."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from muxly_provider.api.v1 import crud
from muxly_provider.api.v1.common import Id, Limit, Offset, Order, Page, StrictRequest, Timestamps, invalid
from muxly_provider.auth.dependencies import DbSession, require
from muxly_provider.auth.permissions import Principal
from muxly_provider.db.models import RouteRule

TABLE = "routes"
KIND = "route"

router = APIRouter(prefix="/routes", tags=["routes"])


class RouteRuleRequest(StrictRequest):
    """A rule of a route; ``sequence_order`` defaults to the position in the list."""

    rule_id: str = Field(min_length=1, max_length=200)
    sequence_order: int | None = Field(default=None, ge=-1_000_000, le=1_000_000)


class RouteRuleResponse(BaseModel):
    """A rule of a route."""

    rule_id: str
    sequence_order: int


class RouteCreateRequest(StrictRequest):
    """A new route."""

    id: Id | None = None
    name: str = Field(min_length=1, max_length=500)
    connector_id: str = Field(min_length=1, max_length=200)
    enabled: bool = True
    error_handling: dict[str, Any] = Field(default_factory=lambda: {"mode": "continue"})
    rules: list[RouteRuleRequest] = Field(default_factory=list, max_length=500)


class RouteUpdateRequest(StrictRequest):
    """Changes to a route; ``rules`` replaces the stored list when given."""

    name: str | None = Field(default=None, min_length=1, max_length=500)
    connector_id: str | None = Field(default=None, min_length=1, max_length=200)
    enabled: bool | None = None
    error_handling: dict[str, Any] | None = None
    rules: list[RouteRuleRequest] | None = Field(default=None, max_length=500)


class RouteResponse(Timestamps):
    """A route with its rules."""

    id: str
    name: str
    connector_id: str
    enabled: bool
    error_handling: dict[str, Any]
    rules: list[RouteRuleResponse]


def route_dict(session: Session, row: dict[str, Any]) -> dict[str, Any]:
    """A route as the API shows it (a :class:`RouteResponse`): the row with its rules in order."""
    links = session.execute(
        select(RouteRule.rule_id, RouteRule.sequence_order)
        .where(RouteRule.route_id == row["id"])
        .order_by(RouteRule.sequence_order, RouteRule.rule_id)
    ).all()
    return {**row, "rules": [{"rule_id": r, "sequence_order": s} for r, s in links]}


def _replace_rules(session: Session, route_id: str, rules: list[RouteRuleRequest] | None) -> None:
    if rules is None:
        return
    session.execute(delete(RouteRule).where(RouteRule.route_id == route_id))
    seen: set[str] = set()
    for index, link in enumerate(rules):
        if link.rule_id in seen:
            raise invalid(f"rules[{index}].rule_id", f"each rule once (got {link.rule_id!r} twice)")
        seen.add(link.rule_id)
        if crud.load_row(session, "routing_rules", link.rule_id) is None:
            raise invalid(f"rules[{index}].rule_id", f"the id of a rule (got {link.rule_id!r})")
        order = index if link.sequence_order is None else link.sequence_order
        session.add(RouteRule(route_id=route_id, rule_id=link.rule_id, sequence_order=order))
    session.flush()


@router.get("", response_model=Page[RouteResponse], summary="List routes")
def list_routes(
    session: DbSession,
    _: Annotated[Principal, require("routes", "read")],
    limit: Limit = 100,
    offset: Offset = 0,
    sort: Annotated[Literal["id", "name", "connector_id", "created_at", "updated_at"], Query()] = "id",
    order: Order = "asc",
    connector_id: Annotated[str | None, Query(max_length=200)] = None,
    enabled: bool | None = None,
) -> dict[str, Any]:
    rows, total = crud.list_rows(
        session,
        TABLE,
        filters={"connector_id": connector_id, "enabled": enabled},
        sort=sort,
        order=order,
        limit=limit,
        offset=offset,
    )
    return {
        "items": [route_dict(session, r) for r in rows],
        "total": total,
        "limit": limit,
        "offset": offset,
    }


@router.post("", response_model=RouteResponse, status_code=201, summary="Create a route")
def create_route(
    body: RouteCreateRequest, session: DbSession, _: Annotated[Principal, require("routes", "create")]
) -> dict[str, Any]:
    row = crud.create(session, TABLE, KIND, body.model_dump(exclude={"rules"}))
    _replace_rules(session, str(row["id"]), body.rules)
    return route_dict(session, row)


@router.get("/{route_id}", response_model=RouteResponse, summary="Get a route")
def get_route(
    route_id: str, session: DbSession, _: Annotated[Principal, require("routes", "read")]
) -> dict[str, Any]:
    return route_dict(session, crud.get(session, TABLE, KIND, route_id))


@router.patch("/{route_id}", response_model=RouteResponse, summary="Change a route")
def update_route(
    route_id: str,
    body: RouteUpdateRequest,
    session: DbSession,
    _: Annotated[Principal, require("routes", "update")],
) -> dict[str, Any]:
    row = crud.update(session, TABLE, KIND, route_id, body.model_dump(exclude_unset=True, exclude={"rules"}))
    _replace_rules(session, route_id, body.rules)
    return route_dict(session, row)


@router.delete("/{route_id}", status_code=204, summary="Delete a route")
def delete_route(
    route_id: str, session: DbSession, _: Annotated[Principal, require("routes", "delete")]
) -> Response:
    session.execute(delete(RouteRule).where(RouteRule.route_id == route_id))
    crud.remove(session, TABLE, KIND, route_id)
    return Response(status_code=204)
