"""``/destinations``: where records go (passwords, tokens and webhook URLs in ``config`` are write-only)."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import BaseModel, Field

from muxly_provider.api.v1 import crud
from muxly_provider.api.v1.common import Id, Limit, Offset, Order, Page, StrictRequest, Timestamps, not_found
from muxly_provider.auth.dependencies import DbSession, require
from muxly_provider.auth.permissions import Principal

log = logging.getLogger(__name__)

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


class DestinationTestResponse(BaseModel):
    """The outcome of a destination test (nothing is delivered)."""

    ok: bool
    message: str


@router.post("/{destination_id}/test", response_model=DestinationTestResponse, summary="Test a destination")
def run_destination_test(
    destination_id: str, session: DbSession, _: Annotated[Principal, require("destinations", "execute")]
) -> DestinationTestResponse:
    """Reach the destination with its stored configuration without writing a record (see ``docs/api.md``).

    The stored row is checked first as a write would check it (validation, ``files_root``, never Muxly's or
    Airflow's database); the probe then runs at most ``TEST_SECONDS``.
    """
    from muxly_provider.api.errors import MuxlyHTTPError
    from muxly_provider.api.v1.bounded import Overtime, call_within
    from muxly_provider.api.v1.destination_checks import (
        TEST_SECONDS,
        ProbeFailed,
        describe,
        destination_context,
        probe_destination,
    )
    from muxly_provider.connectors.check import safe_test_message
    from muxly_provider.exceptions import MuxlyError

    stored = crud.load_row(session, TABLE, destination_id)
    if stored is None:
        raise not_found(KIND, destination_id)
    try:
        crud.check_row(session, TABLE, stored, stored)
        context = destination_context(stored)
    except MuxlyHTTPError as exc:  # the stored row no longer passes validation or confinement
        return DestinationTestResponse(ok=False, message=f"destination {destination_id!r}: {exc.message}")
    session.commit()  # nothing to keep: do not hold a transaction while a remote system answers
    try:
        message = call_within(TEST_SECONDS, lambda: probe_destination(context))
    except Overtime:
        return DestinationTestResponse(ok=False, message=describe(context, "timed out"))
    except ProbeFailed as exc:
        return DestinationTestResponse(ok=False, message=describe(context, str(exc)))
    except MuxlyError as exc:  # the runtime class refused the config: its message names no secret
        return DestinationTestResponse(ok=False, message=safe_test_message(str(exc)))
    except Exception as exc:  # a library's message may quote a URL with credentials: give the type only
        log.info("Muxly API: destination %s test failed with %s", destination_id, type(exc).__name__)
        return DestinationTestResponse(ok=False, message=describe(context, type(exc).__name__))
    return DestinationTestResponse(ok=True, message=describe(context, message))
