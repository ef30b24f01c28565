"""Tests of :func:`muxly_provider.config.validation.validate_row`: valid rows and precise errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from muxly_provider.config.connectors import ApiSettingsConfig, CursorPaginationConfig
from muxly_provider.config.rules import condition_expression
from muxly_provider.config.validation import row_errors, validate_row
from muxly_provider.exceptions import MuxlyConfigError

CONNECTOR: dict[str, Any] = {
    "id": "shop",
    "name": "Shop API",
    "connector_type": "api",
    "enabled": True,
    "auth_settings": json.dumps({"auth_type": "bearer", "params": {"token": "tok-123"}}),
    "connection_settings": json.dumps(
        {"base_url": "https://shop.example/{tenant}/orders", "method": "get", "metrics_path": "data.items"}
    ),
}

VALID_ROWS: list[tuple[str, dict[str, Any]]] = [
    ("connectors", CONNECTOR),
    (
        "connectors",
        {
            "id": "db",
            "name": "DB",
            "connector_type": "database",
            "auth_settings": {"auth_type": "airflow_connection", "params": {"conn_id": "pg"}},
            "connection_settings": {"conn_id": "pg"},
        },
    ),
    (
        "connectors",
        {
            "id": "gh",
            "name": "GH",
            "connector_type": "api",
            "auth_settings": {
                "auth_type": "oauth",
                "params": {"client_id": "a", "client_secret": "b", "auth_code": "c", "token_url": "http://t"},
            },
            "connection_settings": {
                "base_url": "http://x",
                "pagination": {"type": "link_header"},
                "rate_limit": {"max_requests": 10, "period_seconds": 1, "auto_adjust": True},
                "retry": {"max_attempts": 5, "retryable_errors": ["RATE_LIMIT", "SERVER_ERROR"]},
            },
        },
    ),
    (
        "connectors",
        {
            "id": "f",
            "name": "F",
            "connector_type": "file",
            "auth_settings": {},
            "connection_settings": {"glob": "in/*.csv", "format": "csv"},
        },
    ),
    (
        "connectors",
        {
            "id": "bq",
            "name": "BQ",
            "connector_type": "bigquery",
            "auth_settings": {"auth_type": "application_default"},
            "connection_settings": {"project_id": "p", "api_base_url": "http://127.0.0.1:9"},
        },
    ),
    (
        "connectors",
        {
            "id": "ga",
            "name": "GA",
            "connector_type": "ga4",
            "auth_settings": {
                "auth_type": "service_account",
                "params": {"service_account_json": {"type": "service_account"}},
            },
            "connection_settings": {"property_id": "123"},
        },
    ),
    (
        "connectors",
        {
            "id": "hs",
            "name": "HS",
            "connector_type": "hubspot",
            "auth_settings": {
                "auth_type": "api_key",
                "params": {"api_key": "k", "location": "query", "param_name": "hapikey"},
            },
            "connection_settings": {"properties": {"contacts": ["email"]}},
        },
    ),
    (
        "connectors",
        {
            "id": "pl",
            "name": "PL",
            "connector_type": "plugin:acme",
            "auth_settings": "{}",
            "connection_settings": '{"anything": [1, 2]}',
        },
    ),
    (
        "destinations",
        {
            "id": "out",
            "name": "Out",
            "destination_type": "file",
            "config": '{"output_dir": "out", "file_format": "csv", "rotation": "daily", "batch_size": 10}',
        },
    ),
    (
        "destinations",
        {
            "id": "db",
            "name": "DB",
            "destination_type": "database",
            "config": {"connection_string": "sqlite://", "table": "t", "schema": "s", "upsert_key": ["id"]},
        },
    ),
    (
        "destinations",
        {
            "id": "wh",
            "name": "WH",
            "destination_type": "webhook",
            "config": {"url": "http://h", "method": "put"},
        },
    ),
    (
        "destinations",
        {
            "id": "em",
            "name": "EM",
            "destination_type": "email",
            "config": {
                "smtp_host": "localhost",
                "smtp_password": "pw",
                "from_email": "a@x",
                "to_emails": ["b@x"],
            },
        },
    ),
    (
        "destinations",
        {
            "id": "sl",
            "name": "SL",
            "destination_type": "slack",
            "config": {"webhook_url": "https://hooks.slack.com/x"},
        },
    ),
    (
        "destinations",
        {
            "id": "s3",
            "name": "S3",
            "destination_type": "s3",
            "config": {"bucket": "b", "credentials": {"access_key_id": "a", "secret_access_key": "s"}},
        },
    ),
    (
        "destinations",
        {
            "id": "pr",
            "name": "PR",
            "destination_type": "prometheus",
            "config": {"metrics": [{"name": "orders_total", "type": "counter"}]},
        },
    ),
    ("routing_rules", {"id": "big", "name": "Big", "priority": 10, "condition": "revenue > 1000"}),
    ("routing_rules", {"id": "us", "name": "US", "condition": json.dumps("country == 'US'")}),
    ("routing_rules", {"id": "any", "name": "Any", "condition": None}),
    ("routing_rules", {"id": "obj", "name": "Obj", "condition": '{"expression": "EXISTS a"}'}),
    (
        "rule_transformations",
        {
            "id": "t1",
            "rule_id": "big",
            "transformation_type": "rename_field",
            "config": '{"from": "a", "to": "b"}',
        },
    ),
    (
        "rule_transformations",
        {
            "id": "t2",
            "rule_id": "big",
            "transformation_type": "set_field",
            "config": {"field": "a", "value": [1]},
        },
    ),
    (
        "rule_transformations",
        {"id": "t3", "rule_id": "big", "transformation_type": "remove_field", "config": {"field": "a"}},
    ),
    (
        "rule_transformations",
        {
            "id": "t4",
            "rule_id": "big",
            "transformation_type": "filter",
            "config": {"field": "a", "operator": "contains", "value": "x"},
        },
    ),
    (
        "rule_transformations",
        {
            "id": "t5",
            "rule_id": "big",
            "transformation_type": "formula",
            "config": {"output_field": "d", "formula": "price * discount_rate"},
        },
    ),
    (
        "rule_transformations",
        {
            "id": "t6",
            "rule_id": "big",
            "transformation_type": "format_string",
            "config": {"template": "Order {{id}}", "output_field": "s"},
        },
    ),
    (
        "rule_transformations",
        {"id": "t7", "rule_id": "big", "transformation_type": "extract", "config": {"fields": ["a", "b.c"]}},
    ),
    (
        "rule_transformations",
        {
            "id": "t8",
            "rule_id": "big",
            "transformation_type": "array_flatten",
            "config": {"array_field": "items", "flatten_fields": ["sku"]},
        },
    ),
    (
        "rule_transformations",
        {
            "id": "t9",
            "rule_id": "big",
            "transformation_type": "join",
            "config": {"lookup": [{"id": 1}], "left_key": "a", "right_key": "id"},
        },
    ),
    (
        "rule_transformations",
        {
            "id": "t10",
            "rule_id": "big",
            "transformation_type": "aggregate",
            "config": {"group_by": ["c"], "aggregations": [{"function": "count", "field": "*", "as": "n"}]},
        },
    ),
    ("routes", {"id": "r", "name": "R", "connector_id": "shop", "error_handling": '{"mode": "continue"}'}),
    (
        "routes",
        {
            "id": "r2",
            "name": "R2",
            "connector_id": "shop",
            "error_handling": {"on_error": "dead_letter", "error_destination_id": "out"},
        },
    ),
    ("route_rules", {"route_id": "r", "rule_id": "big", "sequence_order": 1}),
    ("rule_destinations", {"rule_id": "big", "destination_id": "out"}),
    (
        "scheduler_jobs",
        {
            "id": "j",
            "name": "J",
            "job_type": "cron",
            "schedule": "*/5 * * * 1-5",
            "connector_id": "shop",
            "action_type": "sync",
            "action_params": '{"data_spec": {"query_params": {"day": "${DATE}"}}, "timezone": "Europe/Paris"}',
            "max_retries": 0,
            "backoff_strategy": "linear",
            "timeout_seconds": 60,
        },
    ),
    (
        "scheduler_jobs",
        {
            "id": "j2",
            "name": "J2",
            "job_type": "cron",
            "schedule": "@Daily",
            "connector_id": "shop",
            "action_type": "pipeline",
            "action_params": {"pipeline_id": "r"},
        },
    ),
    (
        "scheduler_jobs",
        {
            "id": "j3",
            "name": "J3",
            "job_type": "manual",
            "schedule": None,
            "connector_id": "shop",
            "action_type": "export",
            "action_params": {
                "destination_ids": ["out"],
                "notifications": {"on_failure": ["sl", {"destination_id": "em"}]},
            },
        },
    ),
    ("webhook_triggers", {"id": "w", "job_id": "j", "endpoint_path": "orders/created", "secret_key": "s"}),
    ("settings", {"key": "k", "value": "v"}),
]


@pytest.mark.parametrize(
    ("table", "row"), VALID_ROWS, ids=lambda v: v if isinstance(v, str) else v.get("id", "")
)
def test_valid_rows(table: str, row: dict[str, Any]) -> None:
    spec, errors = row_errors(table, row)
    assert errors == []
    assert spec is not None


def test_typed_specs() -> None:
    spec = validate_row("connectors", CONNECTOR)
    assert isinstance(spec.settings, ApiSettingsConfig)
    assert spec.settings.method == "GET"
    route = validate_row("routes", VALID_ROWS[30][1])
    assert route.error_handling.mode == "dead_letter"
    assert route.error_handling.dead_letter_destination_id == "out"
    job = validate_row("scheduler_jobs", VALID_ROWS[34][1])
    assert job.action_params.route_id == "r"
    rule = validate_row("routing_rules", {"id": "x", "name": "x", "condition": '{"expression": " a == 1 "}'})
    assert rule.condition == "a == 1"


def _with(row: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {**row, **changes}


BAD_ROWS: list[tuple[str, dict[str, Any], str, str]] = [
    ("connectors", _with(CONNECTOR, auth_settings="{not json"), "auth_settings", "valid JSON (Expecting"),
    ("connectors", _with(CONNECTOR, connector_type="ftp"), "connector_type", "got 'ftp'"),
    ("connectors", _with(CONNECTOR, name=""), "name", "a non-empty string"),
    (
        "connectors",
        _with(CONNECTOR, auth_settings={"auth_type": "kerberos"}),
        "auth_settings.auth_type",
        "one of none, bearer",
    ),
    (
        "connectors",
        _with(CONNECTOR, auth_settings={"auth_type": "bearer", "params": {}}),
        "auth_settings.params.token",
        "required",
    ),
    (
        "connectors",
        _with(
            CONNECTOR,
            auth_settings={"auth_type": "basic", "params": {"username": "u", "password": "p", "pwd": 1}},
        ),
        "auth_settings.params.pwd",
        "allowed: password, username",
    ),
    (
        "connectors",
        _with(
            CONNECTOR, auth_settings={"auth_type": "api_key", "params": {"api_key": "k", "location": "body"}}
        ),
        "auth_settings.params.location",
        "one of 'header' or 'query' (got 'body')",
    ),
    (
        "connectors",
        _with(
            CONNECTOR,
            auth_settings={"auth_type": "oauth", "params": {"client_id": "a", "client_secret": "b"}},
        ),
        "auth_settings.params",
        "'refresh_token' or an 'auth_code'",
    ),
    (
        "connectors",
        _with(CONNECTOR, connection_settings={"base_url": "x", "pagination": {"type": "pages"}}),
        "connection_settings.pagination.type",
        "one of 'none', 'page', 'offset', 'cursor', 'link_header' (got 'pages')",
    ),
    (
        "connectors",
        _with(CONNECTOR, connection_settings={"base_url": "x", "pagination": {"type": "cursor"}}),
        "connection_settings.pagination.cursor_path",
        "required",
    ),
    (
        "connectors",
        _with(CONNECTOR, connection_settings={"base_ulr": "x"}),
        "connection_settings.base_ulr",
        "allowed: base_url",
    ),
    (
        "connectors",
        _with(CONNECTOR, connection_settings={"base_url": "x", "method": "FETCH"}),
        "connection_settings.method",
        "got 'FETCH'",
    ),
    (
        "connectors",
        _with(CONNECTOR, connection_settings={"base_url": "x", "timeout_seconds": 0}),
        "connection_settings.timeout_seconds",
        "greater than 0",
    ),
    (
        "connectors",
        _with(CONNECTOR, connection_settings={"base_url": "x", "retry": {"retryable_status": ["x"]}}),
        "connection_settings.retry.retryable_status[0]",
        "a valid integer",
    ),
    ("connectors", _with(CONNECTOR, connection_settings="[1]"), "connection_settings", "a JSON object"),
    (
        "connectors",
        _with(CONNECTOR, connector_type="database", connection_settings={}),
        "connection_settings",
        "exactly one of 'conn_id' or 'connection_string'",
    ),
    ("connectors", _with(CONNECTOR, colour="red"), "colour", "no option named 'colour'"),
    (
        "destinations",
        {"id": "d", "name": "D", "destination_type": "file", "config": {"file_format": "xml"}},
        "config.file_format",
        "got 'xml'",
    ),
    (
        "destinations",
        {"id": "d", "name": "D", "destination_type": "file", "config": {"batch_size": 0}},
        "config.batch_size",
        "greater than 0",
    ),
    (
        "destinations",
        {"id": "d", "name": "D", "destination_type": "fax", "config": {}},
        "destination_type",
        "got 'fax'",
    ),
    (
        "destinations",
        {
            "id": "d",
            "name": "D",
            "destination_type": "email",
            "config": {"smtp_host": "h", "from_email": "a", "to_emails": []},
        },
        "config.to_emails",
        "at least 1",
    ),
    (
        "destinations",
        {
            "id": "d",
            "name": "D",
            "destination_type": "prometheus",
            "config": {"metrics": [{"name": "bad name"}]},
        },
        "config.metrics[0].name",
        "pattern",
    ),
    (
        "routing_rules",
        {"id": "x", "name": "n", "condition": '{"expr": "a"}'},
        "condition",
        "only the key 'expression'",
    ),
    ("routing_rules", {"id": "x", "name": "n", "priority": "high"}, "priority", "a valid integer"),
    (
        "rule_transformations",
        {"id": "t", "rule_id": "r", "transformation_type": "rename_field", "config": {"from": "a"}},
        "config.to",
        "required",
    ),
    (
        "rule_transformations",
        {"id": "t", "rule_id": "r", "transformation_type": "uppercase", "config": {}},
        "transformation_type",
        "got 'uppercase'",
    ),
    (
        "rule_transformations",
        {
            "id": "t",
            "rule_id": "r",
            "transformation_type": "filter",
            "config": {"field": "a", "operator": "~"},
        },
        "config.operator",
        "got '~'",
    ),
    (
        "rule_transformations",
        {
            "id": "t",
            "rule_id": "r",
            "transformation_type": "aggregate",
            "config": {"aggregations": [{"function": "median"}]},
        },
        "config.aggregations[0].function",
        "got 'median'",
    ),
    (
        "rule_transformations",
        {
            "id": "t",
            "rule_id": "r",
            "transformation_type": "join",
            "config": {"left_key": "a", "right_key": "b"},
        },
        "config",
        "exactly one of 'join_connector_id' or 'lookup'",
    ),
    (
        "routes",
        {"id": "r", "name": "R", "connector_id": "c", "error_handling": {"mode": "dead_letter"}},
        "error_handling",
        "'dead_letter_destination_id' when mode is 'dead_letter'",
    ),
    (
        "routes",
        {"id": "r", "name": "R", "connector_id": "c", "error_handling": {"mode": "ignore"}},
        "error_handling.mode",
        "got 'ignore'",
    ),
    (
        "routes",
        {"id": "r", "name": "R", "connector_id": "c", "error_handling": {"max_failed_records": -1}},
        "error_handling.max_failed_records",
        "greater than or equal to 0",
    ),
    (
        "routes",
        {"id": "r", "name": "R", "connector_id": "c", "error_handling": {"retries": 3}},
        "error_handling.retries",
        "no option named 'retries'",
    ),
    ("scheduler_jobs", _with(VALID_ROWS[33][1], schedule=None), "schedule", "a cron job needs a schedule"),
    ("scheduler_jobs", _with(VALID_ROWS[33][1], schedule="* * *"), "schedule", "five-field cron"),
    ("scheduler_jobs", _with(VALID_ROWS[33][1], schedule="@fortnightly"), "schedule", "a preset among"),
    ("scheduler_jobs", _with(VALID_ROWS[33][1], job_type="hourly"), "job_type", "got 'hourly'"),
    ("scheduler_jobs", _with(VALID_ROWS[33][1], action_type="copy"), "action_type", "got 'copy'"),
    (
        "scheduler_jobs",
        _with(VALID_ROWS[33][1], backoff_strategy="random"),
        "backoff_strategy",
        "got 'random'",
    ),
    ("scheduler_jobs", _with(VALID_ROWS[33][1], max_retries=-1), "max_retries", "greater than or equal to 0"),
    ("scheduler_jobs", _with(VALID_ROWS[33][1], timeout_seconds=0), "timeout_seconds", "greater than 0"),
    (
        "scheduler_jobs",
        _with(VALID_ROWS[33][1], action_params='{"timezone": "Mars/Olympus"}'),
        "action_params.timezone",
        "IANA timezone",
    ),
    ("scheduler_jobs", _with(VALID_ROWS[33][1], action_type="pipeline"), "action_params.route_id", "route"),
    (
        "scheduler_jobs",
        _with(VALID_ROWS[33][1], action_type="export"),
        "action_params.destination_ids",
        "non-empty list",
    ),
    (
        "scheduler_jobs",
        _with(VALID_ROWS[33][1], action_params={"notifications": {"on_success": [5]}}),
        "action_params.notifications.on_success[0]",
        "a valid string or a JSON object",
    ),
    ("webhook_triggers", {"id": "w", "job_id": "j", "endpoint_path": "/x y"}, "endpoint_path", "a URL path"),
    (
        "route_rules",
        {"route_id": "r", "rule_id": "x", "sequence_order": "first"},
        "sequence_order",
        "a valid integer",
    ),
]


@pytest.mark.parametrize(
    ("table", "row", "field", "expected"), BAD_ROWS, ids=lambda v: v if isinstance(v, str) else ""
)
def test_bad_rows(table: str, row: dict[str, Any], field: str, expected: str) -> None:
    with pytest.raises(MuxlyConfigError) as info:
        validate_row(table, row)
    _, errors = row_errors(table, row)
    matching = [e for e in errors if e.field == field]
    assert matching, [e.as_dict() for e in errors]
    assert expected in matching[0].expected
    assert info.value.table == table
    assert info.value.row_id == (row.get("id") or f"{row.get('route_id')}/{row.get('rule_id')}")


def test_all_errors_of_a_row_are_reported() -> None:
    row = _with(CONNECTOR, name="", connection_settings={"base_url": "x", "method": "FETCH", "extra": 1})
    _, errors = row_errors("connectors", row)
    assert {e.field for e in errors} == {"name", "connection_settings.method", "connection_settings.extra"}


def test_secret_values_never_appear_in_errors() -> None:
    row = _with(CONNECTOR, auth_settings={"auth_type": "bearer", "params": {"token": 123456789}})
    _, errors = row_errors("connectors", row)
    assert errors
    assert all("123456789" not in str(e) for e in errors)


def test_unknown_table() -> None:
    with pytest.raises(MuxlyConfigError, match="one of connectors"):
        validate_row("users", {"id": "u"})


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        (None, None),
        ("", None),
        ("  ", None),
        ("null", None),
        ('""', None),
        ('{"expression": ""}', None),
        ("revenue > 1000", "revenue > 1000"),
        ('"revenue > 1000"', "revenue > 1000"),
        ('{"expression": "a == 1"}', "a == 1"),
        ({"expression": "a == 1"}, "a == 1"),
    ],
)
def test_condition_forms(raw: Any, expected: str | None) -> None:
    assert condition_expression(raw) == expected


def test_condition_syntax_is_checked_when_the_compiler_exists(monkeypatch: pytest.MonkeyPatch) -> None:
    import muxly_provider.routing as routing
    from muxly_provider.exceptions import MuxlyConditionError

    def compile_condition(expression: str) -> None:
        raise MuxlyConditionError("unexpected token '>'", expression, 8)

    monkeypatch.setattr(routing, "compile_condition", compile_condition, raising=False)
    with pytest.raises(MuxlyConfigError) as info:
        validate_row("routing_rules", {"id": "x", "name": "x", "condition": "revenue >> 1"})
    assert info.value.field == "condition"
    assert info.value.expected == "a valid condition: unexpected token '>' at position 8"


def test_pagination_models_are_typed() -> None:
    spec = validate_row(
        "connectors",
        _with(
            CONNECTOR,
            connection_settings={"base_url": "x", "pagination": {"type": "cursor", "cursor_path": "n"}},
        ),
    )
    assert isinstance(spec.settings, ApiSettingsConfig)
    assert isinstance(spec.settings.pagination, CursorPaginationConfig)


CONN_ID_ROWS = [
    ("connectors", {"connector_type": "database", "connection_settings": {"conn_id": "{{ var.conn }}"}}),
    (
        "connectors",
        {"connector_type": "file", "connection_settings": {"path": "a.csv", "conn_id": "my conn"}},
    ),
    (
        "connectors",
        {
            "connector_type": "api",
            "connection_settings": {"base_url": "https://x.example"},
            "auth_settings": {"auth_type": "airflow_connection", "params": {"conn_id": "x" * 251}},
        },
    ),
    ("destinations", {"destination_type": "slack", "config": {"conn_id": ""}}),
    ("destinations", {"destination_type": "s3", "config": {"conn_id": "aws prod"}}),
]


@pytest.mark.parametrize(("table", "row"), CONN_ID_ROWS)
def test_conn_id_is_the_id_of_an_airflow_connection(table: str, row: dict[str, Any]) -> None:
    """Airflow's own rule for connection ids: 1 to 250 of letters, digits and ``_#!()-.:/\\``."""
    _, errors = row_errors(table, {"id": "x", "name": "x", **row})
    [error] = [e for e in errors if e.field.endswith("conn_id")]
    assert "the id of an Airflow connection" in error.expected


def test_conn_id_alone_configures_slack_s3_and_email() -> None:
    """A destination by ``conn_id`` needs nothing the connection holds (email: only its recipients)."""
    for kind, config in (
        ("slack", {"conn_id": "muxly_slack"}),
        ("s3", {"conn_id": "aws-prod/lake"}),
        ("email", {"conn_id": "smtp_default", "to_emails": ["ops@example.com"]}),
        ("database", {"conn_id": "warehouse.main", "table": "t"}),
    ):
        validate_row("destinations", {"id": kind, "name": kind, "destination_type": kind, "config": config})
    _, errors = row_errors("destinations", {"id": "s", "name": "s", "destination_type": "s3", "config": {}})
    assert [e.field for e in errors] == ["config"] and "'bucket'" in errors[0].expected
    _, errors = row_errors(
        "destinations",
        {
            "id": "e",
            "name": "e",
            "destination_type": "email",
            "config": {"smtp_host": "h", "to_emails": ["a@b.c"]},
        },
    )
    assert "'from_email'" in errors[0].expected
