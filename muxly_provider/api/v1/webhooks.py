"""``/webhooks``: webhook triggers (``secret_key`` is write-only; the URL is ``/muxly/webhooks/<path>``).

A trigger names a job to run (``job_id``), an asset to create events of (``asset_uri``), both, or neither (a
sensor-only endpoint: deliveries are only kept for sensors and event triggers).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Response
from pydantic import Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from muxly_provider.api.v1 import crud
from muxly_provider.api.v1.common import Id, Limit, Offset, Order, Page, StrictRequest, Timestamps, conflict
from muxly_provider.api.webhook_assets import check_row_asset
from muxly_provider.auth.dependencies import DbSession, require
from muxly_provider.auth.permissions import Principal
from muxly_provider.db.models import WebhookTrigger

TABLE = "webhook_triggers"
KIND = "webhook trigger"

router = APIRouter(prefix="/webhooks", tags=["webhook triggers"])


_JOB_ID = "The job a delivery starts; null: none (sensor-only or asset-only endpoint)"
_ASSET_URI = "The asset a delivery creates an event of (e.g. 's3://bucket/orders'); null: none"


class WebhookTriggerCreateRequest(StrictRequest):
    """A new webhook trigger; with ``secret_key`` deliveries must be signed (HMAC-SHA256)."""

    id: Id | None = None
    job_id: str | None = Field(default=None, min_length=1, max_length=200, description=_JOB_ID)
    endpoint_path: str = Field(min_length=1, max_length=200, description="e.g. 'orders/created'")
    secret_key: str | None = Field(default=None, max_length=1000)
    enabled: bool = True
    asset_uri: str | None = Field(default=None, min_length=1, max_length=1500, description=_ASSET_URI)


class WebhookTriggerUpdateRequest(StrictRequest):
    """Changes to a webhook trigger; ``"***"`` keeps the stored secret, ``null`` removes it."""

    job_id: str | None = Field(default=None, min_length=1, max_length=200, description=_JOB_ID)
    endpoint_path: str | None = Field(default=None, min_length=1, max_length=200)
    secret_key: str | None = Field(default=None, max_length=1000)
    enabled: bool | None = None
    asset_uri: str | None = Field(default=None, min_length=1, max_length=1500, description=_ASSET_URI)


class WebhookTriggerResponse(Timestamps):
    """A webhook trigger as the API shows it (``secret_key`` as ``"***"`` when set)."""

    id: str
    job_id: str | None
    endpoint_path: str
    secret_key: str | None
    enabled: bool
    asset_uri: str | None = None
    url_path: str = Field(description="The path to POST deliveries to")


def _shown(row: dict[str, Any]) -> dict[str, Any]:
    return {**row, "url_path": f"/muxly/webhooks/{row['endpoint_path']}"}


def _check_path_free(session: Session, endpoint_path: str | None, trigger_id: str | None) -> None:
    if endpoint_path is None:
        return
    owner = session.scalars(
        select(WebhookTrigger.id).where(WebhookTrigger.endpoint_path == endpoint_path)
    ).first()
    if owner is not None and owner != trigger_id:
        raise conflict(
            f"endpoint_path {endpoint_path!r} is used by webhook trigger {owner!r}", "endpoint_path"
        )


@router.get("", response_model=Page[WebhookTriggerResponse], summary="List webhook triggers")
def list_webhook_triggers(
    session: DbSession,
    _: Annotated[Principal, require("webhooks", "read")],
    limit: Limit = 100,
    offset: Offset = 0,
    sort: Annotated[Literal["id", "job_id", "endpoint_path", "created_at", "updated_at"], Query()] = "id",
    order: Order = "asc",
    job_id: Annotated[str | None, Query(max_length=200)] = None,
    enabled: bool | None = None,
) -> dict[str, Any]:
    rows, total = crud.list_rows(
        session,
        TABLE,
        filters={"job_id": job_id, "enabled": enabled},
        sort=sort,
        order=order,
        limit=limit,
        offset=offset,
    )
    items = [_shown(crud.public(TABLE, r)) for r in rows]
    return {"items": items, "total": total, "limit": limit, "offset": offset}


@router.post("", response_model=WebhookTriggerResponse, status_code=201, summary="Create a webhook trigger")
def create_webhook_trigger(
    body: WebhookTriggerCreateRequest,
    session: DbSession,
    _: Annotated[Principal, require("webhooks", "create")],
) -> dict[str, Any]:
    _check_path_free(session, body.endpoint_path, None)
    check_row_asset(body.asset_uri)
    return _shown(crud.create(session, TABLE, KIND, body.model_dump()))


@router.get("/{trigger_id}", response_model=WebhookTriggerResponse, summary="Get a webhook trigger")
def get_webhook_trigger(
    trigger_id: str, session: DbSession, _: Annotated[Principal, require("webhooks", "read")]
) -> dict[str, Any]:
    return _shown(crud.get(session, TABLE, KIND, trigger_id))


@router.patch("/{trigger_id}", response_model=WebhookTriggerResponse, summary="Change a webhook trigger")
def update_webhook_trigger(
    trigger_id: str,
    body: WebhookTriggerUpdateRequest,
    session: DbSession,
    _: Annotated[Principal, require("webhooks", "update")],
) -> dict[str, Any]:
    changes = body.model_dump(exclude_unset=True)
    _check_path_free(session, changes.get("endpoint_path"), trigger_id)
    check_row_asset(changes.get("asset_uri"))
    return _shown(crud.update(session, TABLE, KIND, trigger_id, changes))


@router.delete("/{trigger_id}", status_code=204, summary="Delete a webhook trigger")
def delete_webhook_trigger(
    trigger_id: str, session: DbSession, _: Annotated[Principal, require("webhooks", "delete")]
) -> Response:
    crud.remove(session, TABLE, KIND, trigger_id)
    return Response(status_code=204)
