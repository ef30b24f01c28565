"""Muxly's settings, read from the ``[muxly]`` section of Airflow's configuration.

Nothing here is read at import time: every value comes from a function, so that provider discovery (which
imports Muxly on every ``airflow`` command) stays cheap.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

SECTION = "muxly"
DEFAULT_SCHEMA = "muxly"


def _conf_get(key: str, fallback: str = "") -> str:
    from airflow.configuration import conf

    value = conf.get(SECTION, key, fallback=fallback)
    return "" if value is None else str(value)


def airflow_home() -> Path:
    """``AIRFLOW_HOME`` as Airflow resolves it."""
    from airflow.configuration import AIRFLOW_HOME

    return Path(os.path.expanduser(AIRFLOW_HOME))


def sql_alchemy_conn() -> str:
    """The URL of Muxly's database.

    ``[muxly] sql_alchemy_conn`` when set. Otherwise a SQLite file ``muxly.db`` in ``AIRFLOW_HOME``: Muxly never
    falls back to ``[database] sql_alchemy_conn`` because Airflow hides that value from task and DAG-processor
    processes, and on SQLite Muxly's writes must not wait on Airflow's writer lock.
    """
    url = _conf_get("sql_alchemy_conn").strip()
    if url:
        return url
    return f"sqlite:///{airflow_home() / 'muxly.db'}"


def db_schema(url: str | None = None) -> str | None:
    """The schema of Muxly's tables: ``[muxly] db_schema`` on PostgreSQL, ``None`` on other databases."""
    url = url if url is not None else sql_alchemy_conn()
    if not url.startswith("postgresql"):
        return None
    schema = _conf_get("db_schema", DEFAULT_SCHEMA).strip() or None
    if schema is not None and not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,62}", schema):
        from muxly_provider.exceptions import MuxlyDatabaseError

        raise MuxlyDatabaseError(f"[muxly] db_schema {schema!r} is not a plain SQL identifier")
    return schema


def staging_path() -> str:
    """Where extract tasks stage records: ``[muxly] staging_path`` or ``AIRFLOW_HOME/muxly/staging``."""
    return _conf_get("staging_path").strip() or str(airflow_home() / "muxly" / "staging")


def staging_conn_id() -> str | None:
    """The Airflow connection of object-storage staging (``[muxly] staging_conn_id``), ``None`` when unset."""
    return _conf_get("staging_conn_id").strip() or None


def files_root() -> Path:
    """The folder that relative ``output_dir`` / ``path`` settings resolve against: ``[muxly] files_root``."""
    configured = _conf_get("files_root").strip()
    return Path(configured) if configured else airflow_home() / "muxly" / "files"


def webhook_max_body_bytes() -> int:
    """The largest webhook body accepted, in bytes (``[muxly] webhook_max_body_bytes``)."""
    return int(_conf_get("webhook_max_body_bytes", "1048576") or 1048576)


def api_max_body_bytes() -> int:
    """The largest request body of the management API (``/api/v1``), in bytes (``[muxly] api_max_body_bytes``)."""
    try:
        return max(1, int(_conf_get("api_max_body_bytes", "1048576") or 1048576))
    except ValueError:
        return 1048576


def allow_link_local_requests() -> bool:
    """Whether server-side HTTP requests may reach link-local and cloud metadata addresses.

    ``[muxly] allow_link_local_requests``, default false (see ``docs/security.md``, "Server-side requests").
    """
    return _conf_get("allow_link_local_requests", "False").strip().lower() in {"true", "1", "yes", "on"}


def dag_file_shards() -> int:
    """How many DAG files share the jobs (``[muxly] dag_file_shards``, at least 1)."""
    try:
        return max(1, int(_conf_get("dag_file_shards", "1") or 1))
    except ValueError:
        return 1
