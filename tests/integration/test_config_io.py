"""Configuration as code against real migrated databases (SQLite and PostgreSQL)."""

from __future__ import annotations

import argparse
import copy
from pathlib import Path
from typing import Any

import pytest
import yaml
from sqlalchemy import Engine, func, select

from muxly_provider import config_io
from muxly_provider.cli import config_command
from muxly_provider.crypto import is_encrypted
from muxly_provider.db.models import metadata
from muxly_provider.db.snapshot import CONFIG_TABLES
from muxly_provider.exceptions import MuxlyConfigErrors

TOKEN = "tok-very-secret-1"
SMTP_PASSWORD = "smtp-very-secret-2"
HOOK_SECRET = "hook-very-secret-3"
SECRETS = (TOKEN, SMTP_PASSWORD, HOOK_SECRET)

CONFIG: dict[str, Any] = {
    "version": 1,
    "connectors": [
        {
            "id": "shop",
            "name": "Shop API",
            "connector_type": "api",
            "enabled": True,
            "auth_settings": {"auth_type": "bearer", "params": {"token": TOKEN}},
            "connection_settings": {"base_url": "http://127.0.0.1:1/orders", "metrics_path": "items"},
        }
    ],
    "destinations": [
        {"id": "files", "name": "Files", "destination_type": "file", "config": {"output_dir": "out"}},
        {
            "id": "mail",
            "name": "Mail",
            "destination_type": "email",
            "config": {
                "smtp_host": "localhost",
                "smtp_password": SMTP_PASSWORD,
                "from_email": "a@example.com",
                "to_emails": ["b@example.com"],
            },
        },
    ],
    "routing_rules": [{"id": "big", "name": "Big orders", "priority": 10, "condition": "total > 100"}],
    "rule_transformations": [
        {
            "id": "big-rename",
            "rule_id": "big",
            "transformation_type": "rename_field",
            "config": {"from": "total", "to": "revenue"},
            "sequence_order": 0,
        }
    ],
    "rule_destinations": [{"rule_id": "big", "destination_id": "files"}],
    "routes": [
        {
            "id": "main",
            "name": "Main",
            "connector_id": "shop",
            "error_handling": {"mode": "dead_letter", "dead_letter_destination_id": "files"},
        }
    ],
    "route_rules": [{"route_id": "main", "rule_id": "big", "sequence_order": 0}],
    "scheduler_jobs": [
        {
            "id": "hourly-sync",
            "name": "Hourly sync",
            "job_type": "cron",
            "schedule": "@hourly",
            "connector_id": "shop",
            "action_type": "sync",
            "action_params": {"data_spec": {}, "notifications": {"on_failure": ["mail"]}},
            "max_retries": 2,
            "backoff_strategy": "exponential",
            "timeout_seconds": 120,
        }
    ],
    "webhook_triggers": [
        {"id": "hook", "job_id": "hourly-sync", "endpoint_path": "orders", "secret_key": HOOK_SECRET}
    ],
    "settings": [{"key": "owner", "value": "data-team"}],
}


def _raw_dump(engine: Engine) -> str:
    """Every configuration row as raw text, straight from SQL."""
    chunks = []
    with engine.connect() as conn:
        for table in CONFIG_TABLES:
            chunks.extend(str(tuple(row)) for row in conn.execute(select(metadata.tables[table])))
    return "\n".join(chunks)


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        return {
            t: int(conn.execute(select(func.count()).select_from(metadata.tables[t])).scalar_one())
            for t in CONFIG_TABLES
        }


def test_import_encrypts_and_export_redacts(muxly_engine: Engine) -> None:
    plan = config_io.import_config(muxly_engine, CONFIG)
    assert plan.applied
    assert plan.count("create") == sum(len(v) for k, v in CONFIG.items() if k != "version")
    raw = _raw_dump(muxly_engine)
    for secret in SECRETS:
        assert secret not in raw
    assert "fernet:v1:" in raw
    with muxly_engine.connect() as conn:
        triggers, rules = metadata.tables["webhook_triggers"], metadata.tables["routing_rules"]
        assert is_encrypted(conn.execute(select(triggers.c.secret_key)).scalar_one())
        assert conn.execute(select(rules.c.condition)).scalar_one() == '"total > 100"'

    exported = config_io.export_config(muxly_engine)
    assert exported["connectors"][0]["auth_settings"]["params"]["token"] == "***"
    assert exported["webhook_triggers"][0]["secret_key"] == "***"
    assert exported["routes"][0]["error_handling"]["mode"] == "dead_letter"
    assert "created_at" not in exported["connectors"][0]
    text_yaml = config_io.dump_yaml(exported)
    assert all(secret not in text_yaml for secret in SECRETS)

    full = config_io.export_config(muxly_engine, include_secrets=True)
    assert full["connectors"][0]["auth_settings"]["params"]["token"] == TOKEN
    assert full["destinations"][1]["config"]["smtp_password"] == SMTP_PASSWORD


def test_export_import_round_trip_is_unchanged(muxly_engine: Engine) -> None:
    config_io.import_config(muxly_engine, CONFIG)
    before = _raw_dump(muxly_engine)
    redacted = yaml.safe_load(config_io.dump_yaml(config_io.export_config(muxly_engine)))
    plan = config_io.import_config(muxly_engine, redacted)
    assert plan.count("unchanged") == len(plan.changes), plan.summary()
    assert _raw_dump(muxly_engine) == before  # "***" kept the stored secrets
    again = config_io.import_config(muxly_engine, CONFIG)  # plaintext equal to the stored secret
    assert again.count("unchanged") == len(again.changes), again.summary()


