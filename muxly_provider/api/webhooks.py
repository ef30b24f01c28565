"""``POST /muxly/webhooks/{endpoint_path}``: signed deliveries, kept as events, that may start a run.

Protocol (SPEC §2): with a ``secret_key`` the request carries ``X-Muxly-Timestamp`` (unix seconds, within 300 s
of now) and ``X-Muxly-Signature: sha256=<hex>`` = HMAC-SHA256(secret, timestamp + "." + raw body); GitHub's
``X-Hub-Signature-256`` (HMAC of the raw body) is accepted too. Signatures are compared in constant time. The
replay key is a digest of the signed bytes (timestamp and body, or the body for GitHub; never the unsigned
``X-GitHub-Delivery``), recorded in ``webhook_deliveries`` before anything else: a replayed delivery is
rejected without starting or storing anything (see :mod:`muxly_provider.api.webhook_replays`).

Every valid delivery is stored in ``webhook_events`` (see :mod:`muxly_provider.webhook_events`), where waiting
sensors and event triggers find it. A trigger row with a ``job_id`` also starts a run of that job (the JSON body
in ``conf["payload"]``), and its event is stored once the run exists (with its run id); a row without a job (a
sensor-only endpoint) stores the event in the same transaction as the replay key.

Answers: 202 with ``event_id`` and, when a run started, ``dag_id``, ``run_id`` and ``execution_id``; 401 bad or
missing signature (or a replay); 404 unknown or disabled endpoint; 409 paused or broken job DAG (nothing
stored: the sender's retry is the delivery); 413 body over ``[muxly] webhook_max_body_bytes``; 422 a body that
is not JSON or nests more than 64 levels deep.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from typing import Any

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from muxly_provider.api import webhook_replays
from muxly_provider.api.errors import MuxlyHTTPError
from muxly_provider.api.webhook_replays import github_replay_key, muxly_replay_key

router = APIRouter(tags=["webhooks"])

TIMESTAMP_TOLERANCE_SECONDS = 300


async def _read_body(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise MuxlyHTTPError(413, "payload_too_large", f"the body is over {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise MuxlyHTTPError(413, "payload_too_large", f"the body is over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def parse_payload(body: bytes) -> Any:
    """The JSON payload of a delivery (``None`` for an empty body).

    :raises MuxlyHTTPError: 422 when the body is not JSON or nests more than
        :data:`~muxly_provider.api.limits.MAX_JSON_DEPTH` levels deep
    """
    from muxly_provider.api.limits import MAX_JSON_DEPTH, json_too_deep

    if not body.strip():
        return None
    too_deep = MuxlyHTTPError(
        422, "invalid_json", f"the JSON body is nested more than {MAX_JSON_DEPTH} levels deep"
    )
    if json_too_deep(body):
        raise too_deep
    try:
        return json.loads(body)
    except RecursionError:
        raise too_deep from None
    except ValueError as exc:
        raise MuxlyHTTPError(422, "invalid_json", "the body is not JSON") from exc


def _find_trigger(endpoint_path: str) -> dict[str, Any]:
    from sqlalchemy import select

    from muxly_provider.db.engine import get_engine
    from muxly_provider.db.models import WebhookTrigger

    with get_engine().connect() as conn:
        row = (
            conn.execute(
                select(WebhookTrigger.__table__).where(
                    WebhookTrigger.endpoint_path == endpoint_path, WebhookTrigger.enabled.is_(True)
                )
            )
            .mappings()
            .first()
        )
    if row is None:
        raise MuxlyHTTPError(404, "not_found", "no enabled webhook at this path")
    return dict(row)


def verify_signature(secret: str, headers: Any, body: bytes, now: float | None = None) -> str:
    """Check a delivery's signature and return its replay key.

    :raises MuxlyHTTPError: 401 when the signature is missing, stale or wrong
    """
    key = secret.encode()
    muxly_signature = headers.get("x-muxly-signature")
    if muxly_signature:
        timestamp = headers.get("x-muxly-timestamp") or ""
        if not timestamp.isdigit():
            raise MuxlyHTTPError(401, "invalid_signature", "X-Muxly-Timestamp is missing or not unix seconds")
        if abs((now if now is not None else time.time()) - int(timestamp)) > TIMESTAMP_TOLERANCE_SECONDS:
            raise MuxlyHTTPError(401, "invalid_signature", "X-Muxly-Timestamp is not within 300 s of now")
        expected = "sha256=" + hmac.new(key, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), muxly_signature.strip().encode()):
            raise MuxlyHTTPError(401, "invalid_signature", "the signature does not match")
        return muxly_replay_key(timestamp, body)
    github_signature = headers.get("x-hub-signature-256")
    if github_signature:
        expected = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected.encode(), github_signature.strip().encode()):
            raise MuxlyHTTPError(401, "invalid_signature", "the signature does not match")
        return github_replay_key(body)
    raise MuxlyHTTPError(401, "invalid_signature", "the request is not signed")


def _trigger_and_secret(endpoint_path: str) -> tuple[dict[str, Any], str | None]:
    """The enabled trigger at ``endpoint_path`` and its decrypted secret (one trip to a worker thread)."""
    from muxly_provider.crypto import decrypt_secret

    trigger = _find_trigger(endpoint_path)
    secret = trigger.get("secret_key")
    return trigger, decrypt_secret(secret) if secret else None


def store_delivery(trigger: dict[str, Any], payload: Any, replay_key: str | None) -> tuple[Any, str]:
    """Store a delivery in ``webhook_events`` with its replay key, in one transaction.

    :returns: Muxly's engine and the event id
    :raises MuxlyHTTPError: 401 when the replay key was already accepted (a replayed delivery)
    """
    from sqlalchemy.exc import IntegrityError

    from muxly_provider import webhook_events
    from muxly_provider.db.engine import get_engine

    engine = get_engine()
    trigger_id = str(trigger["id"])
    try:
        with engine.begin() as conn:
            if replay_key is not None:
                webhook_replays.claim_in(conn, trigger_id, replay_key)
            event_id = webhook_events.insert_event(
                conn,
                trigger_id=trigger_id,
                endpoint_path=str(trigger["endpoint_path"]),
                payload=payload,
                replay_key=replay_key,
            )
    except IntegrityError:
        if replay_key is None:
            raise
        raise MuxlyHTTPError(401, "replayed_delivery", "this delivery was already received") from None
    return engine, event_id


def _store_without_run(trigger: dict[str, Any], payload: Any, replay_key: str | None) -> dict[str, Any]:
    """Store the delivery of a trigger without a job: replay key and event in one transaction."""
    from muxly_provider import webhook_events

    engine, event_id = store_delivery(trigger, payload, replay_key)
    webhook_events.maybe_prune(engine)
    return {"event_id": event_id}


def _start_run(trigger: dict[str, Any], payload: Any, replay_key: str | None) -> dict[str, Any]:
    """Start a run of the trigger's job, then store the delivery with the run's id."""
    from muxly_provider import webhook_events
    from muxly_provider.db.engine import get_engine
    from muxly_provider.executions.start_run import JobTriggerError, trigger_job_run

    trigger_id = str(trigger["id"])
    if replay_key is not None and not webhook_replays.claim(get_engine(), trigger_id, replay_key):
        raise MuxlyHTTPError(401, "replayed_delivery", "this delivery was already received")
    try:
        run = trigger_job_run(str(trigger["job_id"]), triggered_by="webhook", payload=payload)
    except BaseException as exc:
        if replay_key is not None:  # nothing started: the sender's retry is not a replay
            webhook_replays.release(get_engine(), trigger_id, replay_key)
        if isinstance(exc, JobTriggerError):
            raise MuxlyHTTPError(exc.status_code, exc.code, exc.message) from exc
        raise
    event_id = webhook_events.record_event(
        get_engine(),
        trigger_id=trigger_id,
        endpoint_path=str(trigger["endpoint_path"]),
        payload=payload,
        replay_key=replay_key,
        run_id=run.run_id,
    )
    return {
        "dag_id": run.dag_id,
        "run_id": run.run_id,
        "execution_id": run.execution_id,
        "event_id": event_id,
    }


def accept_delivery(trigger: dict[str, Any], payload: Any, replay_key: str | None) -> dict[str, Any]:
    """Store a verified delivery and start the trigger's job if it has one; the 202 answer's body."""
    if trigger.get("asset_uri"):  # also an Airflow asset event (see muxly_provider.api.webhook_assets)
        from muxly_provider.api.webhook_assets import accept_asset_delivery

        return accept_asset_delivery(
            trigger, payload, replay_key, _start_run if trigger.get("job_id") else None
        )
    if trigger.get("job_id"):
        return _start_run(trigger, payload, replay_key)
    return _store_without_run(trigger, payload, replay_key)


_ERROR = {
    "content": {"application/json": {"example": {"error": {"code": "...", "message": "...", "details": {}}}}}
}
RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {
        "description": "The delivery was stored (event_id) and, for a trigger with a job, its run created "
        "(dag_id, run_id, execution_id)"
    },
    401: {"description": "Bad, missing or stale signature, or a replayed delivery", **_ERROR},
    404: {"description": "Unknown or disabled endpoint", **_ERROR},
    409: {
        "description": "The job's DAG is paused, broken or not parsed yet; or the trigger's asset is unknown to "
        "Airflow or outside [muxly] webhook_asset_uri_prefixes",
        **_ERROR,
    },
    413: {"description": "The body is over [muxly] webhook_max_body_bytes", **_ERROR},
    422: {"description": "The body is not JSON, or nests more than 64 levels deep", **_ERROR},
}


@router.post(
    "/webhooks/{endpoint_path:path}",
    status_code=202,
    summary="Receive a webhook delivery (store it, start the trigger's job)",
    responses=RESPONSES,
)
async def receive_webhook(endpoint_path: str, request: Request) -> JSONResponse:
    """Verify a delivery, store it for sensors and start the trigger's job (JSON body in ``conf["payload"]``)."""
    from muxly_provider import settings

    body = await _read_body(request, settings.webhook_max_body_bytes())
    trigger, secret = await run_in_threadpool(_trigger_and_secret, endpoint_path)
    replay_key = verify_signature(secret, request.headers, body) if secret else None
    payload = parse_payload(body)
    accepted = await run_in_threadpool(accept_delivery, trigger, payload, replay_key)
    return JSONResponse(accepted, status_code=202)
