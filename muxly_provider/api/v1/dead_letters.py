"""``/dead-letters``: batches a destination refused after its retries; list, show and replay them.

Permissions: reading letters (their records included) needs ``(executions, read)``, as they are part of a
run's outcome; replaying needs ``(jobs, execute)``, as running a job does, because it delivers data to a
destination. Replays are idempotent (see :mod:`muxly_provider.destinations.replay`): replaying a letter twice
delivers it once.
"""

from __future__ import annotations

from dataclasses import asdict
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel, Field, model_validator

from muxly_provider.api.v1.common import Limit, Offset, Page, StrictRequest, UtcDatetime, invalid, not_found
from muxly_provider.auth.dependencies import DbSession, require
from muxly_provider.auth.permissions import Principal
from muxly_provider.destinations.replay import DeadLetterFilter, ReplayResult
from muxly_provider.exceptions import MuxlyConfigError

router = APIRouter(prefix="/dead-letters", tags=["dead-letters"])

FilterId = Annotated[str | None, Query(max_length=500)]
ReplayStatus = Literal["replayed", "already_replayed", "in_progress", "failed", "not_found"]


class DeadLetterResponse(BaseModel):
    """A stored dead letter (one failed batch of one destination in one run), without its records."""

    id: str
    job_id: str
    dag_id: str
    run_id: str
    destination_id: str
    batch_index: int
    record_count: int
    error: str
    created_at: UtcDatetime
    updated_at: UtcDatetime
    replayed_at: UtcDatetime | None = Field(description="When a replay delivered it; null: not replayed")
    replayed_to: str | None = Field(description="The destination the replay delivered it to")
    replay_error: str | None = Field(description="Why the last replay failed (it stays un-replayed)")
    replay_attempts: int


class DeadLetterDetailResponse(DeadLetterResponse):
    """A dead letter with its records."""

    records: list[Any]


class ReplayRequest(StrictRequest):
    """Replay one letter, to its own destination or to ``to_destination_id``."""

    to_destination_id: str | None = Field(default=None, min_length=1, max_length=500)


class ReplayManyRequest(StrictRequest):
    """Replay the letters named by ``ids``, or the un-replayed letters matching the filters (at most ``limit``)."""

    ids: list[Annotated[str, Field(min_length=1, max_length=500)]] | None = Field(
        default=None, max_length=1000
    )
    job_id: str | None = Field(default=None, max_length=500)
    dag_id: str | None = Field(default=None, max_length=500)
    run_id: str | None = Field(default=None, max_length=500)
    destination_id: str | None = Field(default=None, max_length=500)
    to_destination_id: str | None = Field(default=None, min_length=1, max_length=500)
    limit: int = Field(default=100, ge=1, le=1000)

    @model_validator(mode="after")
    def _ids_or_filter(self) -> ReplayManyRequest:
        if not self.ids and self.filters().is_empty():
            raise ValueError(
                "name the letters: 'ids', or at least one of job_id, dag_id, run_id, destination_id"
            )
        if self.ids and not self.filters().is_empty():
            raise ValueError("either 'ids' or filters, not both")
        return self

    def filters(self) -> DeadLetterFilter:
        """The filters of the request (un-replayed letters only)."""
        return DeadLetterFilter(
            job_id=self.job_id, dag_id=self.dag_id, run_id=self.run_id, destination_id=self.destination_id
        )


class ReplayResultResponse(BaseModel):
    """What the replay did with one letter."""

    id: str
    status: ReplayStatus = Field(
        description="replayed; already_replayed (nothing delivered again); in_progress (another replay holds "
        "it); failed (see error; it stays un-replayed); not_found"
    )
    destination_id: str | None
    delivered: int
    error: str | None


class ReplayManyResponse(BaseModel):
    """The outcome of each letter, and counts per status."""

    results: list[ReplayResultResponse]
    counts: dict[str, int]


def _filters(
    job_id: str | None,
    dag_id: str | None,
    run_id: str | None,
    destination_id: str | None,
    replayed: bool | None,
) -> DeadLetterFilter:
    return DeadLetterFilter(
        job_id=job_id, dag_id=dag_id, run_id=run_id, destination_id=destination_id, replayed=replayed
    )


@router.get("", response_model=Page[DeadLetterResponse], summary="List dead letters (newest first)")
def list_dead_letters(
    session: DbSession,
    _: Annotated[Principal, require("executions", "read")],
    limit: Limit = 100,
    offset: Offset = 0,
    job_id: FilterId = None,
    dag_id: FilterId = None,
    run_id: FilterId = None,
    destination_id: FilterId = None,
    replayed: Annotated[
        bool | None, Query(description="true: replayed ones only; false: not replayed")
    ] = None,
) -> dict[str, Any]:
    from muxly_provider.destinations.replay import list_letters

    filters = _filters(job_id, dag_id, run_id, destination_id, replayed)
    rows, total = list_letters(session.connection(), filters, limit=limit, offset=offset)
    return {"items": rows, "total": total, "limit": limit, "offset": offset}


@router.get(
    "/{letter_id}", response_model=DeadLetterDetailResponse, summary="Get a dead letter with its records"
)
def get_dead_letter(
    letter_id: str, session: DbSession, _: Annotated[Principal, require("executions", "read")]
) -> dict[str, Any]:
    from muxly_provider.destinations.replay import get_letter

    letter = get_letter(session.connection(), letter_id)
    if letter is None:
        raise not_found("dead letter", letter_id)
    return letter


def _replay(session: DbSession, ids: list[str], to_destination: str | None) -> list[ReplayResult]:
    from muxly_provider.db.engine import get_engine
    from muxly_provider.destinations.replay import replay_letters

    session.commit()  # end this transaction: the replay claims and marks letters through its own connections
    try:
        return replay_letters(get_engine(), ids, to_destination)
    except MuxlyConfigError as exc:
        if exc.table != "destinations":
            raise  # a stored letter that cannot be read: 409 naming its field (api/errors.py)
        raise invalid("to_destination_id", f"{exc.expected} (destination {exc.row_id!r})") from None


@router.post(
    "/{letter_id}/replay", response_model=ReplayResultResponse, summary="Replay a dead letter (idempotent)"
)
def replay_dead_letter(
    letter_id: str,
    session: DbSession,
    _: Annotated[Principal, require("jobs", "execute")],
    body: ReplayRequest | None = None,
) -> dict[str, Any]:
    """Deliver the letter's records to its destination (or ``to_destination_id``) and mark it replayed.

    A failed delivery answers ``200`` with ``status: failed`` and the error: the letter stays un-replayed.
    """
    [result] = _replay(session, [letter_id], body.to_destination_id if body else None)
    if result.status == "not_found":
        raise not_found("dead letter", letter_id)
    return asdict(result)


@router.post("/replay", response_model=ReplayManyResponse, summary="Replay several dead letters (idempotent)")
def replay_dead_letters(
    body: ReplayManyRequest, session: DbSession, _: Annotated[Principal, require("jobs", "execute")]
) -> dict[str, Any]:
    """Replay the letters of ``ids``, or up to ``limit`` un-replayed letters matching the filters (oldest first)."""
    from muxly_provider.db.engine import get_engine
    from muxly_provider.destinations.replay import matching_ids

    ids = body.ids or matching_ids(get_engine(), body.filters(), body.limit)
    results = _replay(session, ids, body.to_destination_id)
    counts: dict[str, int] = {}
    for result in results:
        counts[result.status] = counts.get(result.status, 0) + 1
    return {"results": [asdict(r) for r in results], "counts": counts}
