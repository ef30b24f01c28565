"""``/config``: configuration as code over HTTP, the API twin of ``airflow muxly config export|import``.

Both go through :mod:`muxly_provider.config_io`, as the CLI does: the same YAML, the same validation of every
row and its references before anything is written, the same upsert in one transaction, never a delete.

Permissions (the CLI's user is trusted with everything; an API caller gets what their role allows):

* ``GET /config/export`` reads every configuration table: ``read`` on ``connectors``, ``destinations``,
  ``rules``, ``routes``, ``jobs``, ``webhooks`` and ``settings``. Secrets are always ``"***"`` (the CLI's
  ``--include-secrets`` has no HTTP twin: a decrypted secret never leaves the api-server).
* ``POST /config/import`` needs the same reads (a dry run only reads). Applying it (``dry_run=false``) needs,
  for each row the plan creates or changes, ``create`` or ``update`` on the resource of its table
  (``rule_transformations`` and ``rule_destinations`` are ``rules``, ``route_rules`` are ``routes``,
  ``scheduler_jobs`` are ``jobs``, ``webhook_triggers`` are ``webhooks``), and ``credentials:create`` for an
  inline credential it introduces or changes, as the resource routes do. Missing permissions answer ``403``
  before anything is written. Paths and databases stay confined for everyone (``422``, as for the CLI).

The YAML body is bounded like every management body (``[muxly] api_max_body_bytes``); anchors and aliases
are refused (an alias bomb expands exponentially) and so is nesting deeper than the JSON limit. Errors name
their location: ``table``, ``row_id``, ``field`` and, when the row is found in the file, its ``line``.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response
from pydantic import BaseModel, Field

from muxly_provider.api.errors import MuxlyHTTPError
from muxly_provider.api.v1.common import invalid
from muxly_provider.auth.dependencies import DbSession, require
from muxly_provider.auth.permissions import Principal

router = APIRouter(prefix="/config", tags=["config"])

RESOURCE_OF_TABLE: dict[str, str] = {
    "connectors": "connectors",
    "destinations": "destinations",
    "routing_rules": "rules",
    "rule_transformations": "rules",
    "rule_destinations": "rules",
    "routes": "routes",
    "route_rules": "routes",
    "scheduler_jobs": "jobs",
    "webhook_triggers": "webhooks",
    "settings": "settings",
}
"""The API resource whose permissions govern each configuration table."""

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/plain")


class TableDiffResponse(BaseModel):
    """What an import does to one table."""

    created: list[str]
    changed: list[str]
    deleted: list[str] = Field(description="Always empty: an import never deletes rows")
    unchanged: int
    changed_fields: dict[str, list[str]] = Field(description="Per changed row, the columns that change")


class ImportResponse(BaseModel):
    """The plan of an import (``applied``: it was written)."""

    dry_run: bool
    applied: bool
    tables: dict[str, TableDiffResponse] = Field(description="Only the tables the file names")


def _read_dependencies() -> list[Any]:
    return [
        require(resource, "read")
        for resource in ("connectors", "destinations", "rules", "routes", "jobs", "webhooks", "settings")
    ]


@router.get(
    "/export",
    summary="Export the configuration as YAML (secrets as '***')",
    response_class=Response,
    responses={200: {"content": {"application/yaml": {}}, "description": "The configuration as YAML"}},
    dependencies=_read_dependencies()[1:],
)
def export_configuration(
    session: DbSession, _: Annotated[Principal, require("connectors", "read")]
) -> Response:
    """Every configuration table as ``airflow muxly config export`` writes it (redacted)."""
    from muxly_provider import config_io
    from muxly_provider.db.engine import get_engine

    session.commit()  # nothing to keep: the export reads through its own connection
    text = config_io.dump_yaml(config_io.export_config(get_engine(), include_secrets=False))
    return Response(
        text,
        media_type="application/yaml",
        headers={"Content-Disposition": 'attachment; filename="muxly-config.yaml"'},
    )


def _no_aliases_or_depth(text: str) -> None:
    """Refuse anchors, aliases and deep nesting before the YAML is built into objects (``422`` with its line)."""
    import yaml

    from muxly_provider.api.limits import MAX_JSON_DEPTH

    depth = 0
    for event in yaml.parse(text, Loader=yaml.SafeLoader):
        line = event.start_mark.line + 1 if event.start_mark is not None else None
        if isinstance(event, yaml.AliasEvent) or getattr(event, "anchor", None):
            raise invalid("body", f"YAML without anchors or aliases (found one at line {line})")
        if isinstance(event, yaml.MappingStartEvent | yaml.SequenceStartEvent):
            depth += 1
            if depth > MAX_JSON_DEPTH:
                raise invalid("body", f"YAML nested at most {MAX_JSON_DEPTH} levels (line {line})")
        elif isinstance(event, yaml.MappingEndEvent | yaml.SequenceEndEvent):
            depth -= 1


def _parse(body: bytes) -> tuple[Any, dict[tuple[str, str], int]]:
    """The YAML document and the line of each row (by table and id), or a ``422`` naming the line."""
    import yaml

    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise invalid("body", "UTF-8 YAML text") from None
    try:
        _no_aliases_or_depth(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        problem = getattr(exc, "problem", None) or "not YAML"
        raise MuxlyHTTPError(
            422,
            "validation_error",
            f"the body is not valid YAML{where}: {problem}",
            {"field": "body", "reason": f"valid YAML ({problem}{where})"},
        ) from None
    return data, _row_lines(text)


def _row_lines(text: str) -> dict[tuple[str, str], int]:
    """``(table, row id) -> line`` of each row of the file (1-based), for error locations."""
    import yaml

    from muxly_provider.config.validation import primary_key

    lines: dict[tuple[str, str], int] = {}
    root = yaml.compose(text, Loader=yaml.SafeLoader)
    if not isinstance(root, yaml.MappingNode):
        return lines
    for key_node, rows_node in root.value:
        table = str(key_node.value)
        if table not in RESOURCE_OF_TABLE or not isinstance(rows_node, yaml.SequenceNode):
            continue
        for row_node in rows_node.value:
            if not isinstance(row_node, yaml.MappingNode):
                continue
            values = {str(k.value): v.value for k, v in row_node.value if isinstance(v, yaml.ScalarNode)}
            row_id = "/".join(str(values.get(column, "")) for column in primary_key(table))
            lines[(table, row_id)] = row_node.start_mark.line + 1
    return lines


def _errors_answer(errors: list[Any], lines: dict[tuple[str, str], int]) -> MuxlyHTTPError:
    located = []
    for error in errors:
        item: dict[str, Any] = error.as_dict()
        item["line"] = lines.get((error.table, str(error.row_id)))
        located.append(item)
    first = errors[0]
    where = f"{first.table}[{first.row_id}].{first.field}" if first.row_id else f"{first.table}.{first.field}"
    return invalid(where, first.expected, located)


def _forbidden(
    resource: str, action: str, table: str, row_id: str, field: str | None = None
) -> MuxlyHTTPError:
    details: dict[str, Any] = {"resource": resource, "action": action, "table": table, "row_id": row_id}
    if field:
        details["field"] = field
    return MuxlyHTTPError(
        403, "forbidden", f"{table} {row_id!r}: permission {action} on {resource} required", details
    )


def _check_credentials(principal: Principal, data: Any) -> None:
    """``403`` for an inline credential the file introduces or changes, unless the caller may store one."""
    from muxly_provider.config.validation import IGNORED_COLUMNS, row_id_of
    from muxly_provider.config_io import file_rows, stored_rows
    from muxly_provider.crypto import keep_stored_secrets
    from muxly_provider.db.engine import get_engine
    from muxly_provider.security.credentials import PERMISSION, credential_problems

    if principal.can(*PERMISSION):
        return
    tables = file_rows(data, [])
    stored = stored_rows(get_engine())
    for table, rows in tables.items():
        for raw in rows:
            row = {k: v for k, v in raw.items() if k not in IGNORED_COLUMNS}
            key = str(row_id_of(table, row))
            old = stored.get(table, {}).get(key)
            if old is not None:
                row = {**{c: v for c, v in old.items() if c not in row}, **row}
            row, _ = keep_stored_secrets(table, row, old)
            for problem in credential_problems(table, row, old):
                raise _forbidden(PERMISSION[0], PERMISSION[1], table, key, problem.field)


def _check_plan(principal: Principal, plan: Any) -> None:
    actions = {"create": "create", "update": "update"}
    for change in plan.changes:
        action = actions.get(change.action)
        resource = RESOURCE_OF_TABLE[change.table]
        if action is not None and not principal.can(resource, action):
            raise _forbidden(resource, action, change.table, change.row_id)


def _diff(plan: Any) -> dict[str, dict[str, Any]]:
    tables: dict[str, dict[str, Any]] = {}
    for change in plan.changes:
        diff = tables.setdefault(
            change.table, {"created": [], "changed": [], "deleted": [], "unchanged": 0, "changed_fields": {}}
        )
        if change.action == "create":
            diff["created"].append(change.row_id)
        elif change.action == "update":
            diff["changed"].append(change.row_id)
            diff["changed_fields"][change.row_id] = list(change.changed_fields)
        else:
            diff["unchanged"] += 1
    return tables


@router.post(
    "/import",
    response_model=ImportResponse,
    summary="Import configuration YAML (dry run by default)",
    dependencies=_read_dependencies()[1:],
    openapi_extra={"requestBody": {"content": {"application/yaml": {"schema": {"type": "string"}}}}},
)
async def import_configuration(
    request: Request,
    session: DbSession,
    principal: Annotated[Principal, require("connectors", "read")],
    dry_run: Annotated[bool, Query(description="Validate and show the plan only")] = True,
) -> dict[str, Any]:
    """Validate the YAML entirely, then (unless ``dry_run``) upsert its rows in one transaction.

    ``422`` lists every error with its table, row id, field and line; nothing is written then.
    """
    from starlette.concurrency import run_in_threadpool

    body = await request.body()
    return await run_in_threadpool(_import, session, principal, body, dry_run)


def _import(session: Any, principal: Principal, body: bytes, dry_run: bool) -> dict[str, Any]:
    from muxly_provider import config_io
    from muxly_provider.db.engine import get_engine
    from muxly_provider.exceptions import MuxlyConfigErrors

    data, lines = _parse(body)
    session.commit()  # end this transaction: the import reads and writes through its own connection
    try:
        plan = config_io.import_config(get_engine(), data or {}, dry_run=True)
        if not dry_run:
            _check_plan(principal, plan)
            _check_credentials(principal, data or {})
            plan = config_io.import_config(get_engine(), data or {}, dry_run=False)
    except MuxlyConfigErrors as exc:
        raise _errors_answer(exc.errors, lines) from None
    return {"dry_run": dry_run, "applied": plan.applied, "tables": _diff(plan)}
