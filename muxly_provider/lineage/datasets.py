"""The input datasets of each connector type and the output dataset of each destination type.

Two registries keyed by type read the validated configs (dicts, as a run loads them) and name the datasets
with :mod:`muxly_provider.lineage.naming`. A type without an entry gets a dataset in the ``muxly`` namespace
named after its row, so that a run still shows where its records came from and went. A ``plugin:<name>``
connector may name its own datasets with a ``lineage_datasets(data_spec)`` method returning
``(namespace, name)`` pairs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from muxly_provider.connectors.base import ConnectorContext
from muxly_provider.destinations.base import DestinationContext
from muxly_provider.lineage.naming import (
    MUXLY_NAMESPACE,
    ConnectionLookup,
    DatasetName,
    SourceDatasets,
    airflow_connection,
    connection_url,
    database_info,
    fill,
    location_dataset,
    sql_sources,
    url_dataset,
)

ConnectorNamer = Callable[[ConnectorContext, Mapping[str, Any], ConnectionLookup], SourceDatasets]
DestinationNamer = Callable[[DestinationContext, ConnectionLookup], "DatasetName | None"]


def _one(found: DatasetName | None) -> SourceDatasets:
    return SourceDatasets((found,) if found is not None else ())


def _api(context: ConnectorContext, spec: Mapping[str, Any], connection: ConnectionLookup) -> SourceDatasets:
    """``{scheme}://{host}[:{port}]`` + the path of ``base_url`` (variables and path parameters filled)."""
    settings = context.settings
    variables = {**(spec.get("variables") or {}), **(spec.get("run_params") or {})}
    path_params = {**(settings.get("path_params") or {}), **(spec.get("path_params") or {})}
    base = fill(str(settings.get("base_url") or ""), variables, path_params)
    if "://" not in base:  # an Airflow HTTP connection supplies the host; base_url is the path under it
        params = context.auth.get("params") or {}
        conn_id = params.get("conn_id") if context.auth.get("auth_type") == "airflow_connection" else None
        conn = connection(str(conn_id)) if conn_id else None
        root = connection_url(conn) if conn is not None else None
        if root is None:
            return SourceDatasets()
        base = root.rstrip("/") + ("/" + base.lstrip("/") if base else "")
    return _one(url_dataset(base))


def _database(
    context: ConnectorContext, spec: Mapping[str, Any], connection: ConnectionLookup
) -> SourceDatasets:
    """The tables the query reads, as ``{database}.{schema}.{table}`` of the connection's namespace."""
    query = spec.get("query")
    if not isinstance(query, str) or not query.strip():
        return SourceDatasets()
    info = database_info(context.settings, connection)
    if info is None:
        return SourceDatasets(query=query)
    return sql_sources(query, info.dialect, lambda db, schema, name: info.table(name, schema, db))


def _file(context: ConnectorContext, spec: Mapping[str, Any], connection: ConnectionLookup) -> SourceDatasets:
    """The file, or the folder of a glob (``data_spec`` overrides the setting, as the connector reads it)."""
    for source in (spec, context.settings):
        for key in ("path", "glob"):
            if source.get(key):
                return _one(location_dataset(str(source[key]), pattern=key == "glob"))
    return SourceDatasets()


def _bigquery(
    context: ConnectorContext, spec: Mapping[str, Any], connection: ConnectionLookup
) -> SourceDatasets:
    """``bigquery`` + ``{project}.{dataset}.{table}`` of each table the query reads."""
    query = spec.get("query")
    if not isinstance(query, str) or not query.strip():
        return SourceDatasets()
    project = str(context.settings.get("project_id") or "")
    default_dataset = context.settings.get("dataset_id")

    def table(db: str | None, schema: str | None, name: str) -> DatasetName | None:
        dataset = schema or default_dataset
        return DatasetName("bigquery", f"{db or project}.{dataset}.{name}") if dataset else None

    return sql_sources(query, "bigquery", table)


def _ga4(context: ConnectorContext, spec: Mapping[str, Any], connection: ConnectionLookup) -> SourceDatasets:
    """``ga4`` + ``properties/{property_id}``."""
    return _one(DatasetName("ga4", f"properties/{context.settings.get('property_id')}"))


def _hubspot(
    context: ConnectorContext, spec: Mapping[str, Any], connection: ConnectionLookup
) -> SourceDatasets:
    """``hubspot`` + ``crm/objects/{objectType}`` (``contacts`` by default, as the connector reads)."""
    object_type = str(spec.get("objectType") or spec.get("object_type") or "contacts")
    return _one(DatasetName("hubspot", f"crm/objects/{object_type}"))


CONNECTOR_NAMERS: Mapping[str, ConnectorNamer] = {
    "api": _api,
    "database": _database,
    "file": _file,
    "bigquery": _bigquery,
    "ga4": _ga4,
    "hubspot": _hubspot,
}
"""How each built-in connector type names what it reads (``webhook`` and unknown types: the fallback)."""


