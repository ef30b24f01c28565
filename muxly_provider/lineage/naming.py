"""OpenLineage dataset names (namespace, name) of URLs, databases, files and SQL queries.

The conventions are OpenLineage's naming spec (https://openlineage.io/docs/spec/naming) as Airflow's providers
apply them: ``postgres://{host}:{port}`` + ``{database}.{schema}.{table}``, ``mysql://{host}:{port}`` +
``{database}.{table}``, ``bigquery`` + ``{project}.{dataset}.{table}``, ``s3://{bucket}`` + ``{key}``, local
files ``file`` + ``{absolute path}`` (as Airflow's common-io provider names them), HTTP ``{scheme}://{host}``
(``:{port}`` when not the default) + ``{path}``. Where the spec has no entry (SQLite, SaaS APIs, email, Slack)
Muxly's choice is documented in ``docs/lineage.md``.

Names never carry secrets: URLs lose their user info, query string and fragment; database URLs give only
host, port and database; Airflow connections only their type, host, port and schema. Nothing here imports
OpenLineage; SQL is parsed with ``openlineage-sql`` when it is installed (it comes with the provider).
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

MUXLY_NAMESPACE = "muxly"
"""The namespace of datasets that exist only through Muxly (a webhook's deliveries, a plugin's records)."""


@dataclass(frozen=True, order=True)
class DatasetName:
    """One dataset: ``namespace`` (the data source) and ``name`` (unique within it)."""

    namespace: str
    name: str


@dataclass(frozen=True)
class ConnectionInfo:
    """What naming needs of an Airflow connection (never its login, password or extras)."""

    conn_type: str
    host: str = ""
    port: int | None = None
    schema: str = ""


ConnectionLookup = Callable[[str], ConnectionInfo | None]
"""An Airflow connection by id (``None`` when it cannot be read)."""


def airflow_connection(conn_id: str) -> ConnectionInfo | None:
    """The Airflow connection ``conn_id`` through the Task SDK (``None`` when it cannot be read)."""
    try:
        from airflow.sdk import BaseHook

        conn: Any = BaseHook.get_connection(conn_id)
    except Exception:  # lineage never fails a task: an unreadable connection names no dataset
        return None
    port = conn.port if isinstance(conn.port, int) else None
    return ConnectionInfo(str(conn.conn_type or ""), str(conn.host or ""), port, str(conn.schema or ""))


@dataclass(frozen=True)
class SourceDatasets:
    """The input datasets of a connector for one run.

    :param datasets: the datasets read
    :param query: the SQL text of ``database`` and ``bigquery`` connectors (for the ``sql`` job facet)
    :param columns: record field -> the (dataset, column) pairs it comes from, from the query's column lineage
    """

    datasets: tuple[DatasetName, ...] = ()
    query: str | None = None
    columns: Mapping[str, tuple[tuple[DatasetName, str], ...]] = field(default_factory=dict)

    def origins(self, field_name: str) -> tuple[tuple[DatasetName, str], ...]:
        """Where a record field comes from: the query's column lineage, else the one dataset read."""
        found = self.columns.get(field_name)
        if found is not None:
            return found
        if len(self.datasets) == 1:
            return ((self.datasets[0], field_name),)
        return ()


# --- URLs ------------------------------------------------------------------------------------------------

_DEFAULT_PORTS = {"http": 80, "https": 443}


def fill(text: str, variables: Mapping[str, Any], path_params: Mapping[str, Any] | None = None) -> str:
    """``text`` rendered as the api connector renders its ``base_url``, in Muxly's one template environment
    (``${NAME}`` and ``{name}`` shorthands, Jinja; ``docs/templates.md``); as written when it cannot render
    (a missing path parameter fails the run itself)."""
    from muxly_provider.templating import Shorthands, TemplateRenderError, render

    shorthands = Shorthands(variables=frozenset(variables), placeholders="path_params")
    try:
        return render(text, {**variables, "path_params": dict(path_params or {})}, shorthands=shorthands)
    except TemplateRenderError:
        return text


