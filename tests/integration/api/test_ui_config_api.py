"""Configuration as code over HTTP (issue 14), SQLite and PostgreSQL: ``GET /config/export`` and
``POST /config/import?dry_run=``, through ``config_io`` as the CLI does, with per-resource permissions."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import bearer, login, make_user
from fastapi.testclient import TestClient

API = "/api/v1"
SMTP_PASSWORD = "smtp-very-secret-77"
YAML_HEADERS = {"Content-Type": "application/yaml"}

CONFIG: dict[str, Any] = {
    "version": 1,
    "connectors": [
        {
            "id": "shop",
            "name": "Shop API",
            "connector_type": "api",
            "auth_settings": {"auth_type": "none"},
            "connection_settings": {"base_url": "http://127.0.0.1:1/orders"},
        }
    ],
    "destinations": [
        {"id": "files", "name": "Files", "destination_type": "file", "config": {"output_dir": "out"}}
    ],
    "routing_rules": [{"id": "big", "name": "Big orders", "priority": 10, "condition": "total > 100"}],
    "rule_destinations": [{"rule_id": "big", "destination_id": "files"}],
    "routes": [
        {"id": "main", "name": "Main", "connector_id": "shop", "error_handling": {"mode": "continue"}}
    ],
    "route_rules": [{"route_id": "main", "rule_id": "big", "sequence_order": 0}],
    "scheduler_jobs": [
        {
            "id": "hourly",
            "name": "Hourly sync",
            "job_type": "cron",
            "schedule": "@hourly",
            "connector_id": "shop",
            "action_type": "sync",
            "action_params": {},
        }
    ],
}
MAIL = {
    "id": "mail",
    "name": "Mail",
    "destination_type": "email",
    "config": {
        "smtp_host": "localhost",
        "smtp_password": SMTP_PASSWORD,
        "from_email": "a@example.com",
        "to_emails": ["b@example.com"],
    },
}


@pytest.fixture
def client(api_db: str, files_root: Path) -> Iterator[TestClient]:
    from muxly_provider.api.app import create_app
    from muxly_provider.auth.throttle import reset_throttle

    reset_throttle()
    with TestClient(create_app()) as test_client:
        yield test_client


@pytest.fixture
def heads(client: TestClient) -> dict[str, dict[str, str]]:
    for name in ("admin", "operator", "viewer"):
        make_user(f"cfg-{name}", [name])
    return {
        n: {**bearer(login(client, f"cfg-{n}")["access_token"]), **YAML_HEADERS}
        for n in ("admin", "operator", "viewer")
    }


def _import(client: TestClient, headers: dict[str, str], data: Any, dry_run: bool | None = None) -> Any:
    query = "" if dry_run is None else f"?dry_run={str(dry_run).lower()}"
    text = data if isinstance(data, str) else yaml.safe_dump(data, sort_keys=False)
    return client.post(f"{API}/config/import{query}", headers=headers, content=text.encode())


def test_dry_run_then_apply_then_export_round_trips(
    client: TestClient, heads: dict[str, dict[str, str]]
) -> None:
    admin = heads["admin"]
    data = copy.deepcopy(CONFIG)
    data["destinations"].append(MAIL)
    plan = _import(client, admin, data)
    assert plan.status_code == 200, plan.text
    assert plan.json()["dry_run"] is True and plan.json()["applied"] is False
    assert plan.json()["tables"]["destinations"] == {
        "created": ["files", "mail"],
        "changed": [],
        "deleted": [],
        "unchanged": 0,
        "changed_fields": {},
    }
    assert client.get(f"{API}/connectors", headers=admin).json()["total"] == 0  # a dry run writes nothing
    applied = _import(client, admin, data, dry_run=False)
    assert applied.status_code == 200, applied.text
    assert applied.json()["applied"] is True
    assert applied.json()["tables"]["scheduler_jobs"]["created"] == ["hourly"]
    assert client.get(f"{API}/jobs/hourly", headers=admin).status_code == 200

    exported = client.get(f"{API}/config/export", headers=admin)
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"].startswith("application/yaml")
    assert SMTP_PASSWORD not in exported.text
    document = yaml.safe_load(exported.text)
    assert document["version"] == 1
    assert {d["id"]: d["config"].get("smtp_password") for d in document["destinations"]} == {
        "files": None,
        "mail": "***",
    }
    again = _import(client, admin, exported.text, dry_run=False).json()
    assert all(not t["created"] and not t["changed"] for t in again["tables"].values()), again
    document["scheduler_jobs"][0]["name"] = "Hourly sync (renamed)"
    renamed = _import(client, admin, document).json()["tables"]["scheduler_jobs"]
    assert renamed["changed"] == ["hourly"] and renamed["changed_fields"] == {"hourly": ["name"]}


def test_errors_name_table_row_field_and_line(client: TestClient, heads: dict[str, dict[str, str]]) -> None:
    data = copy.deepcopy(CONFIG)
    data["scheduler_jobs"].append(
        {**copy.deepcopy(data["scheduler_jobs"][0]), "id": "broken", "schedule": "every day"}
    )
    text = yaml.safe_dump(data, sort_keys=False)
    answer = _import(client, heads["admin"], text, dry_run=False)
    assert answer.status_code == 422, answer.text
    details = answer.json()["error"]["details"]
    assert details["field"] == "scheduler_jobs[broken].schedule"
    [error] = details["errors"]
    line = next(i for i, row in enumerate(text.splitlines(), 1) if row.strip() == "- id: broken")
    assert (error["table"], error["row_id"], error["field"], error["line"]) == (
        "scheduler_jobs",
        "broken",
        "schedule",
        line,
    )
    assert client.get(f"{API}/connectors", headers=heads["admin"]).json()["total"] == 0  # all or nothing

    syntax = _import(client, heads["admin"], "connectors:\n  - id: [unclosed\n")
    assert syntax.status_code == 422 and "line" in syntax.json()["error"]["message"], syntax.text
    bomb = "a: &x [1, 2]\nb: [*x, *x]\n"
    aliases = _import(client, heads["admin"], bomb)
    assert aliases.status_code == 422 and "aliases" in aliases.json()["error"]["details"]["reason"]
    unknown = _import(client, heads["admin"], {"version": 1, "planets": []})
    assert (
        unknown.status_code == 422 and unknown.json()["error"]["details"]["errors"][0]["field"] == "planets"
    )


def test_import_body_is_bounded(
    client: TestClient, heads: dict[str, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__MUXLY__API_MAX_BODY_BYTES", "2000")
    answer = _import(client, heads["admin"], "# padding\n" * 300)
    assert answer.status_code == 413 and answer.json()["error"]["code"] == "payload_too_large"


def test_import_permissions_follow_the_plan(client: TestClient, heads: dict[str, dict[str, str]]) -> None:
    viewer, operator, admin = heads["viewer"], heads["operator"], heads["admin"]
    assert client.get(f"{API}/config/export", headers=viewer).status_code == 200
    assert _import(client, viewer, CONFIG).status_code == 200  # a dry run only reads
    refused = _import(client, viewer, CONFIG, dry_run=False)
    assert refused.status_code == 403, refused.text
    assert refused.json()["error"]["details"] == {
        "resource": "connectors",
        "action": "create",
        "table": "connectors",
        "row_id": "shop",
    }
    with_mail = copy.deepcopy(CONFIG)
    with_mail["destinations"].append(MAIL)
    credentials = _import(client, operator, with_mail, dry_run=False)
    assert credentials.status_code == 403, credentials.text
    assert credentials.json()["error"]["details"]["resource"] == "credentials"
    assert credentials.json()["error"]["details"]["field"] == "config.smtp_password"
    settings = _import(
        client, operator, {"version": 1, "settings": [{"key": "owner", "value": "me"}]}, dry_run=False
    )
    assert settings.status_code == 403 and settings.json()["error"]["details"]["resource"] == "settings"
    assert client.get(f"{API}/connectors", headers=admin).json()["total"] == 0  # refused before any write
    assert _import(client, operator, CONFIG, dry_run=False).status_code == 200
    assert _import(client, admin, with_mail, dry_run=False).status_code == 200


def test_import_of_rows_without_optional_json_columns_applies_their_defaults(
    client: TestClient, heads: dict[str, dict[str, str]]
) -> None:
    """A new connector without ``auth_settings`` and a new job without ``action_params`` (or with ``null``) are
    created with the defaults ``POST /connectors`` and ``POST /jobs`` give, not a database error (500)."""
    admin = heads["admin"]
    text = """\
version: 1
connectors:
  - id: bare
    name: Bare
    connector_type: api
    connection_settings: {base_url: "http://127.0.0.1:1/x"}
scheduler_jobs:
  - id: bare-job
    name: Bare job
    job_type: manual
    connector_id: bare
    action_type: sync
  - id: null-params
    name: Null params
    job_type: manual
    connector_id: bare
    action_type: sync
    action_params: null
"""
    planned = _import(client, admin, text)
    assert planned.status_code == 200, planned.text
    assert planned.json()["tables"]["scheduler_jobs"]["created"] == ["bare-job", "null-params"]
    applied = _import(client, admin, text, dry_run=False)
    assert applied.status_code == 200, applied.text
    assert client.get(f"{API}/connectors/bare", headers=admin).json()["auth_settings"] == {
        "auth_type": "none"
    }
    assert client.get(f"{API}/jobs/bare-job", headers=admin).json()["action_params"] == {}
    assert client.get(f"{API}/jobs/null-params", headers=admin).json()["action_params"] == {}
