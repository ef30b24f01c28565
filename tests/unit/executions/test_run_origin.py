"""triggered_by and attempt from what Airflow knows about a DAG run."""

from __future__ import annotations

import pytest

from muxly_provider.executions.run_origin import attempt, known_triggered_by, triggered_by


@pytest.mark.parametrize(
    ("run_type", "source", "conf", "expected"),
    [
        ("scheduled", "timetable", None, "schedule"),
        ("backfill", "backfill", None, "backfill"),
        ("manual", "rest_api", {}, "api"),
        ("manual", "ui", None, "manual"),
        ("manual", "cli", None, "manual"),
        ("manual", "test", None, "manual"),
        ("manual", "rest_api", {"muxly": {"triggered_by": "webhook"}}, "webhook"),
        ("manual", "operator", {"muxly": {"triggered_by": "dependency"}}, "dependency"),
        ("manual", "ui", {"muxly": {"triggered_by": "evil"}}, "manual"),
        ("manual", "ui", {"muxly": "webhook"}, "manual"),
    ],
)
def test_triggered_by(run_type: str, source: str, conf: dict[str, object] | None, expected: str) -> None:
    assert triggered_by(run_type, source, conf) == expected


@pytest.mark.parametrize(
    ("run_type", "conf", "expected"),
    [
        ("scheduled", None, "schedule"),
        ("backfill", {}, "backfill"),
        ("asset_triggered", None, "dependency"),
        ("manual", {"muxly": {"triggered_by": "webhook"}}, "webhook"),
        ("manual", {"muxly": {"triggered_by": "api"}}, "api"),
        # A task sees no DagRun.triggered_by: a manual run may come from the UI, the CLI or the REST API.
        ("manual", {}, None),
        ("manual", None, None),
        ("asset_materialization", None, None),
    ],
)
def test_what_a_task_knows(run_type: str, conf: dict[str, object] | None, expected: str | None) -> None:
    assert known_triggered_by(run_type, None, conf) == expected


def test_enums_are_accepted() -> None:
    from airflow.utils.types import DagRunTriggeredByType, DagRunType

    assert triggered_by(DagRunType.SCHEDULED, DagRunTriggeredByType.TIMETABLE, None) == "schedule"
    assert triggered_by(DagRunType.MANUAL, DagRunTriggeredByType.REST_API, None) == "api"


def test_attempt_counts_clears() -> None:
    assert attempt(None) == 1
    assert attempt(0) == 1
    assert attempt(2) == 3
