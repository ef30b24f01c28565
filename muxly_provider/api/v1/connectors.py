"""``/connectors``: where data comes from; ``POST /connectors/{id}/test`` checks reachability and credentials."""

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

TABLE = "connectors"
KIND = "connector"

router = APIRouter(prefix="/connectors", tags=["connectors"])


class ConnectorCreateRequest(StrictRequest):
    """A new connector; secrets in ``auth_settings.params`` are stored encrypted and shown as ``"***"``."""

    id: Id | None = None
    name: str = Field(min_length=1, max_length=500)
    connector_type: str = Field(
        description="api, database, file, bigquery, ga4, hubspot, webhook or plugin:<name>"
    )
    enabled: bool = True
    auth_settings: dict[str, Any] = Field(default_factory=lambda: {"auth_type": "none"})
    connection_settings: dict[str, Any] = Field(default_factory=dict)


class ConnectorUpdateRequest(StrictRequest):
    """Changes to a connector; ``"***"`` keeps a stored secret."""

    name: str | None = Field(default=None, min_length=1, max_length=500)
    connector_type: str | None = None
    enabled: bool | None = None
    auth_settings: dict[str, Any] | None = None
    connection_settings: dict[str, Any] | None = None


class ConnectorResponse(Timestamps):
    """A connector as the API shows it (secrets as ``"***"``)."""

    id: str
    name: str
    connector_type: str
    enabled: bool
    auth_settings: dict[str, Any]
    connection_settings: dict[str, Any]


class ConnectorTestResponse(BaseModel):
    """The outcome of a connector test."""

    ok: bool
    message: str


@router.get("", response_model=Page[ConnectorResponse], summary="List connectors")
def list_connectors(
    session: DbSession,
    _: Annotated[Principal, require("connectors", "read")],
    limit: Limit = 100,
    offset: Offset = 0,
    sort: Annotated[Literal["id", "name", "connector_type", "created_at", "updated_at"], Query()] = "id",
    order: Order = "asc",
    connector_type: Annotated[str | None, Query(max_length=200)] = None,
    enabled: bool | None = None,
) -> dict[str, Any]:
    rows, total = crud.list_rows(
        session,
        TABLE,
        filters={"connector_type": connector_type, "enabled": enabled},
        sort=sort,
        order=order,
        limit=limit,
        offset=offset,
    )
    return {"items": [crud.public(TABLE, r) for r in rows], "total": total, "limit": limit, "offset": offset}


@router.post("", response_model=ConnectorResponse, status_code=201, summary="Create a connector")
def create_connector(
    body: ConnectorCreateRequest,
    session: DbSession,
    principal: Annotated[Principal, require("connectors", "create")],
) -> dict[str, Any]:
    return crud.create(session, TABLE, KIND, body.model_dump(), principal)


@router.get("/{connector_id}", response_model=ConnectorResponse, summary="Get a connector")
def get_connector(
    connector_id: str, session: DbSession, _: Annotated[Principal, require("connectors", "read")]
) -> dict[str, Any]:
    return crud.get(session, TABLE, KIND, connector_id)


@router.patch("/{connector_id}", response_model=ConnectorResponse, summary="Change a connector")
def update_connector(
    connector_id: str,
    body: ConnectorUpdateRequest,
    session: DbSession,
    principal: Annotated[Principal, require("connectors", "update")],
) -> dict[str, Any]:
    return crud.update(session, TABLE, KIND, connector_id, body.model_dump(exclude_unset=True), principal)


@router.delete(
    "/{connector_id}", status_code=204, summary="Delete a connector (its routes and jobs go with it)"
)
def delete_connector(
    connector_id: str, session: DbSession, _: Annotated[Principal, require("connectors", "delete")]
) -> Response:
    crud.remove(session, TABLE, KIND, connector_id)
    return Response(status_code=204)


@router.post("/{connector_id}/test", response_model=ConnectorTestResponse, summary="Test a connector")
def run_connector_test(
    connector_id: str, session: DbSession, _: Annotated[Principal, require("connectors", "execute")]
) -> ConnectorTestResponse:
    """Check the connector's reachability and credentials with its stored configuration."""
    from muxly_provider.api.errors import MuxlyHTTPError
    from muxly_provider.connectors.base import ConnectorContext
    from muxly_provider.connectors.check import safe_test_message
    from muxly_provider.connectors.registry import get_connector_class
    from muxly_provider.crypto import decrypt_row_secrets
    from muxly_provider.exceptions import MuxlyError

    stored = crud.load_row(session, TABLE, connector_id)
    if stored is None:
        raise not_found(KIND, connector_id)
    try:
        crud.check_row(session, TABLE, stored, stored)
        row = decrypt_row_secrets(TABLE, stored)
        context = ConnectorContext(
            id=str(row["id"]),
            name=str(row["name"]),
            connector_type=str(row["connector_type"]),
            auth=row.get("auth_settings") or {},
            settings=row.get("connection_settings") or {},
        )
        message = get_connector_class(context.connector_type)(context).test_connection()
    except MuxlyError as exc:  # Muxly's messages name the connector and never hold a secret
        return ConnectorTestResponse(ok=False, message=safe_test_message(str(exc)))
    except MuxlyHTTPError as exc:  # the stored row no longer passes validation or confinement
        return ConnectorTestResponse(ok=False, message=f"connector {connector_id!r}: {exc.message}")
    except Exception as exc:  # a library's message may quote a URL with credentials: give the type only
        log.info("Muxly API: connector %s test failed with %s", connector_id, type(exc).__name__)
        return ConnectorTestResponse(ok=False, message=f"connector {connector_id!r}: {type(exc).__name__}")
    return ConnectorTestResponse(ok=True, message=message)


