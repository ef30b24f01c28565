"""The write-time check of a configuration row: paths, databases, connections and inline credentials in one
call.

:func:`row_problems` is what the REST API (:mod:`muxly_provider.api.v1.crud`), the CLI import
(:mod:`muxly_provider.config_io`) and any UI call before storing a row.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from muxly_provider.security.connections import conn_id_problems
from muxly_provider.security.credentials import credential_problems, json_column, plain_value
from muxly_provider.security.databases import check_url
from muxly_provider.security.errors import MuxlyConfinementError, Problem
from muxly_provider.security.paths import check_file_name, check_location

Row = Mapping[str, Any]


def _locations(table: str, row: Row) -> Iterator[tuple[str, Any, str]]:
    """``(field, value, how)`` of each path setting; ``how`` is ``path``, ``glob`` or ``name``."""
    if table == "connectors" and row.get("connector_type") == "file":
        settings = json_column(row, "connection_settings")
        yield "connection_settings.path", settings.get("path"), "path"
        yield "connection_settings.glob", settings.get("glob"), "glob"
    elif table == "destinations" and row.get("destination_type") == "file":
        config = json_column(row, "config")
        yield "config.output_dir", config.get("output_dir"), "path"
        yield "config.file_prefix", config.get("file_prefix"), "name"
    elif table == "scheduler_jobs":
        params = json_column(row, "action_params")
        yield from _data_spec_locations("action_params.data_spec", params.get("data_spec"))
        condition = params.get("run_condition")
        if isinstance(condition, Mapping):
            yield from _data_spec_locations(
                "action_params.run_condition.data_spec", condition.get("data_spec")
            )
    elif table == "rule_transformations" and row.get("transformation_type") == "join":
        yield from _data_spec_locations(
            "config.join_data_spec", json_column(row, "config").get("join_data_spec")
        )


def _data_spec_locations(field: str, data_spec: Any) -> Iterator[tuple[str, Any, str]]:
    """The paths of a ``data_spec`` (a job's, its run condition's, a join lookup's) read by a file connector."""
    if isinstance(data_spec, Mapping):
        yield f"{field}.path", data_spec.get("path"), "path"
        yield f"{field}.glob", data_spec.get("glob"), "glob"


def _database_urls(table: str, row: Row) -> Iterator[tuple[str, Any]]:
    if table == "connectors" and row.get("connector_type") == "database":
        yield (
            "connection_settings.connection_string",
            json_column(row, "connection_settings").get("connection_string"),
        )
    elif table == "destinations" and row.get("destination_type") == "database":
        yield "config.connection_string", json_column(row, "config").get("connection_string")


def row_problems(
    table: str, row: Row, stored: Row | None = None, *, credentials_allowed: bool
) -> list[Problem]:
    """What a writer may not store in ``row`` of ``table``.

    :param table: the configuration table
    :param row: the row to store, with ``"***"`` already replaced by the stored secrets
    :param stored: the row as stored before this write (``None`` for a new row)
    :param credentials_allowed: whether the writer holds ``credentials:create`` (the CLI is trusted)
    :return: every refused field; ``kind`` tells a refused value (``path``, ``database``, ``connection``)
        from a missing permission (``credentials``)
    """
    problems: list[Problem] = conn_id_problems(table, row)
    for field, value, how in _locations(table, row):
        if not isinstance(value, str) or not value:
            continue
        try:
            if how == "name":
                check_file_name(value, field)
            else:
                check_location(value, field, pattern=how == "glob")
        except MuxlyConfinementError as exc:
            problems.append(Problem(field, exc.reason, "path"))
    for field, value in _database_urls(table, row):
        if not value:
            continue
        try:
            check_url(str(plain_value(value)), field)
        except MuxlyConfinementError as exc:
            problems.append(Problem(field, exc.reason, "database"))
    if not credentials_allowed:
        problems.extend(credential_problems(table, row, stored))
    return problems
