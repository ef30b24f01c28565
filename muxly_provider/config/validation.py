"""The one way Muxly validates a row of a configuration table: :func:`validate_row`.

Rows are plain dicts as read from the database (JSON columns as ``TEXT``) or from a YAML file (JSON columns as
nested structures); both are accepted. ``created_at`` and ``updated_at`` are ignored. Errors name the table, the
row id (``route_id/rule_id`` for join tables), the field (column plus dotted JSON path) and what was expected.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any, Literal, cast, overload

from pydantic import BaseModel, ValidationError

from muxly_provider.config.auth import AUTH_MODELS
from muxly_provider.config.connectors import (
    CONNECTION_SETTINGS_MODELS,
    PLUGIN_PREFIX,
    ConnectorRowSpec,
    connection_settings_model,
)
from muxly_provider.config.destinations import DESTINATION_CONFIG_MODELS, DestinationRowSpec
from muxly_provider.config.errors import config_errors
from muxly_provider.config.jobs import ActionParamsConfig, SchedulerJobRowSpec, check_schedule
from muxly_provider.config.rules import (
    ErrorHandlingConfig,
    RouteRowSpec,
    RouteRuleRowSpec,
    RoutingRuleRowSpec,
    RuleDestinationRowSpec,
    RuleTransformationRowSpec,
    condition_expression,
)
from muxly_provider.config.transformations import TRANSFORMATION_MODELS
from muxly_provider.config.webhooks import SettingRowSpec, WebhookTriggerRowSpec
from muxly_provider.exceptions import MuxlyConditionError, MuxlyConfigError

RowSpec = (
    ConnectorRowSpec
    | DestinationRowSpec
    | RoutingRuleRowSpec
    | RuleTransformationRowSpec
    | RouteRowSpec
    | RouteRuleRowSpec
    | RuleDestinationRowSpec
    | SchedulerJobRowSpec
    | WebhookTriggerRowSpec
    | SettingRowSpec
)
"""A validated row of any configuration table."""

JSON_COLUMNS: Mapping[str, tuple[str, ...]] = {
    "connectors": ("auth_settings", "connection_settings"),
    "destinations": ("config",),
    "rule_transformations": ("config",),
    "routes": ("error_handling",),
    "scheduler_jobs": ("action_params",),
}
"""The columns of each table that hold JSON text (``routing_rules.condition`` is handled on its own)."""

PRIMARY_KEYS: Mapping[str, tuple[str, ...]] = {
    "route_rules": ("route_id", "rule_id"),
    "rule_destinations": ("rule_id", "destination_id"),
    "settings": ("key",),
}
"""Primary key columns of the tables whose key is not ``id``."""

IGNORED_COLUMNS = frozenset({"created_at", "updated_at"})
"""Columns the database maintains; they are ignored when validating or importing."""


def primary_key(table: str) -> tuple[str, ...]:
    """The primary key columns of ``table``."""
    return PRIMARY_KEYS.get(table, ("id",))


def row_id_of(table: str, row: Mapping[str, Any]) -> str | None:
    """The id of ``row`` used in messages (``a/b`` for composite keys, ``None`` when missing)."""
    values = [row.get(column) for column in primary_key(table)]
    if all(value is None for value in values):
        return None
    return "/".join("" if value is None else str(value) for value in values)


class _RowCheck:
    """Collects the errors of one row."""

    def __init__(self, table: str, row: Mapping[str, Any]) -> None:
        self.table = table
        self.row_id = row_id_of(table, row)
        self.data = {key: value for key, value in row.items() if key not in IGNORED_COLUMNS}
        self.errors: list[MuxlyConfigError] = []
        self.failed_columns: set[str] = set()

    def error(self, field: str, expected: str) -> None:
        self.errors.append(MuxlyConfigError(self.table, self.row_id, field, expected))
        self.failed_columns.add(field.split(".", 1)[0].split("[", 1)[0])

    def json(self, column: str) -> Any:
        """The parsed value of a JSON column (``{}`` when absent or NULL)."""
        value = self.data.get(column)
        if isinstance(value, bytes):
            value = value.decode()
        if isinstance(value, str):
            if not value.strip():
                return {}
            try:
                value = json.loads(value)
            except ValueError as exc:
                self.error(column, f"valid JSON ({exc})")
                return None
        if value is None:
            return {}
        if not isinstance(value, dict):
            self.error(column, f"a JSON object (got {type(value).__name__})")
            return None
        return value

    def model(self, model: type[BaseModel], data: Any, column: str) -> BaseModel | None:
        try:
            return model.model_validate(data)
        except ValidationError as exc:
            self.errors.extend(
                config_errors(
                    exc, table=self.table, row_id=self.row_id, prefix=column, data=data, model=model
                )
            )
            self.failed_columns.add(column)
            return None

    def typed(self, column: str, type_column: str, models: Mapping[str, type[BaseModel]]) -> BaseModel | None:
        """Validate a JSON column with the model its row's ``type_column`` selects."""
        data = self.json(column)
        kind = self.data.get(type_column)
        model = models.get(kind) if isinstance(kind, str) else None
        if model is None:
            if isinstance(kind, str) and kind:
                self.error(type_column, f"one of {', '.join(sorted(models))} (got {kind!r})")
            else:
                self.error(type_column, f"one of {', '.join(sorted(models))}")
            return None
        return None if data is None else self.model(model, data, column)

    def finish(self, spec_model: type[BaseModel], values: Mapping[str, Any]) -> BaseModel | None:
        """Validate the plain columns (JSON columns already validated are passed as models)."""
        data = {**self.data, **values}
        try:
            spec = spec_model.model_validate(data)
        except ValidationError as exc:
            self.errors.extend(
                config_errors(
                    exc,
                    table=self.table,
                    row_id=self.row_id,
                    prefix="",
                    data=data,
                    model=spec_model,
                    skip_fields=frozenset(self.failed_columns | {k for k, v in values.items() if v is None}),
                )
            )
            return None
        return None if self.errors else spec