def _plugin(context: ConnectorContext, spec: Mapping[str, Any]) -> SourceDatasets | None:
    from muxly_provider.connectors.registry import get_connector_class

    try:
        connector: Any = get_connector_class(context.connector_type)(context)
    except Exception:  # an unknown or broken plugin names nothing of its own
        return None
    method = getattr(connector, "lineage_datasets", None)
    if not callable(method):
        return None
    return SourceDatasets(tuple(DatasetName(str(ns), str(name)) for ns, name in method(spec)))


def connector_sources(
    context: ConnectorContext, data_spec: Mapping[str, Any], connection: ConnectionLookup = airflow_connection
) -> SourceDatasets:
    """The input datasets of ``context`` for a run with ``data_spec``.

    :param connection: reads an Airflow connection by id (tests pass their own)
    """
    namer = CONNECTOR_NAMERS.get(context.connector_type)
    found = namer(context, data_spec, connection) if namer is not None else None
    if found is None and context.connector_type.startswith("plugin:"):
        found = _plugin(context, data_spec)
    if found is None or (not found.datasets and found.query is None):
        return _one(DatasetName(MUXLY_NAMESPACE, f"connectors/{context.id}"))
    return found


def _file_dest(context: DestinationContext, connection: ConnectionLookup) -> DatasetName | None:
    """The output folder (files there are named per run)."""
    return location_dataset(str(context.config.get("output_dir") or "."))


def _database_dest(context: DestinationContext, connection: ConnectionLookup) -> DatasetName | None:
    info = database_info(context.config, connection)
    table = context.config.get("table")
    return info.table(str(table), context.config.get("schema")) if info is not None and table else None


def _http_connection_url(config: Mapping[str, Any], connection: ConnectionLookup, endpoint: str = "") -> str:
    """The URL below an Airflow HTTP connection (``conn_id``) as ``HttpHook`` builds it; ``""`` if unknown."""
    conn = connection(str(config["conn_id"])) if config.get("conn_id") else None
    if conn is None or not conn.host:
        return ""
    base = str(conn.host) if "://" in str(conn.host) else f"{conn.schema or 'http'}://{conn.host}"
    base += f":{conn.port}" if conn.port else ""
    return base.rstrip("/") + "/" + endpoint.lstrip("/") if endpoint else base


def _webhook_dest(context: DestinationContext, connection: ConnectionLookup) -> DatasetName | None:
    url = context.config.get("url") or _http_connection_url(
        context.config, connection, str(context.config.get("endpoint") or "")
    )
    return url_dataset(str(url)) if url else None


def _email_dest(context: DestinationContext, connection: ConnectionLookup) -> DatasetName | None:
    """``smtp://{host}:{port}`` + the recipients (sorted, comma-separated)."""
    config = context.config
    host, port = config.get("smtp_host"), config.get("smtp_port") or 587
    if not host and config.get("conn_id"):
        conn = connection(str(config["conn_id"]))
        host, port = (conn.host, conn.port) if conn is not None else ("", None)
    recipients = ",".join(sorted(str(r) for r in config.get("to_emails") or []))
    if not host or not recipients:
        return None
    return DatasetName(f"smtp://{host}" + (f":{port}" if port else ""), recipients)


def _slack_dest(context: DestinationContext, connection: ConnectionLookup) -> DatasetName | None:
    """``slack`` + the channel (the webhook URL is a secret: never part of a name)."""
    channel = context.config.get("channel")
    return DatasetName("slack", str(channel) if channel else f"destinations/{context.id}")


def _s3_dest(context: DestinationContext, connection: ConnectionLookup) -> DatasetName | None:
    bucket = context.config.get("bucket")
    if not bucket:
        return None
    return DatasetName(f"s3://{bucket}", str(context.config.get("key_prefix") or "").strip("/") or "/")


def _prometheus_dest(context: DestinationContext, connection: ConnectionLookup) -> DatasetName | None:
    """The Pushgateway + ``metrics/job/{job}`` (the grouping key Muxly pushes under)."""
    url = context.config.get("pushgateway_url") or _http_connection_url(context.config, connection)
    gateway = url_dataset(str(url)) if url else None
    job = context.config.get("job") or "muxly"
    return DatasetName(gateway.namespace if gateway else "prometheus", f"metrics/job/{job}")


DESTINATION_NAMERS: Mapping[str, DestinationNamer] = {
    "file": _file_dest,
    "database": _database_dest,
    "webhook": _webhook_dest,
    "email": _email_dest,
    "slack": _slack_dest,
    "s3": _s3_dest,
    "prometheus": _prometheus_dest,
}
"""How each destination type names what it writes."""


def destination_dataset(
    context: DestinationContext, connection: ConnectionLookup = airflow_connection
) -> DatasetName:
    """The output dataset of ``context`` (the ``muxly`` namespace when its config names none)."""
    namer = DESTINATION_NAMERS.get(context.destination_type)
    found = namer(context, connection) if namer is not None else None
    return found or DatasetName(MUXLY_NAMESPACE, f"destinations/{context.id}")
