"""Load one job's configuration for a run: validated, secrets decrypted, routes compiled into specs.

Connector and destination rows are decrypted first and then validated, so validators see real URLs; a secret
that does not decrypt fails the run with a :class:`~muxly_provider.exceptions.MuxlySecretError` naming the table,
row and field. :attr:`JobRuntime.secrets` holds every secret value plus the parts of secret URLs (user,
password, query values) for the task log's masker.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Engine

from muxly_provider.connectors.base import ConnectorContext
from muxly_provider.crypto import decrypt_row_secrets, secret_values
from muxly_provider.db.snapshot import ConfigSnapshot, Row, load_snapshot
from muxly_provider.destinations.base import DestinationContext
from muxly_provider.exceptions import MuxlyConfigError
from muxly_provider.routing.route_specs import ErrorHandlingSpec, RouteSpec, RuleSpec, TransformationSpec


@dataclass(frozen=True)
class JobRuntime:
    """What a run of one job needs."""

    job_id: str
    name: str
    action_type: str
    action_params: Mapping[str, Any]
    connector: ConnectorContext
    routes: tuple[RouteSpec, ...] = ()
    destinations: Mapping[str, DestinationContext] = field(default_factory=dict)
    disabled_destinations: frozenset[str] = frozenset()
    export_destination_ids: tuple[str, ...] = ()
    secrets: tuple[str, ...] = ()


def _json(value: Any) -> Any:
    if isinstance(value, str):
        return json.loads(value) if value.strip() else None
    return value


def decrypted_row(table: str, row: Row) -> dict[str, Any]:
    """The row with JSON columns parsed and secrets decrypted."""
    parsed = dict(row)
    for column in ("auth_settings", "connection_settings", "config", "action_params", "error_handling"):
        if column in parsed:
            try:
                parsed[column] = _json(parsed[column])
            except ValueError as exc:
                raise MuxlyConfigError(table, str(row.get("id")), column, f"valid JSON ({exc})") from exc
    return decrypt_row_secrets(table, parsed)


def _error_handling(route: Row) -> ErrorHandlingSpec:
    from muxly_provider.config.validation import validate_row

    spec = validate_row("routes", route)
    handling: Any = getattr(spec, "error_handling", None)
    if handling is None:
        return ErrorHandlingSpec()
    return ErrorHandlingSpec(
        mode=handling.mode,
        default_destination_id=handling.default_destination_id,
        dead_letter_destination_id=handling.dead_letter_destination_id,
        max_failed_records=handling.max_failed_records,
    )


def _route_specs(snapshot: ConfigSnapshot, route_rows: list[Row]) -> tuple[RouteSpec, ...]:
    """Specs of ``route_rows``, validating only the rules and steps those routes use."""
    from muxly_provider.config.validation import validate_row

    rules = snapshot.by_id("routing_rules")
    steps_of: dict[str, list[Row]] = {}
    for step in snapshot.rows("rule_transformations"):
        steps_of.setdefault(step["rule_id"], []).append(step)
    dests_of: dict[str, list[str]] = {}
    for link in snapshot.rows("rule_destinations"):
        dests_of.setdefault(link["rule_id"], []).append(str(link["destination_id"]))
    links_of: dict[str, list[Row]] = {}
    for link in snapshot.rows("route_rules"):
        links_of.setdefault(link["route_id"], []).append(link)

    def transformations(rule_id: str) -> tuple[TransformationSpec, ...]:
        specs = []
        for step in steps_of.get(rule_id, []):
            validate_row("rule_transformations", step)
            specs.append(
                TransformationSpec(
                    id=str(step["id"]),
                    transformation_type=str(step["transformation_type"]),
                    config=_json(step["config"]) or {},
                    sequence_order=int(step["sequence_order"]),
                )
            )
        return tuple(specs)

    specs = []
    for route in route_rows:
        rule_specs = []
        for link in links_of.get(route["id"], []):
            rule = rules.get(link["rule_id"])
            if rule is None or not rule["enabled"]:
                continue
            validated = validate_row("routing_rules", rule)
            rule_specs.append(
                RuleSpec(
                    id=str(rule["id"]),
                    name=str(rule["name"]),
                    condition=validated.condition,
                    destination_ids=tuple(sorted(dests_of.get(rule["id"], []))),
                    transformations=transformations(str(rule["id"])),
                    priority=int(rule["priority"]),
                    sequence_order=int(link["sequence_order"]),
                )
            )
        specs.append(
            RouteSpec(
                id=str(route["id"]),
                name=str(route["name"]),
                rules=tuple(rule_specs),
                error_handling=_error_handling(route),
            )
        )
    return tuple(specs)


def _with_connector_inputs(action: str, params: Mapping[str, Any]) -> dict[str, Any]:
    """``action_params`` whose ``data_spec`` also carries what the connector needs besides the data spec.

    The ``query`` action's ``query`` and ``parameters``, the job's ``run_params``, and ``variables``: the date
    variables as ``${NAME}`` placeholders that the operator resolves with the rest of ``action_params``, so
    that a connector can resolve them in its own settings (``base_url``, ``body_template``, ...).
    """
    from muxly_provider.runtime.variables import date_variables

    spec = dict(params.get("data_spec") or {})
    if action == "query":
        for key in ("query", "parameters"):
            if params.get(key) is not None:
                spec.setdefault(key, params[key])
    if params.get("run_params"):
        spec.setdefault("run_params", params["run_params"])
    spec.setdefault(
        "variables", {name: f"${{{name}}}" for name in date_variables(datetime(2000, 1, 1, tzinfo=UTC))}
    )
    return {**params, "data_spec": spec}


def check_connections(table: str, row: Mapping[str, Any]) -> None:
    """Refuse a row naming an Airflow connection ``[muxly] allowed_conn_ids`` does not allow (a row written
    straight into the tables, or stored before the setting changed).

    :raises MuxlyConfigError: naming the table, the row and the ``conn_id`` field
    """
    from muxly_provider.security.connections import conn_id_problems

    for problem in conn_id_problems(table, row):
        raise MuxlyConfigError(table, str(row.get("id")), problem.field, problem.reason)


def _connector_context(connector: Mapping[str, Any]) -> ConnectorContext:
    """The runnable form of a decrypted connector row."""
    return ConnectorContext(
        id=str(connector["id"]),
        name=str(connector["name"]),
        connector_type=str(connector["connector_type"]),
        auth=connector.get("auth_settings") or {},
        settings=connector.get("connection_settings") or {},
    )


def load_job_runtime(job_id: str, engine: Engine | None = None) -> JobRuntime:
    """Load, validate and decrypt everything a run of ``job_id`` needs.

    :raises MuxlyConfigError: naming the table, row, field and what was expected
    """
    from muxly_provider.config.validation import validate_row

    snapshot = load_snapshot(engine)
    job = next((r for r in snapshot.rows("scheduler_jobs") if r["id"] == job_id), None)
    if job is None:
        raise MuxlyConfigError("scheduler_jobs", job_id, "id", "an existing job row")
    validate_row("scheduler_jobs", job)
    connector_row = snapshot.by_id("connectors").get(job["connector_id"])
    if connector_row is None:
        raise MuxlyConfigError("scheduler_jobs", job_id, "connector_id", "an existing connector")
    connector = decrypted_row("connectors", connector_row)
    validate_row("connectors", connector)  # validators see the real URLs, not their ciphertext
    check_connections("connectors", connector)
    action = str(job["action_type"])
    params = _with_connector_inputs(action, decrypted_row("scheduler_jobs", job)["action_params"] or {})
    routes = snapshot.by_id("routes")
    export_ids: tuple[str, ...] = ()
    if action == "export":
        route_rows: list[Row] = []
        export_ids = tuple(str(d) for d in params.get("destination_ids") or [])
    elif action == "pipeline":
        route_rows = [routes[params["route_id"]]] if params.get("route_id") in routes else []
        if not route_rows:
            raise MuxlyConfigError("scheduler_jobs", job_id, "action_params.route_id", "an existing route")
    else:
        route_rows = [r for r in routes.values() if r["connector_id"] == connector["id"] and r["enabled"]]
    route_specs = _route_specs(snapshot, route_rows)
    wanted = set(export_ids)
    for route in route_specs:
        for rule in route.rules:
            wanted.update(rule.destination_ids)
        for extra in (
            route.error_handling.default_destination_id,
            route.error_handling.dead_letter_destination_id,
        ):
            if extra:
                wanted.add(extra)
    destinations: dict[str, DestinationContext] = {}
    disabled: set[str] = set()
    secrets: list[str] = secret_values("connectors", connector)
    destination_rows = snapshot.by_id("destinations")
    for dest_id in sorted(wanted):
        row = destination_rows.get(dest_id)
        if row is None:
            raise MuxlyConfigError("destinations", dest_id, "id", "an existing destination")
        if not row["enabled"]:
            disabled.add(dest_id)
            continue
        dest = decrypted_row("destinations", row)
        validate_row("destinations", dest)
        check_connections("destinations", dest)
        secrets.extend(secret_values("destinations", dest))
        destinations[dest_id] = DestinationContext(
            id=dest_id,
            name=str(dest["name"]),
            destination_type=str(dest["destination_type"]),
            config=dest.get("config") or {},
        )
    return JobRuntime(
        job_id=job_id,
        name=str(job["name"]),
        action_type=action,
        action_params=params,
        connector=_connector_context(connector),
        routes=route_specs,
        destinations=destinations,
        disabled_destinations=frozenset(disabled),
        export_destination_ids=export_ids,
        secrets=tuple(secrets),
    )


def mask_in_task_logs(values: Iterable[str]) -> None:
    """Register secret values (and the URL parts libraries quote) with Airflow's task-log masker."""
    try:
        from airflow.sdk.log import mask_secret
    except ImportError:  # pragma: no cover - without the task SDK nothing logs through Airflow
        return
    for value in values:
        if value:
            mask_secret(value)


