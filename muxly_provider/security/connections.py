"""Which Airflow connections a configuration may name: ``[muxly] allowed_conn_ids``.

A ``conn_id`` is an Airflow connection an operator names; Airflow's own RBAC decides who may create and edit
it, and :mod:`muxly_provider.security.scope` (and the email destination) where its credentials may be sent.
Airflow's providers let any DAG author name any connection; Muxly's operators are not necessarily DAG authors,
so an admin may narrow what they can name, as Airflow does for other reachable things (``[core]
allowed_deserialization_classes``): ``[muxly] allowed_conn_ids`` holds ``fnmatch`` patterns
(``muxly_*, reporting_db``; case-sensitive, as connection ids are). Empty, the default, allows any connection.

The check applies to every ``conn_id`` of a connector (``connection_settings.conn_id``,
``auth_settings.params.conn_id``) and of a destination (``config.conn_id``), to every writer alike (the list
is a deployment setting, not a permission), at write time (:func:`conn_id_problems`, through
:func:`muxly_provider.security.row_problems`) and again at run time, when a run loads its rows
(:mod:`muxly_provider.runtime.loading`) and when a connection is opened
(:func:`muxly_provider.hooks.providers.get_connection`), so that a row written straight into the tables, or
stored before the setting changed, is refused too. ``[muxly] staging_conn_id`` is the deployment's own and is not checked.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator, Mapping
from typing import Any

from muxly_provider.security.errors import Problem

Row = Mapping[str, Any]


def _patterns() -> tuple[str, ...]:
    from muxly_provider import settings

    return settings.allowed_conn_ids()


def conn_id_reason(conn_id: str, patterns: tuple[str, ...] | None = None) -> str | None:
    """Why ``conn_id`` may not be named (``None`` when it may).

    :param conn_id: the connection id a configuration names
    :param patterns: the allow-list (default: ``[muxly] allowed_conn_ids``)
    """
    patterns = _patterns() if patterns is None else patterns
    if not patterns or any(fnmatch.fnmatchcase(conn_id, pattern) for pattern in patterns):
        return None
    return f"an Airflow connection allowed by [muxly] allowed_conn_ids ({', '.join(patterns)})"


def _json(row: Row, column: str) -> Mapping[str, Any]:
    from muxly_provider.security.credentials import json_column

    return json_column(row, column)


def conn_id_fields(table: str, row: Row) -> Iterator[tuple[str, Any]]:
    """``(field, conn_id)`` of each connection a row of ``table`` names."""
    if table == "connectors":
        yield "connection_settings.conn_id", _json(row, "connection_settings").get("conn_id")
        auth = _json(row, "auth_settings")
        params = auth.get("params")
        if auth.get("auth_type") == "airflow_connection" and isinstance(params, Mapping):
            yield "auth_settings.params.conn_id", params.get("conn_id")
    elif table == "destinations":
        yield "config.conn_id", _json(row, "config").get("conn_id")


def conn_id_problems(table: str, row: Row) -> list[Problem]:
    """The connections of ``row`` that ``[muxly] allowed_conn_ids`` does not allow (kind ``connection``)."""
    fields = [
        (field, value) for field, value in conn_id_fields(table, row) if isinstance(value, str) and value
    ]
    if not fields:
        return []
    patterns = _patterns()
    problems = []
    for field, conn_id in fields:
        reason = conn_id_reason(conn_id, patterns)
        if reason is not None:
            problems.append(Problem(field, reason, "connection"))
    return problems
