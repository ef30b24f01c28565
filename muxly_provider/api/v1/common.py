"""What every ``/api/v1`` router shares: list pages, sorting, and the error answers of config writes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from fastapi import Query
from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from muxly_provider.api.errors import MuxlyHTTPError
from muxly_provider.exceptions import MuxlyConfigError

T = TypeVar("T")

Limit = Annotated[int, Query(ge=1, le=1000, description="The largest number of items to return")]
Offset = Annotated[int, Query(ge=0, le=10_000_000, description="How many items to skip")]
Order = Annotated[Literal["asc", "desc"], Query(description="Sort direction")]

Id = Annotated[str, Field(min_length=1, max_length=200, pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:@-]*$")]
"""A row id given by the client (letters, digits and ``_ . : @ -``); omitted, the server generates one."""


def _as_utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


UtcDatetime = Annotated[datetime, AfterValidator(_as_utc)]
"""A timestamp: Muxly stores naive UTC; answers carry the offset (RFC 3339)."""


class StrictRequest(BaseModel):
    """Base of request bodies: unknown fields are an error (a typo never passes silently)."""

    model_config = ConfigDict(extra="forbid")


class Page(BaseModel, Generic[T]):
    """One page of a list."""

    items: list[T]
    total: int = Field(description="How many items match the filters")
    limit: int
    offset: int


class Timestamps(BaseModel):
    """When a row was created and last changed (UTC)."""

    created_at: UtcDatetime | None = None
    updated_at: UtcDatetime | None = None


class MessageResponse(BaseModel):
    """A short answer."""

    message: str


def not_found(kind: str, key: str) -> MuxlyHTTPError:
    """A ``404`` for the ``kind`` row ``key``."""
    return MuxlyHTTPError(404, "not_found", f"{kind} {key!r} does not exist", {"id": key})


def conflict(message: str, field: str | None = None) -> MuxlyHTTPError:
    """A ``409``."""
    return MuxlyHTTPError(409, "conflict", message, {"field": field} if field else {})


def invalid(field: str, reason: str, errors: Sequence[dict[str, Any]] = ()) -> MuxlyHTTPError:
    """A ``422`` naming the invalid ``field``."""
    details: dict[str, Any] = {"field": field, "reason": reason}
    if errors:
        details["errors"] = list(errors)
    return MuxlyHTTPError(422, "validation_error", f"field {field!r}: expected {reason}", details)


def config_errors_answer(errors: Sequence[MuxlyConfigError]) -> MuxlyHTTPError:
    """A ``422`` listing configuration errors (the first one names the field)."""
    first = errors[0]
    return invalid(first.field, first.expected, [e.as_dict() for e in errors])


class ErrorBody(BaseModel):
    """What went wrong."""

    code: str
    message: str
    details: dict[str, Any]


class ErrorResponse(BaseModel):
    """Every error answer of Muxly's API."""

    error: ErrorBody


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "Bad request"},
    401: {"model": ErrorResponse, "description": "Missing, invalid, expired or logged-out credentials"},
    403: {"model": ErrorResponse, "description": "The caller lacks the permission of this route"},
    404: {"model": ErrorResponse, "description": "No such row"},
    409: {"model": ErrorResponse, "description": "Conflict with a stored row (or a DAG that cannot run)"},
    422: {"model": ErrorResponse, "description": "Invalid input; details name the field"},
    429: {"model": ErrorResponse, "description": "Too many failed logins"},
}
"""The error answers every ``/api/v1`` route may give, documented in the OpenAPI schema."""