def test_update_reports_changed_fields(muxly_engine: Engine) -> None:
    config_io.import_config(muxly_engine, CONFIG)
    changed = copy.deepcopy(CONFIG)
    changed["routing_rules"][0]["priority"] = 5
    changed["connectors"][0]["auth_settings"]["params"]["token"] = "new-token-4"
    plan = config_io.import_config(muxly_engine, changed)
    updates = {(c.table, c.row_id): c.changed_fields for c in plan.changes if c.action == "update"}
    assert updates == {("routing_rules", "big"): ("priority",), ("connectors", "shop"): ("auth_settings",)}
    assert "new-token-4" not in _raw_dump(muxly_engine)
    assert "new-token-4" not in plan.summary()


def test_dry_run_writes_nothing(muxly_engine: Engine) -> None:
    plan = config_io.import_config(muxly_engine, CONFIG, dry_run=True)
    assert plan.dry_run
    assert not plan.applied
    assert plan.count("create") > 0
    assert set(_counts(muxly_engine).values()) == {0}


def test_one_bad_row_writes_nothing_and_all_errors_are_reported(muxly_engine: Engine) -> None:
    bad = copy.deepcopy(CONFIG)
    bad["destinations"][0]["config"]["file_format"] = "xml"
    bad["scheduler_jobs"][0]["connector_id"] = "missing"
    bad["routes"][0]["error_handling"]["dead_letter_destination_id"] = "nowhere"
    bad["settings"].append({"key": "owner", "value": "twice"})
    with pytest.raises(MuxlyConfigErrors) as info:
        config_io.import_config(muxly_engine, bad)
    found = {(e.table, e.row_id, e.field) for e in info.value.errors}
    assert found == {
        ("destinations", "files", "config.file_format"),
        ("scheduler_jobs", "hourly-sync", "connector_id"),
        ("routes", "main", "error_handling.dead_letter_destination_id"),
        ("settings", "owner", "key"),
    }
    assert set(_counts(muxly_engine).values()) == {0}


def test_redacted_secret_of_a_new_row_is_an_error(muxly_engine: Engine) -> None:
    data = copy.deepcopy(CONFIG)
    data["connectors"][0]["auth_settings"]["params"]["token"] = "***"
    with pytest.raises(MuxlyConfigErrors) as info:
        config_io.import_config(muxly_engine, data)
    assert [(e.table, e.field) for e in info.value.errors] == [("connectors", "auth_settings.params.token")]


def test_import_never_deletes(muxly_engine: Engine) -> None:
    config_io.import_config(muxly_engine, CONFIG)
    config_io.import_config(muxly_engine, {"version": 1, "settings": [{"key": "other", "value": "x"}]})
    assert _counts(muxly_engine)["settings"] == 2
    assert _counts(muxly_engine)["connectors"] == 1


def test_cli_commands(
    muxly_engine: Engine, tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("muxly_provider.db.engine.get_engine", lambda url=None: muxly_engine)
    source = tmp_path / "config.yaml"
    source.write_text(yaml.safe_dump(CONFIG), encoding="utf-8")

    config_command.import_config(argparse.Namespace(file=str(source), dry_run=True))
    assert "create" in capsys.readouterr().out
    assert set(_counts(muxly_engine).values()) == {0}

    config_command.import_config(argparse.Namespace(file=str(source), dry_run=False))
    assert "(applied)" in capsys.readouterr().out

    exported = tmp_path / "export.yaml"
    config_command.export_config(argparse.Namespace(output=str(exported), include_secrets=False))
    assert TOKEN not in exported.read_text(encoding="utf-8")
    config_command.export_config(argparse.Namespace(output=None, include_secrets=False))
    assert "auth_type: bearer" in capsys.readouterr().out

    bad = copy.deepcopy(CONFIG)
    bad["scheduler_jobs"][0]["schedule"] = "every hour"
    source.write_text(yaml.safe_dump(bad), encoding="utf-8")
    with pytest.raises(SystemExit) as info:
        config_command.import_config(argparse.Namespace(file=str(source), dry_run=False))
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert "table=scheduler_jobs id=hourly-sync field=schedule" in err
    assert "nothing was written" in err


def test_new_rows_without_optional_json_columns_get_the_api_defaults(muxly_engine: Engine) -> None:
    """A connector without ``auth_settings`` and a job without ``action_params`` are created with the defaults
    the REST API gives them (``{"auth_type": "none"}``, ``{}``), not refused by the database's NOT NULL."""
    data = {
        "version": 1,
        "connectors": [
            {
                "id": "bare",
                "name": "Bare",
                "connector_type": "api",
                "connection_settings": {"base_url": "http://127.0.0.1:1/x"},
            }
        ],
        "scheduler_jobs": [
            {
                "id": "bare-job",
                "name": "Bare job",
                "job_type": "manual",
                "connector_id": "bare",
                "action_type": "sync",
            }
        ],
    }
    plan = config_io.import_config(muxly_engine, data)
    assert [(c.table, c.action) for c in plan.changes] == [
        ("connectors", "create"),
        ("scheduler_jobs", "create"),
    ]
    exported = config_io.export_config(muxly_engine)
    assert exported["connectors"][0]["auth_settings"] == {"auth_type": "none"}
    assert exported["scheduler_jobs"][0]["action_params"] == {}
    again = config_io.import_config(muxly_engine, data)  # the same file again changes nothing
    assert again.count("unchanged") == 2, again.summary()