def _connectors(check: _RowCheck) -> BaseModel | None:
    auth_data = check.json("auth_settings")
    auth = None
    if auth_data is not None:
        auth_type = auth_data.get("auth_type", "none")
        model = AUTH_MODELS.get(auth_type) if isinstance(auth_type, str) else None
        if model is None:
            check.error("auth_settings.auth_type", f"one of {', '.join(AUTH_MODELS)} (got {auth_type!r})")
        else:
            auth = check.model(model, {"auth_type": auth_type, **auth_data}, "auth_settings")
    settings_data = check.json("connection_settings")
    kind = check.data.get("connector_type")
    settings_model = connection_settings_model(kind) if isinstance(kind, str) else None
    settings = None
    if settings_model is None:
        names = ", ".join([*CONNECTION_SETTINGS_MODELS, f"{PLUGIN_PREFIX}<name>"])
        check.error("connector_type", f"one of {names} (got {kind!r})")
    elif settings_data is not None:
        settings = check.model(settings_model, settings_data, "connection_settings")
    return check.finish(ConnectorRowSpec, {"auth_settings": auth, "connection_settings": settings})


def _destinations(check: _RowCheck) -> BaseModel | None:
    config = check.typed("config", "destination_type", DESTINATION_CONFIG_MODELS)
    return check.finish(DestinationRowSpec, {"config": config})


def _rule_transformations(check: _RowCheck) -> BaseModel | None:
    config = check.typed("config", "transformation_type", TRANSFORMATION_MODELS)
    spec = check.finish(RuleTransformationRowSpec, {"config": config})
    if spec is not None:
        _compile_step(check)
    return None if check.errors else spec


def _compile_step(check: _RowCheck) -> None:
    """Compile the step as a run would (field paths, templates, formulas): refused now, not at run time."""
    from muxly_provider.routing import TransformationSpec, compile_transformations

    step = TransformationSpec(
        id=str(check.row_id),
        transformation_type=str(check.data.get("transformation_type")),
        config=check.json("config") or {},
    )
    try:
        compile_transformations([step], lookup_loader=lambda _connector_id, _data_spec: [])
    except MuxlyConfigError as exc:
        check.error(exc.field, exc.expected)


def _check_expression(check: _RowCheck, expression: str) -> None:
    try:
        from muxly_provider.routing import compile_condition  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return  # the routing package predates the condition compiler: the parser checks at run time
    try:
        compile_condition(expression)
    except MuxlyConditionError as exc:
        check.error("condition", f"a valid condition: {exc.message} at position {exc.position}")


def _routing_rules(check: _RowCheck) -> BaseModel | None:
    expression: str | None = None
    try:
        expression = condition_expression(check.data.get("condition"))
    except ValueError as exc:
        check.error("condition", str(exc))
    if expression is not None:
        _check_expression(check, expression)
    return check.finish(RoutingRuleRowSpec, {"condition": expression})


def _routes(check: _RowCheck) -> BaseModel | None:
    data = check.json("error_handling")
    handling = None if data is None else check.model(ErrorHandlingConfig, data, "error_handling")
    return check.finish(RouteRowSpec, {"error_handling": handling})


def _scheduler_jobs(check: _RowCheck) -> BaseModel | None:
    data = check.json("action_params")
    params = None if data is None else check.model(ActionParamsConfig, data, "action_params")
    spec = check.finish(SchedulerJobRowSpec, {"action_params": params})
    if not isinstance(spec, SchedulerJobRowSpec):
        return None
    if spec.job_type == "cron" or (spec.schedule or "").strip():
        try:  # the schedule validator the DAG factory uses at parse (same rules, same message)
            check_schedule(spec.schedule)
        except ValueError as exc:
            check.error("schedule", str(exc))
    action = spec.action_params
    if spec.action_type == "pipeline" and not action.route_id:
        check.error("action_params.route_id", "the id of the route a pipeline job runs")
    if spec.action_type == "export" and not action.destination_ids:
        check.error("action_params.destination_ids", "a non-empty list of destination ids for an export job")
    if action.depends_on == spec.id:
        check.error("action_params.depends_on", "the id of another job (a job cannot depend on itself)")
    _check_run_condition(check, action.run_condition)
    wait = action.wait_for_webhook
    if wait is not None and wait.condition is not None and wait.condition.strip():
        from muxly_provider.routing import compile_condition

        try:
            compile_condition(wait.condition)
        except MuxlyConditionError as exc:
            check.error(
                "action_params.wait_for_webhook.condition",
                f"a valid condition: {exc.message} at position {exc.position}",
            )
    return None if check.errors else spec


