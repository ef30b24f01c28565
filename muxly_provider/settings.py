"""Muxly's settings, read from the ``[muxly]`` section of Airflow's configuration.

Nothing here is read at import time: every value comes from a function, so that provider discovery (which
imports Muxly on every ``airflow`` command) stays cheap.

**Which configuration object.** Every value is read through the Task SDK's ``airflow.sdk.configuration.conf``,
in every process (api-server, scheduler, DAG processor, workers, CLI). Read in Airflow 3.3's source: it is the
same shared ``AirflowConfigParser`` as core's ``airflow.configuration.conf``, reading ``AIRFLOW__SECTION__KEY``
environment variables, ``airflow.cfg`` (``AIRFLOW_CONFIG`` or ``AIRFLOW_HOME/airflow.cfg``), the ``_CMD`` /
``_SECRET`` variants of sensitive options, and the providers' defaults, so a ``[muxly]`` value is the same in
both. It differs in two ways that matter here, and neither makes it wrong outside task processes: ``_SECRET``
variants are looked up in ``[workers] secrets_backend`` (falling back to ``[secrets] backend``), and templates
of core defaults such as ``{FERNET_KEY}`` are not expanded (:mod:`muxly_provider.crypto` treats that literal as
"no key"). Task code must not need ``airflow-core`` internals, so one reader everywhere is simpler than two
readers that could disagree.
"""

from __future__ import annotations

import functools
import os
import re
from pathlib import Path
from typing import Any

SECTION = "muxly"
DEFAULT_SCHEMA = "muxly"
DEFAULT_CONNECT_TIMEOUT = 10
DEFAULT_STATEMENT_TIMEOUT = 60


def airflow_conf() -> Any:
    """The Task SDK's configuration object (see the module docstring for why not core's)."""
    from airflow.sdk.configuration import conf

    return conf


def conf_get(section: str, key: str, fallback: str = "") -> str:
    """``[section] key`` of Airflow's configuration as a string (``fallback`` when unset)."""
    value = airflow_conf().get(section, key, fallback=fallback)
    return "" if value is None else str(value)


def _conf_get(key: str, fallback: str = "") -> str:
    return conf_get(SECTION, key, fallback)


def airflow_home() -> Path:
    """``AIRFLOW_HOME`` as Airflow resolves it (the environment variable, else ``~/airflow``)."""
    raw = os.environ.get("AIRFLOW_HOME") or "~/airflow"
    return Path(os.path.expanduser(os.path.expandvars(raw)))


def sql_alchemy_conn() -> str:
    """The URL of Muxly's database.

    ``[muxly] sql_alchemy_conn`` when set. Otherwise a SQLite file ``muxly.db`` in ``AIRFLOW_HOME``, but only
    while Airflow itself runs on SQLite (one machine): Muxly never falls back to ``[database] sql_alchemy_conn``
    because Airflow hides that value from task and DAG-processor processes, and on SQLite Muxly's writes must not
    wait on Airflow's writer lock.

    :raises MuxlyDatabaseSettingError: when Airflow's metadata database is a server (PostgreSQL, MySQL...) or
        ``[core] executor`` runs tasks on other machines (Celery, Kubernetes...) and ``[muxly] sql_alchemy_conn``
        is unset (each machine would keep its own, different Muxly), or when Muxly's
        SQLite file is Airflow's own SQLite file (the scheduler's lock would lose Muxly's writes)
    """
    configured = _conf_get("sql_alchemy_conn").strip()
    url = configured or f"sqlite:///{airflow_home() / 'muxly.db'}"
    problem = _setting_problem(url, bool(configured), _airflow_url(), tuple(remote_executors()))
    if problem:
        from muxly_provider.exceptions import MuxlyDatabaseSettingError

        raise MuxlyDatabaseSettingError(problem)
    return url


def _airflow_url() -> str | None:
    """Airflow's metadata database URL, looked up once per distinct ``[database] sql_alchemy_conn`` value."""
    return _airflow_url_for(conf_get("database", "sql_alchemy_conn"))


@functools.lru_cache(maxsize=16)
def _airflow_url_for(_configured: str) -> str | None:
    # In task processes the configured value is Airflow's placeholder; the lookup then reads this process's
    # original environment and airflow.cfg, which do not change while it runs.
    from muxly_provider.security.databases import airflow_database_url

    return airflow_database_url()