SAMPLE_SECONDS = 20.0
"""The longest a sample may read; then it answers what it has, ``truncated`` and ``timed_out``."""


class ConnectorSampleRequest(StrictRequest):
    """How many records to read, and what to ask the connector for (a job's ``data_spec``)."""

    limit: int = Field(default=10, ge=1, le=100)
    data_spec: dict[str, Any] = Field(
        default_factory=dict,
        description="As a job's action_params.data_spec (a database connector needs its 'query'); "
        "date variables such as ${DATE} are resolved",
    )


class ConnectorSampleResponse(BaseModel):
    """The first records the connector gives."""

    records: list[dict[str, Any]]
    truncated: bool = Field(description="More records were there, or the time bound stopped the read")
    timed_out: bool


@router.post(
    "/{connector_id}/sample",
    response_model=ConnectorSampleResponse,
    summary="Read a few records from a connector (nothing is written)",
    responses={502: {"description": "The connector failed; the message says why (never the remote text)"}},
)
def sample_connector(
    connector_id: str,
    session: DbSession,
    _: Annotated[Principal, require("connectors", "execute")],
    body: ConnectorSampleRequest | None = None,
) -> dict[str, Any]:
    """Run the connector's extraction in the api-server, at most ``limit`` records and ``SAMPLE_SECONDS``.

    The stored row is checked as ``/test`` checks it (validation, ``files_root``, never Muxly's or Airflow's
    database), and so are the paths of ``data_spec``. No execution is recorded and nothing is delivered.
    """
    from datetime import UTC, datetime

    from muxly_provider.api.errors import MuxlyHTTPError
    from muxly_provider.api.v1.bounded import read_sample
    from muxly_provider.api.v1.common import config_errors_answer
    from muxly_provider.connectors.base import ConnectorContext
    from muxly_provider.connectors.check import safe_test_message
    from muxly_provider.connectors.registry import get_connector_class
    from muxly_provider.crypto import decrypt_row_secrets
    from muxly_provider.exceptions import MuxlyConfigError, MuxlyError
    from muxly_provider.runtime.variables import date_variables, resolve
    from muxly_provider.security import row_problems

    request = body or ConnectorSampleRequest()
    stored = crud.load_row(session, TABLE, connector_id)
    if stored is None:
        raise not_found(KIND, connector_id)
    crud.check_row(session, TABLE, stored, stored)
    spec_row = {"action_params": {"data_spec": request.data_spec}}
    problems = row_problems("scheduler_jobs", spec_row, None, credentials_allowed=True)
    if problems:
        fields = [
            MuxlyConfigError(TABLE, connector_id, p.field.removeprefix("action_params."), p.reason)
            for p in problems
        ]
        raise config_errors_answer(fields)
    data_spec = resolve(request.data_spec, date_variables(datetime.now(UTC)))
    row = decrypt_row_secrets(TABLE, stored)
    context = ConnectorContext(
        id=str(row["id"]),
        name=str(row["name"]),
        connector_type=str(row["connector_type"]),
        auth=row.get("auth_settings") or {},
        settings=row.get("connection_settings") or {},
    )
    session.commit()  # nothing to keep: do not hold a transaction while a remote system answers
    try:
        connector = get_connector_class(context.connector_type)(context, batch_size=request.limit + 1)
        sample = read_sample(connector, data_spec, limit=request.limit, seconds=SAMPLE_SECONDS)
    except MuxlyError as exc:  # Muxly's messages name the connector and never hold a secret
        raise MuxlyHTTPError(502, "sample_failed", safe_test_message(str(exc))) from None
    except Exception as exc:  # a library's message may quote a URL with credentials: give the type only
        log.info("Muxly API: connector %s sample failed with %s", connector_id, type(exc).__name__)
        raise MuxlyHTTPError(
            502, "sample_failed", f"connector {connector_id!r}: {type(exc).__name__}"
        ) from None
    return {"records": sample.records, "truncated": sample.truncated, "timed_out": sample.timed_out}
