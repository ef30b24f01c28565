"""``POST /jobs/{id}/preview``: what a run of the job would deliver, per destination, with nothing written.

Permissions: ``jobs:read``; reading a connector (the job's own when no ``records`` are given, and the lookup
connector of any ``join`` step) also needs ``connectors:execute``, as ``POST /connectors/{id}/sample`` does:
the api-server reaches that system with the stored credentials. Each connector read is confined as the sample
is (validation, ``[muxly] files_root``, never Muxly's or Airflow's database) and bounded by the preview's limits
(:mod:`muxly_provider.preview`). No execution, DAG run, staging file, dead letter or delivery is made.
"""

from __future__ import annotations

import logging
from typing import Annotated, Any

from fastapi import APIRouter
from pydantic import BaseModel, Field

from muxly_provider.api.v1 import crud
from muxly_provider.api.v1.common import StrictRequest, not_found
from muxly_provider.auth.dependencies import DbSession, require
from muxly_provider.auth.permissions import Principal
from muxly_provider.preview import DEFAULT_LIMIT, MAX_RECORDS

log = logging.getLogger(__name__)

router = APIRouter(prefix="/jobs", tags=["jobs"])


class JobPreviewRequest(StrictRequest):
    """What to preview: records read from the job's connector (``limit``), or sample ``records``."""

    limit: int = Field(
        default=DEFAULT_LIMIT, ge=1, le=MAX_RECORDS, description="Records read from the connector"
    )
    records: list[dict[str, Any]] | None = Field(
        default=None,
        max_length=MAX_RECORDS,
        description="Sample records routed instead of reading the connector (all of them are routed)",
    )
    payload: Any = Field(
        default=None,
        description="For a job whose connector is a webhook: the body of a delivery (read through its "
        "records_path); the 'payload' of its action_params templates",
    )


class DestinationPreviewResponse(BaseModel):
    """What one destination would receive: its share, the first records, and how it would write them."""

    id: str
    name: str
    destination_type: str
    enabled: bool
    routed: int = Field(description="Records routed to it (for a disabled destination: skipped)")
    records: list[dict[str, Any]] = Field(description="The first records of its share, as routed")
    rendered_as: str = Field(description="line, row, request, message, object, sample or record")
    rendered: list[Any] = Field(description="The first items as the destination would write them")
    rendered_total: int = Field(description="How many such items the share makes")
    target: str | None
    error: str | None = Field(description="Why it would refuse the share (a template, its config)")
    dead_letter_destination_id: str | None = Field(
        description="Where a run sends what it refuses (null: the dead_letters table)"
    )


class FailurePreviewResponse(BaseModel):
    """A record whose transformation failed, and what its route does with it."""

    route_id: str
    rule_id: str | None
    transformation_id: str | None
    error: str
    record: dict[str, Any] | None
    mode: str = Field(description="continue (skipped), dead_letter or fail (the run fails)")
    dead_letter_destination_id: str | None


class JobPreviewResponse(BaseModel):
    """A preview of one run of the job."""

    job_id: str
    action_type: str
    source: str = Field(description="'connector' or 'records'")
    records_in: int
    truncated: bool = Field(description="The connector had more records, or the time bound stopped the read")
    timed_out: bool
    unmatched: int
    unmatched_records: list[dict[str, Any]]
    filtered: int
    matched_per_rule: dict[str, int]
    destinations: list[DestinationPreviewResponse]
    failures: list[FailurePreviewResponse]
    failures_total: int
    error: str | None = Field(description="Why the run would fail ('the run would fail: ...')")
    warnings: list[str]
    duration_seconds: float


def _check_connectors(session: DbSession, principal: Principal, connector_ids: list[str]) -> None:
    """``403`` without ``connectors:execute``; ``422`` for a stored connector that is not confined."""
    from muxly_provider.api.errors import MuxlyHTTPError

    if not connector_ids:
        return
    if not principal.can("connectors", "execute"):
        raise MuxlyHTTPError(
            403,
            "forbidden",
            f"permission execute on connectors required: the preview reads connector(s) "
            f"{', '.join(repr(c) for c in connector_ids)} (give 'records' to preview without the job's own)",
            {"resource": "connectors", "action": "execute"},
        )
    for connector_id in connector_ids:
        stored = crud.load_row(session, "connectors", connector_id)
        if stored is None:
            raise not_found("connector", connector_id)
        crud.check_row(session, "connectors", stored, stored)


@router.post(
    "/{job_id}/preview",
    response_model=JobPreviewResponse,
    summary="Preview what a run would deliver (nothing is written)",
    responses={502: {"description": "The connector failed; the message says why (never the remote text)"}},
)
def preview_job_run(
    job_id: str,
    session: DbSession,
    principal: Annotated[Principal, require("jobs", "read")],
    body: JobPreviewRequest | None = None,
) -> dict[str, Any]:
    """Route up to ``limit`` records of the job's connector (or the given ``records``) through the job's routes
    and show, per destination, the first records as it would write them, the counts, the unmatched records
    and every transformation failure with its error. Bounded: at most 100 records, 20 s of reading."""
    from muxly_provider.api.errors import MuxlyHTTPError
    from muxly_provider.connectors.check import safe_test_message
    from muxly_provider.exceptions import MuxlyConfigError, MuxlyError, MuxlySecretError
    from muxly_provider.preview import MuxlyPreviewError, lookup_connector_ids, preview_job
    from muxly_provider.runtime.loading import load_job_runtime
    from muxly_provider.templating import TemplateRenderError

    request = body or JobPreviewRequest()
    stored = crud.load_row(session, "scheduler_jobs", job_id)
    if stored is None:
        raise not_found("job", job_id)
    crud.check_row(session, "scheduler_jobs", stored, stored)
    session.commit()  # nothing to keep: do not hold a transaction while a remote system answers
    runtime = load_job_runtime(job_id)  # MuxlyConfigError: 409 naming the row and the field
    reads = lookup_connector_ids(runtime)
    if request.records is None and runtime.connector.connector_type != "webhook":
        reads = sorted({runtime.connector.id, *reads})
    _check_connectors(session, principal, reads)
    session.commit()
    try:
        return preview_job(runtime, records=request.records, payload=request.payload, limit=request.limit)
    except TemplateRenderError as exc:  # a template of action_params: the field and the reason
        details = {"field": exc.field or "action_params", "reason": exc.reason}
        raise MuxlyHTTPError(422, "validation_error", str(exc), details) from None
    except MuxlyPreviewError as exc:
        raise MuxlyHTTPError(422, "validation_error", str(exc), {"field": "records"}) from None
    except (MuxlyConfigError, MuxlySecretError):  # a stored row (409), the Fernet key (503): as everywhere
        raise
    except MuxlyError as exc:  # Muxly's messages name the connector and never hold a secret
        raise MuxlyHTTPError(502, "preview_failed", safe_test_message(str(exc))) from None
    except Exception as exc:  # a library's message may quote a URL with credentials: give the type only
        log.info("Muxly API: job %s preview failed with %s", job_id, type(exc).__name__)
        raise MuxlyHTTPError(502, "preview_failed", f"job {job_id!r}: {type(exc).__name__}") from None