def _masked(url: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # not a SQLAlchemy URL: show only its scheme
        return url.split(":", 1)[0] + ":..."


_LOCAL_EXECUTORS = frozenset({"LocalExecutor", "SequentialExecutor", "DebugExecutor"})


def remote_executors() -> list[str]:
    """The executors of ``[core] executor`` that may run tasks on other machines (not Local/Sequential)."""
    found = []
    for item in conf_get("core", "executor").split(","):
        name = item.strip().rsplit(":", 1)[-1].rsplit(".", 1)[-1]
        if name and name not in _LOCAL_EXECUTORS:
            found.append(name)
    return found


@functools.lru_cache(maxsize=64)
def _setting_problem(
    url: str, configured: bool, airflow_url: str | None, remote: tuple[str, ...] = ()
) -> str | None:
    """What is wrong with Muxly's database ``url`` next to Airflow's ``airflow_url`` (``None``: nothing).

    :param remote: the executors that run tasks on other machines (a worker's Airflow URL is often unknown)
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    from muxly_provider.security.databases import identity

    if remote and not configured:
        return (
            f"[core] executor is {', '.join(remote)}: tasks run on other machines, so Muxly's tables must be "
            "shared: set [muxly] sql_alchemy_conn (AIRFLOW__MUXLY__SQL_ALCHEMY_CONN) on every machine, e.g. the "
            "same PostgreSQL URL as Airflow's with [muxly] db_schema (default 'muxly'); without it each machine "
            "would keep its own SQLite file in AIRFLOW_HOME and see a different, empty Muxly"
        )
    if not airflow_url:
        return None  # unknown (``_CMD``/``_SECRET`` in a task process): nothing to compare with
    try:
        airflow_family = make_url(airflow_url).get_backend_name()
    except (ArgumentError, ValueError):
        return None
    if airflow_family != "sqlite":
        if configured:
            return None
        return (
            f"Airflow runs on {airflow_family} ({_masked(airflow_url)}), so Muxly's tables must be shared too: set "
            "[muxly] sql_alchemy_conn (AIRFLOW__MUXLY__SQL_ALCHEMY_CONN) on every machine (api-server, scheduler, "
            "DAG processor, workers), e.g. the same PostgreSQL URL as Airflow's with [muxly] db_schema (default "
            "'muxly'); without it each machine would keep its own SQLite file in AIRFLOW_HOME and see a "
            "different, empty Muxly"
        )
    try:
        muxly_identity = identity(url)
        airflow_identity = identity(airflow_url)
    except (ArgumentError, ValueError):
        return None
    if muxly_identity.family != "sqlite" or muxly_identity.path is None:
        return None
    if not muxly_identity.same_as(airflow_identity):
        return None
    where = "[muxly] sql_alchemy_conn" if configured else f"Muxly's default database ({url})"
    return (
        f"{where} names Airflow's own SQLite file {muxly_identity.path}: the scheduler holds that file's write "
        "lock, so Muxly's writes (the execution rows written at the end of each run) would be lost. Set "
        "[muxly] sql_alchemy_conn (AIRFLOW__MUXLY__SQL_ALCHEMY_CONN) to another file, e.g. "
        "sqlite:///$AIRFLOW_HOME/muxly.db, or to a PostgreSQL URL"
    )


def _seconds(key: str, default: int) -> int:
    raw = _conf_get(key, str(default)).strip()
    try:
        value = int(float(raw)) if raw else default
    except ValueError:
        from muxly_provider.exceptions import MuxlyDatabaseSettingError

        raise MuxlyDatabaseSettingError(
            f"[muxly] {key} must be a whole number of seconds (got {raw!r})"
        ) from None
    return max(0, value)


def db_connect_timeout() -> int:
    """Seconds to wait for a connection to Muxly's database (``[muxly] db_connect_timeout``, default 10).

    ``0`` waits as long as the driver does (no timeout of Muxly's own).
    """
    return _seconds("db_connect_timeout", DEFAULT_CONNECT_TIMEOUT)


def db_statement_timeout() -> int:
    """Seconds one statement on Muxly's database may run (``[muxly] db_statement_timeout``, default 60; 0: none).

    Also how long a SQLite writer waits for the file's lock (``busy_timeout``; 30 s when this is 0).
    """
    return _seconds("db_statement_timeout", DEFAULT_STATEMENT_TIMEOUT)


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


def allowed_conn_ids() -> tuple[str, ...]:
    """The Airflow connections configurations may name (``[muxly] allowed_conn_ids``): ``fnmatch`` patterns,
    comma- or space-separated; empty (the default) allows any connection (see ``docs/security.md``)."""
    return tuple(p for p in re.split(r"[,\s]+", _conf_get("allowed_conn_ids")) if p)


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
