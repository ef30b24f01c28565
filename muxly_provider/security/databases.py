"""Connectors and destinations never reach Muxly's database or Airflow's metadata database.

Two checks, both applied at run time, the first also when a row is written:

* **By URL** (:func:`check_url`): the target is compared with Muxly's URL (``[muxly] sql_alchemy_conn``) and
  Airflow's (:func:`airflow_database_url`). SQLite files are the same when their real paths (links followed,
  relative paths against the working folder, ``file:`` URIs decoded, ``-wal``/``-shm``/``-journal`` siblings
  included) or their inodes match; in-memory SQLite is never protected. Servers are the same when both hosts
  are this machine (loopback, a Unix socket, an address of this host) or their resolved addresses meet, and the
  ports match (default ports filled in); then PostgreSQL compares the database too (another database on the
  server is not reachable without extensions), MySQL/MariaDB does not (every database of a server is one
  qualified name away).
* **By content** (:func:`guard_engine`): once connected, a database holding Airflow's tables (``dag_run`` and
  ``task_instance``) or Muxly's (``alembic_version_muxly``, or ``scheduler_jobs`` and ``user_roles``), in any
  schema the connection can see, is refused. This holds where the URL check cannot: behind a proxy or DNS alias,
  and in task processes where Airflow hides its own URL. SQLite connections also get an authorizer that refuses
  ``ATTACH`` and ``VACUUM INTO``, which would otherwise open or write any file from a query.
"""

from __future__ import annotations

import functools
import ipaddress
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from sqlalchemy import Engine, bindparam, event, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from muxly_provider.security.errors import MuxlyConfinementError

BLOCKED_AIRFLOW_URL = "airflow-db-not-allowed"
"""What Airflow 3.3 puts in ``[database] sql_alchemy_conn`` of task, DAG-processor and triggerer processes."""

_DEFAULT_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433, "oracle": 1521}
_MARKERS = ("dag_run", "task_instance", "alembic_version_muxly", "scheduler_jobs", "user_roles")
_SQLITE_ATTACH = 24


@dataclass(frozen=True)
class DatabaseIdentity:
    """Where a URL's data lives.

    :param family: ``sqlite``, ``postgresql``, ``mysql`` or the dialect name
    :param path: the real path of a SQLite file (``None``: in memory, or a server)
    :param hosts: the hosts of a server (``"local"`` for this machine), resolved to addresses when possible
    :param port: the server's port
    :param database: the database name (``None``: not given)
    """

    family: str
    path: str | None = None
    hosts: frozenset[str] = frozenset()
    port: int | None = None
    database: str | None = None

    def same_as(self, other: DatabaseIdentity) -> bool:
        """Whether both name the same data (see the module docstring)."""
        if (self.family == "sqlite") != (other.family == "sqlite"):
            return False
        if self.family == "sqlite":
            return _same_file(self.path, other.path)
        if not self.hosts & other.hosts or self.port != other.port:
            return False
        if "mysql" in (self.family, other.family):
            return True
        return self.database is None or other.database is None or self.database == other.database


def _family(drivername: str) -> str:
    name = drivername.split("+", 1)[0].lower()
    return {"postgres": "postgresql", "mariadb": "mysql", "redshift": "postgresql"}.get(name, name)


def _sqlite_path(database: str | None, query: Any) -> str | None:
    if not database or database == ":memory:":
        return None
    if str(query.get("mode", "")) == "memory":
        return None
    if database.startswith("file:"):
        parts = urlsplit(database)
        path = unquote(parts.path)
        if not path or path == ":memory:" or "mode=memory" in parts.query:
            return None
        return os.path.realpath(path)
    return os.path.realpath(database)


def _same_file(left: str | None, right: str | None) -> bool:
    if left is None or right is None:
        return False
    for suffix in ("-wal", "-shm", "-journal"):
        left = left.removesuffix(suffix)
        right = right.removesuffix(suffix)
    if left == right:
        return True
    try:
        return os.path.samefile(left, right)
    except OSError:
        return False


@functools.lru_cache(maxsize=1)
def _this_machine() -> frozenset[str]:
    names = {"localhost", socket.gethostname(), socket.getfqdn()}
    addresses: set[str] = set()
    for name in names:
        addresses |= _addresses(name)
    return frozenset(addresses)


@functools.lru_cache(maxsize=256)
def _addresses(host: str) -> frozenset[str]:
    try:
        infos = socket.getaddrinfo(host, None)
    except (OSError, UnicodeError):
        return frozenset({host.lower()})
    return frozenset(str(info[4][0]).split("%", 1)[0] for info in infos)


def _host_keys(host: str) -> frozenset[str]:
    """``{"local"}`` for this machine, else the host's addresses (or its name when it does not resolve)."""
    if not host or host.startswith("/") or host.startswith("@"):
        return frozenset({"local"})  # a Unix socket
    addresses = _addresses(host.strip("[]"))
    local = False
    for address in addresses:
        try:
            local = local or ipaddress.ip_address(address).is_loopback
        except ValueError:
            continue
    if local or addresses & _this_machine():
        return frozenset({"local"})
    return addresses


