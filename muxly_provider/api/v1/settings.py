"""``/settings``: global key/value settings."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Response
from pydantic import Field

from muxly_provider.api.v1 import crud
from muxly_provider.api.v1.common import Limit, Offset, Order, Page, StrictRequest, Timestamps
from muxly_provider.auth.dependencies import DbSession, require
from muxly_provider.auth.permissions import Principal

TABLE = "settings"
KIND = "setting"

router = APIRouter(prefix="/settings", tags=["settings"])

Key = Annotated[str, Path(min_length=1, max_length=200)]


class SettingRequest(StrictRequest):
    """The value of a setting."""

    value: str = Field(max_length=100_000)


class SettingResponse(Timestamps):
    """A setting."""

    key: str
    value: str


@router.get("", response_model=Page[SettingResponse], summary="List settings")
def list_settings(
    session: DbSession,
    _: Annotated[Principal, require("settings", "read")],
    limit: Limit = 100,
    offset: Offset = 0,
    sort: Annotated[Literal["key", "created_at", "updated_at"], Query()] = "key",
    order: Order = "asc",
) -> dict[str, Any]:
    rows, total = crud.list_rows(
        session, TABLE, filters={}, sort=sort, order=order, limit=limit, offset=offset
    )
    return {"items": rows, "total": total, "limit": limit, "offset": offset}


@router.get("/{key}", response_model=SettingResponse, summary="Get a setting")
def get_setting(
    key: Key, session: DbSession, _: Annotated[Principal, require("settings", "read")]
) -> dict[str, Any]:
    return crud.get(session, TABLE, KIND, key)


@router.put("/{key}", response_model=SettingResponse, summary="Create or replace a setting")
def put_setting(
    key: Key, body: SettingRequest, session: DbSession, _: Annotated[Principal, require("settings", "update")]
) -> dict[str, Any]:
    row = {"key": key, "value": body.value}
    stored = crud.load_row(session, TABLE, key)
    row = crud.check_row(session, TABLE, row, stored)
    if stored is None:
        crud.insert_row(session, TABLE, row)
    else:
        crud.update_row(session, TABLE, row)
    session.flush()
    return crud.get(session, TABLE, KIND, key)


@router.delete("/{key}", status_code=204, summary="Delete a setting")
def delete_setting(
    key: Key, session: DbSession, _: Annotated[Principal, require("settings", "delete")]
) -> Response:
    crud.remove(session, TABLE, KIND, key)
    return Response(status_code=204)
