"""``/destinations``: where records go (passwords, tokens and webhook URLs in ``config`` are write-only)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import Field

from muxly_provider.api.v1 import crud
from muxly_provider.api.v1.common import Id, Limit, Offset, Order, Page, StrictRequest, Timestamps
from muxly_provider.auth.dependencies import DbSession, require
from muxly_provider.auth.permissions import Principal

TABLE = "destinations"
KIND = "destination"

router = APIRouter(prefix="/destinations", tags=["destinations"])


class DestinationCreateRequest(StrictRequest):
    """A new destination; secrets in ``config`` are stored encrypted and shown as ``"***"``."""

    id: Id | None = None
    name: str = Field(min_length=1, max_length=500)
    destination_type: str = Field(description="file, database, webhook, email, slack, s3 or prometheus")
    config: dict[str, Any] = Field(default_factory=dict)
    enabled: bool = True


class DestinationUpdateRequest(StrictRequest):
    """Changes to a destination; ``"***"`` keeps a stored secret."""

    name: str | None = Field(default=None, min_length=1, max_length=500)
    destination_type: str | None = None
    config: dict[str, Any] | None = None
    enabled: bool | None = None


class DestinationResponse(Timestamps):
    """A destination as the API shows it (secrets as ``"***"``)."""

    id: str
    name: str
    destination_type: str
    config: dict[str, Any]
    enabled: bool


@router.get("", response_model=Page[DestinationResponse], summary="List destinations")
def list_destinations(
    session: DbSession,
    _: Annotated[Principal, require("destinations", "read")],
    limit: Limit = 100,
    offset: Offset = 0,
    sort: Annotated[Literal["id", "name", "destination_type", "created_at", "updated_at"], Query()] = "id",
    order: Order = "asc",
    destination_type: Annotated[str | None, Query(max_length=200)] = None,
    enabled: bool | None = None,
) -> dict[str, Any]:
    rows, total = crud.list_rows(
        session,
        TABLE,
        filters={"destination_type": destination_type, "enabled": enabled},
        sort=sort,
        order=order,
        limit=limit,
        offset=offset,
    )
    return {"items": [crud.public(TABLE, r) for r in rows], "total": total, "limit": limit, "offset": offset}


@router.post("", response_model=DestinationResponse, status_code=201, summary="Create a destination")
def create_destination(
    body: DestinationCreateRequest,
    session: DbSession,
    principal: Annotated[Principal, require("destinations", "create")],
) -> dict[str, Any]:
    return crud.create(session, TABLE, KIND, body.model_dump(), principal)


@router.get("/{destination_id}", response_model=DestinationResponse, summary="Get a destination")
def get_destination(
    destination_id: str, session: DbSession, _: Annotated[Principal, require("destinations", "read")]
) -> dict[str, Any]:
    return crud.get(session, TABLE, KIND, destination_id)


@router.patch("/{destination_id}", response_model=DestinationResponse, summary="Change a destination")
def update_destination(
    destination_id: str,
    body: DestinationUpdateRequest,
    session: DbSession,
    principal: Annotated[Principal, require("destinations", "update")],
) -> dict[str, Any]:
    return crud.update(session, TABLE, KIND, destination_id, body.model_dump(exclude_unset=True), principal)


@router.delete("/{destination_id}", status_code=204, summary="Delete a destination")
def delete_destination(
    destination_id: str, session: DbSession, _: Annotated[Principal, require("destinations", "delete")]
) -> Response:
    crud.remove(session, TABLE, KIND, destination_id)
    return Response(status_code=204)
