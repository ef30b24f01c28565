"""``[muxly] allowed_conn_ids``: which Airflow connections a row may name, at write time and at run time."""

from __future__ import annotations

import json
from typing import Any

import pytest

from muxly_provider.security import row_problems
from muxly_provider.security.connections import conn_id_fields, conn_id_reason


def test_empty_allows_any_connection_and_patterns_are_fnmatch(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW__MUXLY__ALLOWED_CONN_IDS", raising=False)
    assert conn_id_reason("anything_at_all") is None
    assert conn_id_reason("muxly_pg", ("muxly_*",)) is None
    assert conn_id_reason("reporting", ("muxly_*", "reporting")) is None
    assert conn_id_reason("Muxly_pg", ("muxly_*",)) is not None  # connection ids are case-sensitive
    assert conn_id_reason("muxly", ("muxly_?*",)) is not None
    monkeypatch.setenv("AIRFLOW__MUXLY__ALLOWED_CONN_IDS", " muxly_*,reporting  warehouse_[ab] ")
    assert [conn_id_reason(c) for c in ("muxly_x", "reporting", "warehouse_a")] == [None, None, None]
    assert conn_id_reason("aws_default") == (
        "an Airflow connection allowed by [muxly] allowed_conn_ids (muxly_*, reporting, warehouse_[ab])"
    )


def test_every_conn_id_of_a_row_is_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    connector = {
        "id": "c",
        "connector_type": "database",
        "connection_settings": json.dumps({"conn_id": "prod_db"}),  # JSON text, as stored
        "auth_settings": {"auth_type": "airflow_connection", "params": {"conn_id": "prod_api"}},
    }
    assert list(conn_id_fields("connectors", connector)) == [
        ("connection_settings.conn_id", "prod_db"),
        ("auth_settings.params.conn_id", "prod_api"),
    ]
    monkeypatch.setenv("AIRFLOW__MUXLY__ALLOWED_CONN_IDS", "prod_db")
    problems = row_problems("connectors", connector, credentials_allowed=True)
    assert [(p.field, p.kind) for p in problems] == [("auth_settings.params.conn_id", "connection")]
    destination = {"id": "d", "destination_type": "s3", "config": {"conn_id": "prod_db", "bucket": "b"}}
    assert row_problems("destinations", destination, credentials_allowed=False) == []
    assert list(conn_id_fields("scheduler_jobs", {"id": "j"})) == []


def test_the_cli_connector_test_refuses_a_connection_outside_the_list(
    muxly_engine: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``airflow muxly connectors test`` loads the row as a run does: a stored row naming a connection the list
    does not allow fails before anything is opened."""
    from muxly_provider.connectors.check import load_connector_context
    from muxly_provider.exceptions import MuxlyConfigError
    from tests.db_helpers import insert_row

    insert_row(
        muxly_engine,
        "connectors",
        id="api1",
        name="api1",
        connector_type="api",
        connection_settings={"base_url": "https://api.example.com"},
        auth_settings={"auth_type": "airflow_connection", "params": {"conn_id": "prod_api"}},
    )
    assert load_connector_context("api1", muxly_engine).auth["params"]["conn_id"] == "prod_api"
    monkeypatch.setenv("AIRFLOW__MUXLY__ALLOWED_CONN_IDS", "muxly_*")
    with pytest.raises(MuxlyConfigError) as info:
        load_connector_context("api1", muxly_engine)
    assert (info.value.row_id, info.value.field) == ("api1", "auth_settings.params.conn_id")