def connector_context(connector_id: str, engine: Engine | None = None) -> ConnectorContext:
    """A connector row ready to run (validated, secrets decrypted), by id.

    :raises MuxlyConfigError: when it does not exist or is not valid
    """
    from muxly_provider.config.validation import validate_row

    snapshot = load_snapshot(engine, tables=("connectors",))
    row = snapshot.by_id("connectors").get(connector_id)
    if row is None:
        raise MuxlyConfigError("connectors", connector_id, "id", "an existing connector")
    connector = decrypted_row("connectors", row)
    validate_row("connectors", connector)
    check_connections("connectors", connector)
    # A join lookup's or a run condition's connector: its secrets are masked like the job's own.
    mask_in_task_logs(secret_values("connectors", connector))
    return _connector_context(connector)


def lookup_loader(engine: Engine | None = None) -> Any:
    """The ``lookup_loader`` of a run's router: a join's ``join_connector_id`` fetched once, all its records.

    The router calls it once per (connector, data spec) while it is built, so a run reads each lookup once.
    """
    from muxly_provider.connectors.registry import get_connector_class

    def load(connector_id: str, data_spec: Mapping[str, Any]) -> list[dict[str, Any]]:
        context = connector_context(connector_id, engine)
        connector = get_connector_class(context.connector_type)(context)
        try:
            return [record for batch in connector.fetch(dict(data_spec)) for record in batch]
        finally:
            connector.close()

    return load