def identity(url: str | URL) -> DatabaseIdentity:
    """The :class:`DatabaseIdentity` of a SQLAlchemy URL.

    :raises ArgumentError: when ``url`` is not a SQLAlchemy URL
    """
    parsed = make_url(url)
    family = _family(parsed.drivername)
    query = parsed.query
    if family == "sqlite":
        return DatabaseIdentity(family, path=_sqlite_path(parsed.database, query))
    host_values: list[str] = [parsed.host or ""]
    query_host = query.get("host")
    if query_host and not parsed.host:
        raw = query_host if isinstance(query_host, str) else ",".join(query_host)
        host_values = raw.split(",")
    hosts: frozenset[str] = frozenset()
    for host in host_values:
        hosts |= _host_keys(host)
    port_value = parsed.port or query.get("port")
    try:
        port = int(str(port_value)) if port_value else _DEFAULT_PORTS.get(family)
    except ValueError:
        port = None
    database = parsed.database or (str(query["dbname"]) if "dbname" in query else None)
    return DatabaseIdentity(family, hosts=hosts, port=port, database=database)


def airflow_database_url() -> str | None:
    """Airflow's metadata database URL, also in processes where Airflow hides it (``None`` when unknown).

    In order: ``[database] sql_alchemy_conn`` unless Airflow replaced it with ``airflow-db-not-allowed``; the
    ``AIRFLOW__DATABASE__SQL_ALCHEMY_CONN`` this process was started with (``/proc/self/environ``: Airflow
    rewrites ``os.environ`` in task processes, not the process's original environment); the value written in
    ``airflow.cfg``. ``_CMD`` and ``_SECRET`` variants are not run from here: the content check of
    :func:`guard_engine` covers those deployments.
    """
    from muxly_provider.settings import conf_get

    value = conf_get("database", "sql_alchemy_conn")
    if value and not value.startswith(BLOCKED_AIRFLOW_URL):
        return value
    for candidate in (_original_environment_value(), _config_file_value()):
        if candidate and not candidate.startswith(BLOCKED_AIRFLOW_URL):
            return candidate
    return None


def _original_environment_value() -> str | None:
    try:
        raw = Path("/proc/self/environ").read_bytes()
    except OSError:
        return None
    prefix = b"AIRFLOW__DATABASE__SQL_ALCHEMY_CONN="
    for item in raw.split(b"\x00"):
        if item.startswith(prefix):
            return item[len(prefix) :].decode(errors="replace")
    return None


def _config_file_value() -> str | None:
    import configparser

    from airflow.sdk.configuration import get_airflow_config

    parser = configparser.RawConfigParser(strict=False)
    try:
        parser.read(os.path.expanduser(get_airflow_config()))
        value = parser.get("database", "sql_alchemy_conn", fallback=None)
    except (configparser.Error, OSError, UnicodeDecodeError):
        return None
    return value.strip() if value else None


def protected_databases() -> list[tuple[str, str]]:
    """``(name, url)`` of Muxly's database and Airflow's metadata database (when known)."""
    from muxly_provider import settings

    found = [("Muxly's database", settings.sql_alchemy_conn())]
    airflow_url = airflow_database_url()
    if airflow_url:
        found.append(("Airflow's metadata database", airflow_url))
    return found


def check_url(url: str | URL, field: str) -> None:
    """Refuse a URL naming Muxly's or Airflow's database.

    :raises MuxlyConfinementError: naming ``field`` (never the URL, which may hold a password)
    """
    try:
        target = identity(url)
    except (ArgumentError, ValueError):
        raise MuxlyConfinementError(field, "a SQLAlchemy URL") from None
    for name, protected_url in protected_databases():
        try:
            protected = identity(protected_url)
        except (ArgumentError, ValueError):
            continue
        if target.same_as(protected):
            raise MuxlyConfinementError(field, f"a database other than {name}")


def _refuse_attach(code: int, *_: Any) -> int:
    import sqlite3

    return sqlite3.SQLITE_DENY if code == _SQLITE_ATTACH else sqlite3.SQLITE_OK


def _authorize(dbapi_connection: Any, _: Any) -> None:
    dbapi_connection.set_authorizer(_refuse_attach)


def guard_engine(engine: Engine, field: str) -> Engine:
    """Check ``engine``'s URL and content before any other use (see the module docstring); return it.

    :raises MuxlyConfinementError: when it is Muxly's or Airflow's database
    """
    check_url(engine.url, field)
    dialect = engine.dialect.name
    if dialect == "sqlite" and not event.contains(engine, "connect", _authorize):
        event.listen(engine, "connect", _authorize)
    try:
        with engine.connect() as conn:
            if dialect == "sqlite":
                rows = conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'table'")).all()
            else:
                query = text(
                    "SELECT table_name FROM information_schema.tables WHERE table_name IN :names"
                ).bindparams(bindparam("names", expanding=True))
                rows = conn.execute(query, {"names": list(_MARKERS)}).all()
    except SQLAlchemyError:
        return engine  # unreachable or no information_schema: the caller's own use reports that
    names = {str(row[0]).lower() for row in rows}
    if {"dag_run", "task_instance"} <= names:
        raise MuxlyConfinementError(field, "a database that is not an Airflow metadata database")
    if "alembic_version_muxly" in names or {"scheduler_jobs", "user_roles"} <= names:
        raise MuxlyConfinementError(field, "a database that is not a Muxly database")
    return engine
