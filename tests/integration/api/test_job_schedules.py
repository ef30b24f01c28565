"""One schedule validator: the API, the CLI import and the DAG factory accept and refuse the same schedules and
timezones, with the same message (issue 11 item 6)."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import yaml
from fastapi.testclient import TestClient

from muxly_provider.cli import config_command
from muxly_provider.config.schedule import CRON_PRESETS, check_schedule
from muxly_provider.dag_factory.builder import build_dag
from muxly_provider.dag_factory.specs import build_job_specs
from muxly_provider.db.engine import get_engine
from muxly_provider.db.snapshot import load_snapshot
from tests.db_helpers import insert_row

CONNECTOR = {
    "id": "c1",
    "name": "C",
    "connector_type": "api",
    "connection_settings": {"base_url": "http://x"},
}
JOB = {"name": "J", "job_type": "cron", "connector_id": "c1", "action_type": "sync"}

BAD = [
    pytest.param("schedule", "99 99 * * *", {}, id="cron-out-of-range"),
    pytest.param("schedule", "@fortnightly", {}, id="unknown-preset"),
    pytest.param("action_params.timezone", "0 3 * * *", {"timezone": "Mars/Olympus_Mons"}, id="timezone"),
]


def _api_reason(client: TestClient, admin: dict[str, str], job_id: str, schedule: str, params: dict) -> dict:
    assert client.post("/api/v1/connectors", headers=admin, json=CONNECTOR).status_code in (201, 409)
    answer = client.post(
        "/api/v1/jobs",
        headers=admin,
        json={**JOB, "id": job_id, "schedule": schedule, "action_params": params},
    )
    assert answer.status_code == 422, answer.text
    return dict(answer.json()["error"])


def _import_error(tmp_path: Path, schedule: str, params: dict, capsys: pytest.CaptureFixture[str]) -> str:
    config = {
        "version": 1,
        "connectors": [{**CONNECTOR, "auth_settings": {"auth_type": "none"}}],
        "scheduler_jobs": [{**JOB, "id": "imported", "schedule": schedule, "action_params": params}],
    }
    source = tmp_path / "config.yaml"
    source.write_text(yaml.safe_dump(config), encoding="utf-8")
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        config_command.import_config(argparse.Namespace(file=str(source), dry_run=False))
    assert info.value.code == 1
    return capsys.readouterr().err


def _parse_problem(schedule: str, params: dict) -> tuple[str, str]:
    """The problem the factory reports for a job row written with plain SQL (connector ``c1`` exists)."""
    insert_row(get_engine(), "scheduler_jobs", **JOB, id="written", schedule=schedule, action_params=params)
    specs, problems = build_job_specs(load_snapshot())
    assert specs == []
    [problem] = problems
    return problem.field, problem.reason


@pytest.mark.parametrize(("field", "schedule", "params"), BAD)
def test_bad_schedule_or_timezone_refused_everywhere_with_the_same_message(
    api_client: TestClient,
    admin: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    field: str,
    schedule: str,
    params: dict,
) -> None:
    error = _api_reason(api_client, admin, "api-job", schedule, params)
    reason = error["details"]["reason"]
    assert error["details"]["field"] == field
    assert error["message"] == f"field {field!r}: expected {reason}"

    assert f"table=scheduler_jobs id=imported field={field}: expected {reason}" in _import_error(
        tmp_path, schedule, params, capsys
    )

    # Written behind Muxly's back (plain SQL, as the seed schema allows), the factory names the same reason.
    assert _parse_problem(schedule, params) == (f"scheduler_jobs.{field}", reason)


def test_out_of_range_cron_names_the_expression() -> None:
    with pytest.raises(
        ValueError, match=r"a valid cron expression; '99 99 \* \* \*' is not \(.*out of range"
    ):
        check_schedule("99 99 * * *")


@pytest.mark.parametrize("preset", [*CRON_PRESETS, "@Daily", " @hourly "])
def test_every_preset_is_accepted_on_write_and_becomes_a_dag(
    api_client: TestClient, admin: dict[str, str], preset: str
) -> None:
    assert api_client.post("/api/v1/connectors", headers=admin, json=CONNECTOR).status_code == 201
    answer = api_client.post(
        "/api/v1/jobs",
        headers=admin,
        json={**JOB, "id": "p", "schedule": preset, "action_params": {"timezone": "Europe/Paris"}},
    )
    assert answer.status_code == 201, answer.text

    [spec], problems = build_job_specs(load_snapshot())
    assert problems == []
    assert spec.cron == CRON_PRESETS[preset.strip().lower()]
    dag = build_dag(spec)
    assert dag.timetable.expression == spec.cron
    assert str(dag.timetable.timezone) == "Europe/Paris"
