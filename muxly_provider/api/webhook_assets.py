"""Webhooks as asset events: a delivery to a ``webhook_triggers`` row with ``asset_uri`` creates an Airflow asset event.

The event is created the way Airflow's own ``POST /api/v2/assets/events`` does it, in the api-server's ORM
session: :meth:`AssetManager.register_asset_change` with ``source_is_api=True`` writes the ``asset_event`` row,
queues every unpaused DAG scheduled on the asset (``asset_dag_run_queue``; the scheduler then creates their
runs) and notifies the listeners. The event's ``extra`` is::

    {"payload": <the JSON body, null for an empty body>,
     "muxly_webhook": {"trigger_id": "...", "event_id": "...", "endpoint_path": "...", "run_id": null}}

(``event_id`` is the ``webhook_events`` row; ``run_id`` the run the row's job started, when it names one too).

Order and failures:

1. The URI must start with one of ``[muxly] webhook_asset_uri_prefixes`` (default ``x-muxly-webhook://``;
   ``*`` allows any asset): a config writer could otherwise make deliveries run any asset-scheduled DAG of the
   Airflow instance. Refused: ``409 asset_not_allowed``, nothing stored.
2. The asset must be known to Airflow (an ``asset`` row: some DAG declares it, or did). Airflow's endpoint
   answers 404 for an asset it does not know; here 404 means "no such endpoint", so an unknown asset answers
   ``409 asset_not_found`` (like a job whose DAG is not parsed yet). Nothing is stored and the replay key is not
   kept, so the sender's retry after the DAG is deployed is the delivery.
3. A row with a job starts the run first (its own 409s apply, nothing stored), stores the delivery, then creates
   the asset event. A row without a job stores the delivery and its replay key in one transaction, then creates
   the asset event; if that fails, the stored delivery and its replay key are removed again (the retry is the
   delivery). Should the asset disappear between the check and the event (a DAG removed at that moment), a row
   with a job answers ``409 asset_not_found`` whose details name the run and the stored event, which are kept.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from muxly_provider.api.errors import MuxlyHTTPError

log = logging.getLogger(__name__)

DEFAULT_PREFIXES = "x-muxly-webhook://"
"""The default of ``[muxly] webhook_asset_uri_prefixes``: a scheme no DAG outside webhooks uses by accident."""

EXTRA_KEY = "muxly_webhook"
"""The key of the asset event's ``extra`` that names the delivery (``payload`` holds the body)."""

StartRun = Callable[[dict[str, Any], Any, "str | None"], dict[str, Any]]


def allowed_prefixes() -> list[str]:
    """``[muxly] webhook_asset_uri_prefixes``: comma-separated URI prefixes (``*``: any asset; empty: none)."""
    from muxly_provider.settings import conf_get

    raw = conf_get("muxly", "webhook_asset_uri_prefixes", DEFAULT_PREFIXES)
    return [part.strip() for part in raw.split(",") if part.strip()]


def normalize_asset_uri(uri: str) -> str:
    """The URI as Airflow stores it (``Asset(uri)`` normalizes it: e.g. ``s3://b/k/`` becomes ``s3://b/k``).

    :raises MuxlyHTTPError: 409 when Airflow refuses the URI
    """
    import warnings

    from airflow.sdk import Asset

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return str(Asset(uri=uri).uri)
    except (ValueError, TypeError) as exc:
        raise MuxlyHTTPError(
            409, "asset_not_allowed", f"Airflow refuses the asset URI {uri!r} of this webhook: {exc}"
        ) from None


def check_asset_allowed(uri: str) -> str:
    """The normalized URI when ``[muxly] webhook_asset_uri_prefixes`` allows it.

    :raises MuxlyHTTPError: 409 ``asset_not_allowed`` naming the asset and the setting
    """
    normalized = normalize_asset_uri(uri)
    prefixes = allowed_prefixes()
    if "*" in prefixes or any(normalized.startswith(prefix) for prefix in prefixes):
        return normalized
    allowed = ", ".join(repr(prefix) for prefix in prefixes) or "none"
    raise MuxlyHTTPError(
        409,
        "asset_not_allowed",
        f"the asset {normalized!r} of this webhook is not under [muxly] webhook_asset_uri_prefixes "
        f"(allowed: {allowed})",
        {"asset_uri": normalized},
    )


def check_row_asset(asset_uri: str | None) -> None:
    """For the management API: refuse to write a row whose ``asset_uri`` no delivery could fire.

    The delivery-time check (:func:`check_asset_allowed`) is what protects; this one answers at once.

    :raises MuxlyHTTPError: 422 ``validation_error`` naming ``asset_uri``
    """
    from muxly_provider.api.v1.common import invalid
    from muxly_provider.config.webhooks import check_asset_uri

    if asset_uri is None:
        return
    try:
        check_asset_uri(asset_uri)
    except ValueError:
        return  # the row's own validation names what is wrong
    try:
        check_asset_allowed(asset_uri)
    except MuxlyHTTPError as exc:
        allowed = ", ".join(allowed_prefixes()) or "none"
        raise invalid(
            "asset_uri",
            f"an asset URI Airflow accepts under [muxly] webhook_asset_uri_prefixes (allowed: {allowed}); "
            + exc.message,
        ) from None


