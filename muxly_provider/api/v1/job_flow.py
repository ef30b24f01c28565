"""``GET /jobs/{id}/flow``: what a job's run goes through, connector -> routes -> rules -> destinations.

The routes are the ones a run of the job reads (:func:`muxly_provider.runtime.loading.load_job_runtime`):
a ``pipeline`` job's ``action_params.route_id``, no route for ``export`` (its ``action_params.destination_ids``
are listed as ``export_destinations``), and otherwise the routes of the job's connector. Disabled routes, rules
and destinations are listed with ``enabled: false`` (a run skips them) so that the page can show them greyed.
Every row is shown as its own ``GET`` shows it: secrets as ``"***"``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from muxly_provider.api.v1 import crud
from muxly_provider.api.v1.connectors import ConnectorResponse
from muxly_provider.api.v1.destinations import DestinationResponse
from muxly_provider.api.v1.jobs import JobResponse
from muxly_provider.api.v1.routes import RouteResponse, route_dict
from muxly_provider.api.v1.rules import RuleResponse, rule_dict
from muxly_provider.auth.dependencies import DbSession, require
from muxly_provider.auth.permissions import Principal
from muxly_provider.db.models import Route

router = APIRouter(prefix="/jobs", tags=["jobs"])


class FlowRuleResponse(BaseModel):
    """A rule of a route, with its transformations, and the destinations it sends to."""

    rule: RuleResponse
    destinations: list[DestinationResponse]


class FlowRouteResponse(BaseModel):
    """A route the job's records go through, its rules in order."""

    route: RouteResponse
    rules: list[FlowRuleResponse]


class JobFlowResponse(BaseModel):
    """A job and everything its runs go through (secrets as ``"***"``)."""

    job: JobResponse
    connector: ConnectorResponse
    routes: list[FlowRouteResponse]
    export_destinations: list[DestinationResponse] = Field(
        description="An export job's destinations (its records skip routing)"
    )


def _destination(session: Session, destination_id: str) -> dict[str, Any] | None:
    row = crud.load_row(session, "destinations", destination_id)
    return None if row is None else crud.public("destinations", row)


def _route_ids(session: Session, job: dict[str, Any]) -> list[str]:
    params: dict[str, Any] = job["action_params"] if isinstance(job.get("action_params"), dict) else {}
    action = job.get("action_type")
    if action == "export":
        return []
    if action == "pipeline":
        route_id = params.get("route_id")
        return [str(route_id)] if route_id else []
    ids = session.scalars(
        select(Route.id).where(Route.connector_id == job["connector_id"]).order_by(Route.id)
    ).all()
    return [str(i) for i in ids]


def _flow_route(session: Session, route_id: str) -> dict[str, Any] | None:
    stored = crud.load_row(session, "routes", route_id)
    if stored is None:
        return None
    route = route_dict(session, crud.public("routes", stored))
    rules = []
    for link in route["rules"]:
        rule_row = crud.load_row(session, "routing_rules", str(link["rule_id"]))
        if rule_row is None:
            continue
        rule = rule_dict(session, crud.public("routing_rules", rule_row))
        destinations = [
            d for i in rule["destination_ids"] if (d := _destination(session, str(i))) is not None
        ]
        rules.append({"rule": rule, "destinations": destinations})
    return {"route": route, "rules": rules}


@router.get(
    "/{job_id}/flow",
    response_model=JobFlowResponse,
    summary="A job's connector, routes, rules and destinations",
    dependencies=[
        require(resource, "read") for resource in ("connectors", "routes", "rules", "destinations")
    ],
)
def get_job_flow(
    job_id: str,
    session: DbSession,
    _: Annotated[Principal, require("jobs", "read")],
) -> dict[str, Any]:
    """The job, its connector and the routes its runs read, each rule with its steps and destinations."""
    from muxly_provider.api.v1.jobs import KIND, TABLE, job_dict

    job = job_dict(crud.get(session, TABLE, KIND, job_id))
    connector = crud.get(session, "connectors", "connector", str(job["connector_id"]))
    routes = [r for i in _route_ids(session, job) if (r := _flow_route(session, i)) is not None]
    params: dict[str, Any] = job["action_params"] if isinstance(job.get("action_params"), dict) else {}
    export = []
    if job.get("action_type") == "export":
        ids = params.get("destination_ids") or []
        export = [d for i in ids if (d := _destination(session, str(i))) is not None]
    return {"job": job, "connector": connector, "routes": routes, "export_destinations": export}
