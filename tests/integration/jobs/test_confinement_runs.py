"""Issue 10 parts 1-2 in real runs (``dag.test()``): rows that reach outside (written to the tables directly, or
stored before the checks existed) fail at run time with an error naming the connector or destination and the
field, and touch nothing: the operator-becomes-admin chain, host files read through ``path``/``glob``, files
written through ``output_dir``/``file_prefix``."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, make_url, text

from tests.db_helpers import insert_row

pytestmark = pytest.mark.usefixtures("airflow_db", "files_root")


def _run(
    engine: Engine, job_id: str, connector: dict[str, Any], destination: dict[str, Any], **params: Any
) -> Any:
    from muxly_provider.dag_factory.register import register_dags

    insert_row(
        engine, "connectors", id=f"{job_id}_src", name="src", auth_settings={"auth_type": "none"}, **connector
    )
    insert_row(engine, "destinations", id=f"{job_id}_dst", name="dst", **destination)
    insert_row(
        engine,
        "scheduler_jobs",
        id=job_id,
        name=job_id,
        job_type="manual",
        connector_id=f"{job_id}_src",
        action_type="export",
        action_params={"destination_ids": [f"{job_id}_dst"], **params},
        max_retries=0,
        backoff_strategy="fixed",
    )
    namespace: dict[str, Any] = {}
    register_dags(namespace)
    return namespace[f"muxly__{job_id}"].test()


def _result(engine: Engine, job_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        [(status, result)] = conn.execute(
            text("SELECT status, result FROM job_executions WHERE job_id = :j"), {"j": job_id}
        ).all()
    return {"status": status, **json.loads(result)}


def _operator(engine: Engine) -> str:
    from muxly_provider.auth.users import create_user
    from muxly_provider.db.engine import session_scope

    with session_scope() as session:
        return create_user(
            session,
            username="op",
            email="op@example.com",
            password="correct horse battery staple",
            roles=["operator"],
        ).id


def _roles(engine: Engine, user_id: str) -> set[str]:
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT role_id FROM user_roles WHERE user_id = :u"), {"u": user_id}).all()
    return {str(r[0]) for r in rows}


def _targets(
    db_url: str, airflow_home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> dict[str, dict[str, Any]]:
    """Destination configs that all name Muxly's (or Airflow's) database, each spelled differently."""
    from muxly_provider import settings

    url = make_url(db_url)
    schema = settings.db_schema(db_url)
    base: dict[str, Any] = {"table": "user_roles", **({"schema": schema} if schema else {})}
    if url.get_backend_name() == "sqlite":
        link = tmp_path / "alias.db"
        link.symlink_to(str(url.database))
        alias = f"sqlite:///{link}"
        connection: dict[str, Any] = {"conn_type": "sqlite", "host": str(url.database)}
    else:
        alias = url.set(host="localhost").render_as_string(hide_password=False)
        connection = {
            "conn_type": "postgres",
            "host": "localhost",
            "port": url.port,
            "login": url.username,
            "schema": url.database,
        }
    monkeypatch.setenv("AIRFLOW_CONN_MUXLY_SELF", json.dumps(connection))
    return {
        "inline": {**base, "connection_string": db_url},
        "alias": {**base, "connection_string": alias},
        "conn_id": {**base, "conn_id": "muxly_self"},
        "airflow": {"table": "variable", "connection_string": f"sqlite:///{airflow_home / 'airflow.db'}"},
    }


@pytest.mark.parametrize("how", ["inline", "alias", "conn_id", "airflow"])
def test_operator_cannot_become_admin_through_a_run(
    muxly_engine: Engine,
    db_url: str,
    airflow_home: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    how: str,
) -> None:
    user_id = _operator(muxly_engine)
    config = _targets(db_url, airflow_home, tmp_path, monkeypatch)[how]
    dag_run = _run(
        muxly_engine,
        f"esc_{how}",
        {"connector_type": "database", "connection_settings": {"connection_string": "sqlite://"}},
        {"destination_type": "database", "config": config},
        data_spec={"query": f"SELECT '{user_id}' AS user_id, 'admin' AS role_id"},
    )
    assert _roles(muxly_engine, user_id) == {"operator"}
    result = _result(muxly_engine, f"esc_{how}")
    field = "conn_id" if how == "conn_id" else "connection_string"
    text_of_result = json.dumps(result)
    assert f"destination 'esc_{how}_dst'" in text_of_result and f"{field}: a database" in text_of_result, (
        result
    )
    assert dag_run.state == "failed" or result["destinations"][f"esc_{how}_dst"]["delivered"] == 0, result


def test_source_on_muxly_database_is_refused(muxly_engine: Engine, db_url: str, files_root: Path) -> None:
    """A database connector cannot read Muxly's tables (password hashes, sessions) either."""
    dag_run = _run(
        muxly_engine,
        "read_self",
        {"connector_type": "database", "connection_settings": {"connection_string": db_url}},
        {"destination_type": "file", "config": {"output_dir": "out"}},
        data_spec={"query": "SELECT * FROM users"},
    )
    assert dag_run.state == "failed"
    assert "connector 'read_self_src': connection_string: a database" in json.dumps(
        _result(muxly_engine, "read_self")
    )
    assert not (files_root / "out").exists()