def url_dataset(url: str) -> DatasetName | None:
    """``{scheme}://{host}[:{port}]`` and the path of an absolute URL (no user info, query or fragment)."""
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme, host = parts.scheme.lower(), parts.hostname
    if not scheme or not host:
        return None
    authority = f"[{host}]" if ":" in host else host
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        authority += f":{port}"
    return DatasetName(f"{scheme}://{authority}", parts.path or "/")


def connection_url(conn: ConnectionInfo) -> str | None:
    """The base URL an HTTP-like Airflow connection points at (its host may be a whole URL)."""
    if not conn.host:
        return None
    if "://" in conn.host:
        return conn.host
    scheme = conn.schema or ("https" if conn.conn_type in ("", "http", "https") else conn.conn_type)
    return f"{scheme}://{conn.host}" + (f":{conn.port}" if conn.port else "")


# --- Databases -------------------------------------------------------------------------------------------

_DB_SCHEMES: Mapping[str, tuple[str, int | None, str | None]] = {
    # backend or connection type -> (OpenLineage scheme, default port, default schema)
    "postgresql": ("postgres", 5432, "public"),
    "postgres": ("postgres", 5432, "public"),
    "redshift": ("redshift", 5439, "public"),
    "mysql": ("mysql", 3306, None),
    "mariadb": ("mysql", 3306, None),
    "mssql": ("sqlserver", 1433, "dbo"),
    "oracle": ("oracle", 1521, None),
    "trino": ("trino", 8080, None),
    "sqlite": ("sqlite", None, None),
}
_TWO_PART = frozenset({"mysql"})
_SQL_DIALECTS = {"postgres": "postgres", "redshift": "redshift", "mysql": "mysql", "sqlite": "sqlite"}


@dataclass(frozen=True)
class DatabaseInfo:
    """A database as a data source: ``{scheme}://{authority}`` and the default database and schema.

    SQLite has no host: its namespace is ``sqlite://`` + the database file's absolute path.
    """

    scheme: str
    authority: str
    database: str = ""
    default_schema: str | None = None

    @property
    def namespace(self) -> str:
        return f"{self.scheme}://{self.authority}"

    @property
    def dialect(self) -> str:
        """The ``openlineage-sql`` dialect of this database."""
        return _SQL_DIALECTS.get(self.scheme, "generic")

    def table(self, table: str, schema: str | None = None, database: str | None = None) -> DatasetName:
        """The dataset of ``table`` (``schema``/``database`` default to the connection's)."""
        if self.scheme == "sqlite":
            return DatasetName(self.namespace, table)
        if self.scheme in _TWO_PART:  # MySQL: a "schema" is a database
            return DatasetName(self.namespace, f"{schema or database or self.database}.{table}")
        parts = (database or self.database, schema or self.default_schema or "", table)
        return DatasetName(self.namespace, ".".join(p for p in parts if p))


def _authority(host: str, port: int | None, default_port: int | None) -> str:
    host = f"[{host}]" if ":" in host else host
    port = port or default_port
    return f"{host}:{port}" if port else host


