"""What runs around a job's run: its ``run_condition`` before, its ``notifications`` after.

``run_condition`` (SPEC §2, the original docs' "a connector query whose truthy result lets the run go"):

* a string: a query for the job's own connector (``data_spec = {"query": ...}``, database and BigQuery);
* an object: ``connector_id`` (default: the job's connector), ``data_spec`` and/or ``query``, and an optional
  ``condition``, a Muxly condition evaluated on the first record.

The run goes on when the first record exists and matches ``condition``, or, without one, when its first value is
truthy. ``notifications``: ``on_success``/``on_failure`` lists of destination ids (or ``{"destination_id",
"message_template"}``); each destination receives one record describing the run (``job_id``, ``job_name``,
``dag_id``, ``run_id``, ``status``, ``completion_time``, ``error_message``, ``message``), so its own templates
(email subject and body, Slack message) can use those fields. ``message_template`` is a template of Muxly's
one Jinja environment (``docs/templates.md``) over ``job_name``, ``job_id``, ``completion_time`` and
``error_message``, which it may also write as the shorthands ``${job_name}``, ...
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from muxly_provider.destinations.base import DestinationContext, RunInfo
from muxly_provider.exceptions import MuxlyConfigError
from muxly_provider.runtime.loading import connector_context, decrypted_row

QUERY_CONNECTOR_TYPES = frozenset({"database", "bigquery"})
"""Connector types that run a query (a string ``run_condition`` or its ``query``)."""

DEFAULT_MESSAGES = {
    "success": "Muxly job ${job_name} (${job_id}) succeeded at ${completion_time}.",
    "failure": "Muxly job ${job_name} (${job_id}) failed at ${completion_time}: ${error_message}",
}


def run_condition_holds(
    job_id: str, condition: Any, default_connector_id: str, engine: Engine | None
) -> bool:
    """Whether a job's ``run_condition`` lets this run go."""
    from muxly_provider.connectors.registry import get_connector_class
    from muxly_provider.routing import compile_condition

    if isinstance(condition, str):
        spec: Mapping[str, Any] = {"query": condition}
    elif isinstance(condition, Mapping):
        spec = condition
    else:
        raise MuxlyConfigError(
            "scheduler_jobs", job_id, "action_params.run_condition", "a query or an object"
        )
    data_spec = dict(spec.get("data_spec") or {})
    if spec.get("query"):
        data_spec["query"] = spec["query"]
    context = connector_context(str(spec.get("connector_id") or default_connector_id), engine)
    if "query" in data_spec and context.connector_type not in QUERY_CONNECTOR_TYPES:
        # Another connector would ignore the query and read its first record: the condition would hold by chance.
        raise MuxlyConfigError(
            "scheduler_jobs",
            job_id,
            "action_params.run_condition",
            f"an object with 'data_spec' (and 'condition') for a {context.connector_type!r} connector; a query "
            f"needs a connector of type {' or '.join(sorted(QUERY_CONNECTOR_TYPES))}",
        )
    connector = get_connector_class(context.connector_type)(context, batch_size=1)
    try:
        first = next((batch[0] for batch in connector.fetch(data_spec) if batch), None)
    finally:
        connector.close()
    if first is None:
        return False
    if spec.get("condition"):
        return bool(compile_condition(str(spec["condition"]))(first))
    return bool(next(iter(first.values()), None))


def _targets(notifications: Mapping[str, Any], outcome: str) -> list[tuple[str, str | None]]:
    targets: list[tuple[str, str | None]] = []
    for item in notifications.get(f"on_{outcome}") or []:
        if isinstance(item, str):
            targets.append((item, None))
        elif isinstance(item, Mapping):
            targets.append((str(item["destination_id"]), item.get("message_template")))
    return targets


def _error_of(engine: Engine, dag_id: str, run_id: str) -> str:
    from sqlalchemy import text

    from muxly_provider.executions.recorder import execution_id

    with engine.connect() as conn:
        raw = conn.execute(
            text("SELECT result FROM job_executions WHERE id = :id"), {"id": execution_id(dag_id, run_id)}
        ).scalar()
    try:
        return str(json.loads(raw or "{}").get("error") or "the run failed")
    except ValueError:
        return "the run failed"


def send_notifications(
    job_id: str,
    outcome: str,
    run: RunInfo,
    engine: Engine,
    *,
    job_name: str,
    notifications: Mapping[str, Any],
) -> list[str]:
    """Send the run's ``on_success`` or ``on_failure`` notifications; return where they went."""
    from muxly_provider.config.validation import validate_row
    from muxly_provider.db.snapshot import load_snapshot
    from muxly_provider.destinations.registry import get_destination_class
    from muxly_provider.templating import Shorthands, render

    targets = _targets(notifications, outcome)
    if not targets:
        return []
    destinations = load_snapshot(engine, tables=("destinations",)).by_id("destinations")
    variables = {
        "job_name": job_name,
        "job_id": job_id,
        "completion_time": datetime.now(UTC).isoformat(timespec="seconds"),
        "error_message": _error_of(engine, run.dag_id, run.run_id) if outcome == "failure" else "",
    }
    shorthands = Shorthands(variables=frozenset(variables))
    sent: list[str] = []
    for destination_id, template in targets:
        row = destinations.get(destination_id)
        if row is None:
            raise MuxlyConfigError("destinations", destination_id, "id", "an existing destination")
        validate_row("destinations", row)
        parsed = decrypted_row("destinations", row)
        context = DestinationContext(
            id=destination_id,
            name=str(parsed["name"]),
            destination_type=str(parsed["destination_type"]),
            config=parsed.get("config") or {},
        )
        message = render(
            template or DEFAULT_MESSAGES[outcome],
            variables,
            field=f"action_params.notifications.on_{outcome}.message_template",
            shorthands=shorthands,
        )
        record = {
            **variables,
            "dag_id": run.dag_id,
            "run_id": run.run_id,
            "status": "success" if outcome == "success" else "failed",
            "message": message,
        }
        destination = get_destination_class(context.destination_type)(context, run)
        try:
            destination.write_batch([record])
            sent.extend(destination.commit())
        except BaseException:
            destination.abort()
            raise
    return sent