def _asset_models(session: Any, uri: str) -> list[Any]:
    from airflow.models.asset import AssetModel
    from sqlalchemy import select

    return list(session.scalars(select(AssetModel).where(AssetModel.uri == uri).order_by(AssetModel.id)))


def _not_found(uri: str, details: dict[str, Any] | None = None, note: str = "") -> MuxlyHTTPError:
    return MuxlyHTTPError(
        409,
        "asset_not_found",
        f"Airflow has no asset {uri!r} (no DAG declares it, or the DAG processor has not parsed it yet){note}",
        {"asset_uri": uri, **(details or {})},
    )


def require_asset(uri: str) -> None:
    """Check that Airflow knows the asset ``uri`` (an ``asset`` row).

    :raises MuxlyHTTPError: 409 ``asset_not_found``
    """
    from airflow.utils.session import create_session

    with create_session() as session:
        if not _asset_models(session, uri):
            raise _not_found(uri)


def create_asset_events(uri: str, extra: dict[str, Any]) -> list[int] | None:
    """Create an event of every Airflow asset with ``uri`` (usually one), as ``POST /api/v2/assets/events`` does.

    One transaction of Airflow's ORM: the events and the queued DAG runs of the DAGs scheduled on them.

    :returns: the ``asset_event`` ids, or ``None`` when Airflow has no asset with this URI
    """
    from airflow._shared.timezones import timezone
    from airflow.assets.manager import asset_manager
    from airflow.utils.session import create_session

    with create_session() as session:
        models = _asset_models(session, uri)
        if not models:
            return None
        ids: list[int] = []
        for model in models:
            event = asset_manager.register_asset_change(
                asset=model,
                timestamp=timezone.utcnow(),
                extra=extra,
                source_is_api=True,
                api_user_teams=set(),
                session=session,
            )
            if event is None:  # removed between the query and the event: the whole transaction is undone
                session.rollback()
                return None
            ids.append(int(event.id))
    return ids


def _extra(trigger: dict[str, Any], payload: Any, event_id: str, run_id: str | None) -> dict[str, Any]:
    return {
        "payload": payload,
        EXTRA_KEY: {
            "trigger_id": str(trigger["id"]),
            "event_id": event_id,
            "endpoint_path": str(trigger["endpoint_path"]),
            "run_id": run_id,
        },
    }


def _answer(accepted: dict[str, Any], ids: list[int]) -> dict[str, Any]:
    return {**accepted, "asset_event_id": ids[0], "asset_event_ids": ids}


def accept_asset_delivery(
    trigger: dict[str, Any], payload: Any, replay_key: str | None, start_run: StartRun | None
) -> dict[str, Any]:
    """Store a verified delivery of a row with ``asset_uri``, start its job if any, create the asset event.

    :param trigger: the ``webhook_triggers`` row (``asset_uri`` set)
    :param payload: the parsed JSON body
    :param replay_key: the delivery's replay key (``None`` for an unsigned endpoint)
    :param start_run: the run endpoint's own ``_start_run`` when the row names a job, else ``None``
    :returns: the 202 answer: ``event_id``, ``asset_event_id`` and ``asset_event_ids``, and the run's ids
    :raises MuxlyHTTPError: 401 replay, 409 asset not allowed or unknown (and the job's own 409s)
    """
    uri = check_asset_allowed(str(trigger["asset_uri"]))
    require_asset(uri)
    if start_run is not None:
        accepted = start_run(trigger, payload, replay_key)
        ids = create_asset_events(uri, _extra(trigger, payload, accepted["event_id"], accepted.get("run_id")))
        if ids is None:
            raise _not_found(
                uri,
                accepted,
                note="; the job's run started and the delivery was stored, but no asset event was created",
            )
        return _answer(accepted, ids)
    return _store_and_create(trigger, payload, replay_key, uri)


def _store_and_create(
    trigger: dict[str, Any], payload: Any, replay_key: str | None, uri: str
) -> dict[str, Any]:
    from muxly_provider import webhook_events
    from muxly_provider.api.webhooks import store_delivery

    engine, event_id = store_delivery(trigger, payload, replay_key)
    trigger_id = str(trigger["id"])
    try:
        ids = create_asset_events(uri, _extra(trigger, payload, event_id, None))
    except BaseException:
        _forget(engine, trigger_id, event_id, replay_key)
        raise
    if ids is None:
        _forget(engine, trigger_id, event_id, replay_key)
        raise _not_found(uri)
    webhook_events.maybe_prune(engine)
    return _answer({"event_id": event_id}, ids)


def _forget(engine: Any, trigger_id: str, event_id: str, replay_key: str | None) -> None:
    """Undo a stored delivery whose asset event could not be created (the sender's retry is the delivery)."""
    from muxly_provider import webhook_events
    from muxly_provider.api import webhook_replays

    try:
        webhook_events.delete_event(engine, event_id)
        if replay_key is not None:
            webhook_replays.release(engine, trigger_id, replay_key)
    except Exception:  # the original error matters more; the event then stays for sensors
        log.exception("could not remove webhook event %s after its asset event failed", event_id)