def database_from_url(url: str) -> DatabaseInfo | None:
    """The database of a SQLAlchemy URL (``None`` when it does not parse)."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        return None
    backend = parsed.get_backend_name()
    scheme, port, schema = _DB_SCHEMES.get(backend, (backend, None, None))
    if scheme == "sqlite":
        return DatabaseInfo("sqlite", os.path.abspath(parsed.database or ":memory:"))
    return DatabaseInfo(
        scheme, _authority(parsed.host or "localhost", parsed.port, port), parsed.database or "", schema
    )


def database_from_connection(conn: ConnectionInfo) -> DatabaseInfo:
    """The database of an Airflow SQL connection (``schema`` is the database in Airflow's connections)."""
    scheme, port, schema = _DB_SCHEMES.get(conn.conn_type, (conn.conn_type or "sql", None, None))
    if scheme == "sqlite":
        return DatabaseInfo("sqlite", os.path.abspath(conn.host or ":memory:"))
    return DatabaseInfo(scheme, _authority(conn.host or "localhost", conn.port, port), conn.schema, schema)


def database_info(
    settings: Mapping[str, Any], connection: ConnectionLookup = airflow_connection
) -> DatabaseInfo | None:
    """The database of a connector's or destination's ``conn_id`` or ``connection_string``."""
    if settings.get("conn_id"):
        conn = connection(str(settings["conn_id"]))
        return database_from_connection(conn) if conn is not None else None
    if settings.get("connection_string"):
        return database_from_url(str(settings["connection_string"]))
    return None


_DRIVER_PLACEHOLDER = re.compile(r"%\([A-Za-z_][A-Za-z0-9_]*\)s|%s")


def sql_sources(
    query: str,
    dialect: str,
    table: Callable[[str | None, str | None, str], DatasetName | None],
) -> SourceDatasets:
    """The tables ``query`` reads and its column lineage (``openlineage-sql``; nothing when absent).

    :param table: (database, schema, table) as written in the query -> its dataset (``None``: not named)
    """
    try:
        from openlineage_sql import parse
    except ImportError:
        return SourceDatasets(query=query)
    try:
        # The parser does not know driver placeholders (%s, %(name)s); values never change the tables.
        meta = parse([_DRIVER_PLACEHOLDER.sub("NULL", query)], dialect=dialect)
    except Exception:  # a query the parser cannot read names no table
        return SourceDatasets(query=query)
    if meta is None:
        return SourceDatasets(query=query)

    def named(meta_table: Any) -> DatasetName | None:
        return table(meta_table.database, meta_table.schema, meta_table.name)

    datasets = tuple(sorted({d for d in (named(t) for t in meta.in_tables) if d is not None}))
    columns: dict[str, tuple[tuple[DatasetName, str], ...]] = {}
    for item in meta.column_lineage:
        origins = []
        for column in item.lineage:
            source = named(column.origin) if column.origin is not None else None
            if source is None and len(datasets) == 1:
                source = datasets[0]
            if source is not None:
                origins.append((source, str(column.name)))
        columns[str(item.descendant.name)] = tuple(origins)
    return SourceDatasets(datasets, query, columns)


# --- Files and object storage ----------------------------------------------------------------------------

_URL_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")
_WILDCARD = re.compile(r"[*?\[]")
_LOCAL_SCHEMES = frozenset({"file", "local"})


def location_dataset(location: str, *, pattern: bool = False) -> DatasetName | None:
    """A file, folder or object-storage location: ``file`` + absolute path, or ``{scheme}://{bucket}`` + key.

    A glob names the folder before its first wildcard (the files it matches change from run to run).
    """
    text = location.strip()
    if pattern:
        match = _WILDCARD.search(text)
        if match is not None:
            text = text[: text.rfind("/", 0, match.start()) + 1] or "."
    match = _URL_SCHEME.match(text)
    scheme = match.group(1).lower() if match else None
    if scheme is not None and scheme not in _LOCAL_SCHEMES:
        try:
            parts = urlsplit(text)
        except ValueError:
            return None
        host = parts.hostname or parts.netloc.rpartition("@")[2]
        key = parts.path.strip("/")
        return DatasetName(f"{scheme}://{host}", key or "/")
    path = text[match.end() :] if match else text
    return DatasetName("file", _absolute(path))


def _absolute(path: str) -> str:
    """``path`` resolved against ``[muxly] files_root`` (as the connectors and destinations resolve it)."""
    from muxly_provider.security.errors import MuxlyConfinementError
    from muxly_provider.security.paths import files_root, local_path

    try:
        return str(local_path(path, "path"))
    except MuxlyConfinementError:
        return os.path.normpath(os.path.join(files_root(), path))


# --- Secrets ---------------------------------------------------------------------------------------------


def redacted(names: Iterable[DatasetName], secrets: Iterable[str]) -> list[DatasetName]:
    """``names`` with any secret value (a job's decrypted secrets and their URL parts) replaced by ``***``."""
    found = sorted({s for s in secrets if len(s) >= 5}, key=len, reverse=True)
    result = []
    for item in names:
        namespace, name = item.namespace, item.name
        for secret in found:
            namespace, name = namespace.replace(secret, "***"), name.replace(secret, "***")
        result.append(DatasetName(namespace, name))
    return result