def test_sqlite_source_cannot_attach_or_write_files(
    muxly_engine: Engine, db_url: str, files_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """ATTACH and VACUUM INTO would open or write any file from a query on an allowed SQLite source."""
    source = files_root / "src.db"
    with sqlite3.connect(source) as conn:
        conn.execute("CREATE TABLE t (a INTEGER)")
        conn.execute("INSERT INTO t VALUES (1)")
    written = tmp_path_factory.mktemp("vacuum") / "vacuumed.db"
    dag_run = _run(
        muxly_engine,
        "vacuum",
        {"connector_type": "database", "connection_settings": {"connection_string": f"sqlite:///{source}"}},
        {"destination_type": "file", "config": {"output_dir": "out"}},
        data_spec={"query": f"VACUUM INTO '{written}'"},
    )
    assert dag_run.state == "failed" and not written.exists()
    assert "authorization denied" in json.dumps(_result(muxly_engine, "vacuum"))


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_host_files_are_not_read(
    muxly_engine: Engine, files_root: Path, tmp_path_factory: pytest.TempPathFactory, airflow_home: Path
) -> None:
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.jsonl").write_text('{"fernet_key": "leaked"}\n')
    (files_root / "data").mkdir()
    (files_root / "data" / "ok.jsonl").write_text('{"a": 1}\n')
    (files_root / "data" / "link.jsonl").symlink_to(outside / "secret.jsonl")
    cases = {
        "rel": ({"path": f"../{outside.name}/secret.jsonl"}, "path"),
        "abs": ({"path": str(outside / "secret.jsonl")}, "path"),
        "glob": ({"glob": f"{outside}/*"}, "glob"),
        "linked": ({"glob": "data/*.jsonl"}, "glob"),
    }
    for name, (settings, field) in cases.items():
        dag_run = _run(
            muxly_engine,
            f"read_{name}",
            {"connector_type": "file", "connection_settings": {**settings, "format": "jsonl"}},
            {"destination_type": "file", "config": {"output_dir": f"out_{name}"}},
        )
        assert dag_run.state == "failed", name
        error = json.dumps(_result(muxly_engine, f"read_{name}"))
        assert f"connector 'read_{name}_src': {field}: a path inside [muxly] files_root" in error, error
        assert "leaked" not in error and not (files_root / f"out_{name}").exists()


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_files_are_not_written_outside(
    muxly_engine: Engine, files_root: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    outside = tmp_path_factory.mktemp("outside")
    (files_root / "in.jsonl").write_text('{"a": 1}\n')
    (files_root / "escape").symlink_to(outside)
    cases = {
        "prefix": ({"output_dir": "out", "file_prefix": "../escaped/x"}, "file_prefix"),
        "absolute": ({"output_dir": str(outside)}, "output_dir"),
        "dotdot": ({"output_dir": f"../{outside.name}"}, "output_dir"),
        "link": ({"output_dir": "escape/deeper"}, "output_dir"),
    }
    for name, (config, field) in cases.items():
        _run(
            muxly_engine,
            f"write_{name}",
            {"connector_type": "file", "connection_settings": {"path": "in.jsonl"}},
            {"destination_type": "file", "config": config},
        )
        error = json.dumps(_result(muxly_engine, f"write_{name}"))
        assert f"destination 'write_{name}_dst'" in error and f"{field}: a " in error, error
    assert list(outside.rglob("*")) == []
    assert not (files_root.parent / "escaped").exists()
    # ``..`` that stays inside is fine.
    dag_run = _run(
        muxly_engine,
        "write_inside",
        {"connector_type": "file", "connection_settings": {"path": "in.jsonl"}},
        {"destination_type": "file", "config": {"output_dir": "a/../b", "file_prefix": "sales"}},
    )
    assert dag_run.state == "success"
    [written] = (files_root / "b").iterdir()
    assert written.name.startswith("sales_")


def test_a_row_naming_a_connection_outside_allowed_conn_ids_fails_the_run(
    muxly_engine: Engine, files_root: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A row written straight into the tables cannot name a connection ``[muxly] allowed_conn_ids`` does not
    allow: the run fails naming the row and the field, and never opens the connection."""
    monkeypatch.setenv("AIRFLOW__MUXLY__ALLOWED_CONN_IDS", "muxly_*")
    monkeypatch.setenv(
        "AIRFLOW_CONN_OPS_WAREHOUSE", json.dumps({"conn_type": "sqlite", "host": str(files_root / "w.db")})
    )
    dag_run = _run(
        muxly_engine,
        "connallow",
        {"connector_type": "database", "connection_settings": {"connection_string": "sqlite://"}},
        {
            "destination_type": "database",
            "config": {"conn_id": "ops_warehouse", "table": "t", "create_table": True},
        },
        data_spec={"query": "SELECT 1 AS n"},
    )
    assert dag_run.state == "failed"
    error = json.dumps(_result(muxly_engine, "connallow"))
    assert "'connallow_dst'" in error and "config.conn_id" in error and "allowed_conn_ids (muxly_*)" in error
    assert not (files_root / "w.db").exists()
