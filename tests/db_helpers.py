"""Write rows with plain SQL, as a user following the seed's schema would (JSON columns as JSON text)."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Engine, text


def insert_row(engine: Engine, table: str, **values: Any) -> None:
    """``INSERT INTO table (...) VALUES (...)``; dict and list values are written as JSON text."""
    values = {k: json.dumps(v) if isinstance(v, dict | list) else v for k, v in values.items()}
    columns = ", ".join(values)
    params = ", ".join(f":{k}" for k in values)
    with engine.begin() as conn:
        conn.execute(text(f"INSERT INTO {table} ({columns}) VALUES ({params})"), values)


def seed_api_job(
    engine: Engine,
    job_id: str,
    connector_id: str,
    *,
    base_url: str = "http://127.0.0.1:9/x",
    **job: Any,
) -> None:
    """An ``api`` connector (no auth) and a job on it; ``job`` overrides the job's columns (a manual ``sync``
    job by default)."""
    insert_row(
        engine,
        "connectors",
        id=connector_id,
        name=connector_id,
        connector_type="api",
        auth_settings={"auth_type": "none"},
        connection_settings={"base_url": base_url},
    )
    columns: dict[str, Any] = {
        "name": job_id,
        "job_type": "manual",
        "action_type": "sync",
        "action_params": {},
        **job,
    }
    insert_row(engine, "scheduler_jobs", id=job_id, connector_id=connector_id, **columns)


def airflow_connection_json(url: str) -> str:
    """The Airflow connection (``AIRFLOW_CONN_<ID>`` JSON) of a SQLAlchemy URL of PostgreSQL, MariaDB or SQLite,
    as a user would define it for the provider of that type (``postgres``, ``mysql``, ``sqlite``)."""
    from sqlalchemy.engine import make_url

    parsed = make_url(url)
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        return json.dumps({"conn_type": "sqlite", "host": parsed.database})
    conn_type = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql"}[backend]
    if conn_type == "mysql":
        import importlib.util

        import pytest

        if importlib.util.find_spec("airflow.providers.mysql") is None:
            # The extra builds mysqlclient from source: ``make install`` adds it only where libmariadb-dev (or
            # libmysqlclient-dev) is installed; .ci/run installs it and checks that the provider is there.
            pytest.skip("apache-airflow-providers-mysql is not installed (needs libmariadb-dev to build)")
    return json.dumps(
        {
            "conn_type": conn_type,
            "host": parsed.host,
            "port": parsed.port,
            "login": parsed.username,
            "password": parsed.password,
            "schema": parsed.database,
        }
    )
