"""``webhook_triggers`` rows (optional job, asset URI) and ``action_params.wait_for_webhook``."""

from __future__ import annotations

from typing import Any

import pytest

from muxly_provider.config.validation import row_errors, validate_row
from muxly_provider.exceptions import MuxlyConfigError

JOB = {
    "id": "j",
    "name": "J",
    "job_type": "webhook",
    "connector_id": "c",
    "action_type": "sync",
}


@pytest.mark.parametrize(
    "row",
    [
        {"id": "w", "endpoint_path": "sensor/only"},
        {"id": "w", "endpoint_path": "a", "asset_uri": "s3://bucket/orders"},
        {"id": "w", "endpoint_path": "a", "asset_uri": "x-muxly://orders/created", "job_id": "j"},
        {"id": "w", "endpoint_path": "a", "asset_uri": "orders_created"},
        {"id": "w", "endpoint_path": "a", "asset_uri": "postgres://user@host:5432/db/schema/table"},
    ],
)
def test_webhook_trigger_rows_may_name_no_job_or_an_asset(row: dict[str, Any]) -> None:
    spec = validate_row("webhook_triggers", row)
    assert spec.job_id == row.get("job_id")
    assert spec.asset_uri == row.get("asset_uri")


@pytest.mark.parametrize(
    ("asset_uri", "expected"),
    [
        ("airflow://dags/x", "Airflow reserves it"),
        ("s3://user:pw@bucket/key", "without a password"),
        ("s3://bucket/with space", "without spaces"),
        ("s3://bucket/é", "printable ASCII"),
        (" s3://bucket", "surrounding spaces"),
        ("", "non-empty"),
        ("x" * 1501, "at most 1500"),
        ("s3://", "must contain a bucket name"),  # Airflow's own normalizers
        ("postgres://host", "must contain database, schema, and table names"),
    ],
)
def test_asset_uri_is_checked_like_airflow(asset_uri: str, expected: str) -> None:
    _, errors = row_errors("webhook_triggers", {"id": "w", "endpoint_path": "a", "asset_uri": asset_uri})
    [error] = errors
    assert error.field == "asset_uri" and expected in error.expected


def test_wait_for_webhook_option() -> None:
    wait = {"endpoint_path": "orders/paid", "condition": "amount > 10", "on_timeout": "skip"}
    spec = validate_row("scheduler_jobs", {**JOB, "action_params": {"wait_for_webhook": wait}})
    option = spec.action_params.wait_for_webhook
    assert option is not None
    assert (option.endpoint_path, option.timeout_seconds, option.on_timeout) == ("orders/paid", 3600, "skip")
    assert option.lookback_seconds is None


@pytest.mark.parametrize(
    ("wait", "field", "expected"),
    [
        (
            {"endpoint_path": "/x y"},
            "action_params.wait_for_webhook.endpoint_path",
            "endpoint_path of a webhook",
        ),
        (
            {"endpoint_path": "x", "condition": "amount >"},
            "action_params.wait_for_webhook.condition",
            "position",
        ),
        (
            {"endpoint_path": "x", "on_timeout": "retry"},
            "action_params.wait_for_webhook.on_timeout",
            "'fail'",
        ),
        ({"endpoint_path": "x", "timeout_seconds": 0}, "action_params.wait_for_webhook.timeout_seconds", "0"),
        (
            {"endpoint_path": "x", "lookback_seconds": -1},
            "action_params.wait_for_webhook.lookback_seconds",
            "0",
        ),
        ({"endpoint_path": "x", "extra": 1}, "action_params.wait_for_webhook.extra", ""),
        ({}, "action_params.wait_for_webhook.endpoint_path", ""),
    ],
)
def test_bad_wait_for_webhook_options(wait: dict[str, Any], field: str, expected: str) -> None:
    row = {**JOB, "action_params": {"wait_for_webhook": wait}}
    with pytest.raises(MuxlyConfigError):
        validate_row("scheduler_jobs", row)
    _, errors = row_errors("scheduler_jobs", row)
    matching = [e for e in errors if e.field == field]
    assert matching, [e.as_dict() for e in errors]
    assert expected in matching[0].expected