_RUN_CONDITION_KEYS = frozenset({"connector_id", "data_spec", "query", "condition"})


def _check_run_condition(check: _RowCheck, condition: Any) -> None:
    """``run_condition``: a non-empty query, or an object of the documented keys whose condition compiles."""
    field = "action_params.run_condition"
    if condition is None:
        return
    if isinstance(condition, str):
        if not condition.strip():
            check.error(field, "a query (non-empty) or an object")
        return
    unknown = sorted(set(condition) - _RUN_CONDITION_KEYS)
    if unknown:
        check.error(f"{field}.{unknown[0]}", "one of " + ", ".join(sorted(_RUN_CONDITION_KEYS)))
    if not isinstance(condition.get("data_spec", {}), dict):
        check.error(f"{field}.data_spec", "an object")
    for key in ("connector_id", "query", "condition"):
        value = condition.get(key)
        if value is not None and (not isinstance(value, str) or not value.strip()):
            check.error(f"{field}.{key}", "a non-empty string")
    expression = condition.get("condition")
    if isinstance(expression, str) and expression.strip():
        from muxly_provider.routing import compile_condition

        try:
            compile_condition(expression)
        except MuxlyConditionError as exc:
            check.error(f"{field}.condition", f"a valid condition: {exc.message} at position {exc.position}")


def _plain(spec_model: type[BaseModel]) -> Callable[[_RowCheck], BaseModel | None]:
    def validate(check: _RowCheck) -> BaseModel | None:
        return check.finish(spec_model, {})

    return validate


_VALIDATORS: Mapping[str, Callable[[_RowCheck], BaseModel | None]] = {
    "connectors": _connectors,
    "destinations": _destinations,
    "routing_rules": _routing_rules,
    "rule_transformations": _rule_transformations,
    "rule_destinations": _plain(RuleDestinationRowSpec),
    "routes": _routes,
    "route_rules": _plain(RouteRuleRowSpec),
    "scheduler_jobs": _scheduler_jobs,
    "webhook_triggers": _plain(WebhookTriggerRowSpec),
    "settings": _plain(SettingRowSpec),
}

VALIDATED_TABLES: tuple[str, ...] = tuple(_VALIDATORS)
"""The tables :func:`validate_row` knows."""


def row_errors(table: str, row: Mapping[str, Any]) -> tuple[RowSpec | None, list[MuxlyConfigError]]:
    """Validate ``row`` of ``table`` and return the spec (``None`` when invalid) with every error found.

    :param table: a configuration table (see :data:`VALIDATED_TABLES`)
    :param row: the row as a dict; JSON columns as text or already parsed
    """
    validator = _VALIDATORS.get(table)
    if validator is None:
        error = MuxlyConfigError(table, row_id_of(table, row), "(table)", f"one of {', '.join(_VALIDATORS)}")
        return None, [error]
    check = _RowCheck(table, row)
    spec = validator(check)
    if check.errors:
        return None, check.errors
    return cast("RowSpec | None", spec), []


@overload
def validate_row(table: Literal["connectors"], row: Mapping[str, Any]) -> ConnectorRowSpec: ...
@overload
def validate_row(table: Literal["destinations"], row: Mapping[str, Any]) -> DestinationRowSpec: ...
@overload
def validate_row(table: Literal["routing_rules"], row: Mapping[str, Any]) -> RoutingRuleRowSpec: ...
@overload
def validate_row(
    table: Literal["rule_transformations"], row: Mapping[str, Any]
) -> RuleTransformationRowSpec: ...
@overload
def validate_row(table: Literal["routes"], row: Mapping[str, Any]) -> RouteRowSpec: ...
@overload
def validate_row(table: Literal["scheduler_jobs"], row: Mapping[str, Any]) -> SchedulerJobRowSpec: ...
@overload
def validate_row(table: Literal["webhook_triggers"], row: Mapping[str, Any]) -> WebhookTriggerRowSpec: ...
@overload
def validate_row(table: str, row: Mapping[str, Any]) -> RowSpec: ...
def validate_row(table: str, row: Mapping[str, Any]) -> RowSpec:
    """Validate one row of a configuration table and return its spec.

    :param table: a configuration table (see :data:`VALIDATED_TABLES`)
    :param row: the row as a dict; JSON columns as text (from the database) or already parsed (from YAML)
    :raises MuxlyConfigError: the first error, naming the table, the row id, the field and what was expected
        (use :func:`row_errors` to get all of them)
    """
    spec, errors = row_errors(table, row)
    if errors:
        raise errors[0]
    assert spec is not None
    return spec
