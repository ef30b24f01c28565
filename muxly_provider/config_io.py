"""Configuration as code: export Muxly's configuration tables to YAML and import them back.

Format (see ``docs/configuration-as-code.md``): a mapping with ``version: 1`` and one list of rows per table of
:data:`muxly_provider.db.snapshot.CONFIG_TABLES`; JSON columns are nested structures, timestamps are omitted.

Import validates every row first (:func:`muxly_provider.config.validation.row_errors` plus references to rows
of the file or of the database) and raises :class:`~muxly_provider.exceptions.MuxlyConfigErrors` with all the
errors before writing anything. It then upserts by primary key in one transaction (all or nothing), encrypting
secrets. It never deletes rows that the file does not mention. A secret given as ``"***"`` keeps the stored
secret of the same row, so that a redacted export imports back without loss.
"""

from __future__ import annotations

import contextlib
import copy
import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Engine, Executable, and_, func

from muxly_provider.config.jobs import SchedulerJobRowSpec
from muxly_provider.config.rules import RouteRowSpec, condition_expression
from muxly_provider.config.transformations import JoinConfig
from muxly_provider.config.validation import IGNORED_COLUMNS, JSON_COLUMNS, primary_key, row_errors, row_id_of
from muxly_provider.crypto import (
    decrypt_row_secrets,
    encrypt_row_secrets,
    keep_stored_secrets,
    path_text,
    redact_row_secrets,
)
from muxly_provider.db.models import metadata
from muxly_provider.db.snapshot import CONFIG_TABLES, load_snapshot
from muxly_provider.exceptions import MuxlyConfigError, MuxlyConfigErrors
from muxly_provider.security import row_problems as confinement_problems
from muxly_provider.templating import template_problems

FORMAT_VERSION = 1
"""The ``version`` written by :func:`export_config` and accepted by :func:`import_config`."""

FILE = "(file)"
"""The table name used in errors about the file itself."""

Action = Literal["create", "update", "unchanged"]
Row = dict[str, Any]

JSON_DEFAULTS: dict[tuple[str, str], Any] = {
    ("connectors", "auth_settings"): {"auth_type": "none"},
    ("routes", "error_handling"): {"mode": "continue"},
}
"""The value a JSON column absent from a new row (or given as null) gets: what the REST API and the column's
server default give; every other JSON column gets ``{}``. Validation reads an absent JSON column as ``{}`` too,
so the row written is the row validated (never a database NOT NULL error)."""


@dataclass(frozen=True)
class RowChange:
    """What an import does to one row."""

    table: str
    row_id: str
    action: Action
    changed_fields: tuple[str, ...] = ()


@dataclass
class ImportPlan:
    """The changes of an import, in write order; ``applied`` is false for a dry run."""

    changes: list[RowChange] = field(default_factory=list)
    dry_run: bool = False
    applied: bool = False

    def count(self, action: Action) -> int:
        """How many rows get ``action``."""
        return sum(1 for change in self.changes if change.action == action)

    def summary(self) -> str:
        """A human-readable plan: one line per row, then the totals."""
        lines = []
        for change in self.changes:
            fields = f"  ({', '.join(change.changed_fields)})" if change.changed_fields else ""
            lines.append(f"{change.action:<9} {change.table:<20} {change.row_id}{fields}")
        totals = ", ".join(f"{self.count(a)} {a}" for a in ("create", "update", "unchanged"))
        state = "dry run, nothing written" if self.dry_run else ("applied" if self.applied else "not applied")
        lines.append(f"{totals} ({state})")
        return "\n".join(lines)


def parse_json_columns(table: str, row: Mapping[str, Any]) -> Row:
    """``row`` with its JSON columns parsed (text that is not JSON is kept, for validation to report)."""
    parsed = dict(row)
    for column in JSON_COLUMNS.get(table, ()):
        value = parsed.get(column)
        if isinstance(value, str) and value.strip():
            with contextlib.suppress(ValueError):  # validation reports text that is not JSON
                parsed[column] = json.loads(value)
    if table == "routing_rules" and isinstance(parsed.get("condition"), str):
        with contextlib.suppress(ValueError):  # plain text is the expression itself
            parsed["condition"] = json.loads(parsed["condition"])
    return parsed


def stored_rows(engine: Engine) -> dict[str, dict[str, Row]]:
    """The configuration rows in the database by table and row id (JSON columns parsed, no timestamps)."""
    snapshot = load_snapshot(engine)
    return {
        table: {
            str(row_id_of(table, row)): parse_json_columns(
                table, {k: v for k, v in row.items() if k not in IGNORED_COLUMNS}
            )
            for row in snapshot.rows(table)
        }
        for table in CONFIG_TABLES
    }


def export_config(engine: Engine, include_secrets: bool = False) -> dict[str, Any]:
    """Every configuration table as plain data for YAML (rows sorted by primary key).

    :param engine: Muxly's engine
    :param include_secrets: write secrets decrypted instead of ``"***"``
    :raises MuxlySecretError: with ``include_secrets`` when a secret cannot be decrypted
    """
    data: dict[str, Any] = {"version": FORMAT_VERSION}
    for table, rows in stored_rows(engine).items():
        convert = decrypt_row_secrets if include_secrets else redact_row_secrets
        data[table] = [convert(table, row) for row in rows.values()]
    return data


def dump_yaml(data: Mapping[str, Any]) -> str:
    """``data`` as block-style YAML, keys in their given order."""
    import yaml

    return str(yaml.safe_dump(dict(data), sort_keys=False, allow_unicode=True, default_flow_style=False))


def file_rows(data: Mapping[str, Any], errors: list[MuxlyConfigError]) -> dict[str, list[Row]]:
    """The rows of an exported file by table, JSON columns parsed; errors of its shape go to ``errors``.

    :param data: the parsed YAML or JSON of a file written by :func:`export_config`
    :param errors: where errors about the file itself (version, unknown table, rows not mappings) go
    """
    if not isinstance(data, Mapping):
        errors.append(MuxlyConfigError(FILE, None, "(root)", "a mapping of table names to lists of rows"))
        return {}
    version = data.get("version", FORMAT_VERSION)
    if version != FORMAT_VERSION:
        errors.append(MuxlyConfigError(FILE, None, "version", f"{FORMAT_VERSION} (got {version!r})"))
    tables: dict[str, list[Row]] = {}
    for key, rows in data.items():
        if key == "version":
            continue
        if key not in CONFIG_TABLES:
            errors.append(MuxlyConfigError(FILE, None, str(key), f"a table among {', '.join(CONFIG_TABLES)}"))
            continue
        if rows is None:
            continue
        if not isinstance(rows, list) or not all(isinstance(row, Mapping) for row in rows):
            errors.append(MuxlyConfigError(FILE, None, key, "a list of rows (mappings of column to value)"))
            continue
        tables[key] = [parse_json_columns(key, row) for row in rows]
    return tables


def row_references(table: str, spec: Any) -> Iterator[tuple[str, str, str]]:
    """``(field, referenced table, id)`` for each reference of a validated row."""
    simple = {
        "rule_transformations": (("rule_id", "routing_rules"),),
        "rule_destinations": (("rule_id", "routing_rules"), ("destination_id", "destinations")),
        "routes": (("connector_id", "connectors"),),
        "route_rules": (("route_id", "routes"), ("rule_id", "routing_rules")),
        "scheduler_jobs": (("connector_id", "connectors"),),
        "webhook_triggers": (("job_id", "scheduler_jobs"),),
    }
    for column, target in simple.get(table, ()):
        value = getattr(spec, column)
        if value is not None:  # a webhook trigger without a job (sensor-only or asset-only)
            yield column, target, str(value)
    if isinstance(spec, RouteRowSpec):
        handling = spec.error_handling
        for name in ("default_destination_id", "dead_letter_destination_id"):
            value = getattr(handling, name)
            if value:
                yield f"error_handling.{name}", "destinations", value
    if isinstance(spec, SchedulerJobRowSpec):
        params = spec.action_params
        if params.route_id:
            yield "action_params.route_id", "routes", params.route_id
        if params.depends_on:
            yield "action_params.depends_on", "scheduler_jobs", params.depends_on
        for index, dest in enumerate(params.destination_ids):
            yield f"action_params.destination_ids[{index}]", "destinations", dest
        for dest in params.notifications.destination_ids():
            yield "action_params.notifications", "destinations", dest
    config = getattr(spec, "config", None)
    if isinstance(config, JoinConfig) and config.join_connector_id:
        yield "config.join_connector_id", "connectors", config.join_connector_id


def _with_json_defaults(table: str, row: Row) -> Row:
    """``row`` with its absent or null JSON columns set to their defaults (:data:`JSON_DEFAULTS`, else ``{}``)."""
    missing = [column for column in JSON_COLUMNS.get(table, ()) if row.get(column) is None]
    if not missing:
        return row
    return {**row, **{column: copy.deepcopy(JSON_DEFAULTS.get((table, column), {})) for column in missing}}


def _prepare(
    tables: dict[str, list[Row]], stored: dict[str, dict[str, Row]], errors: list[MuxlyConfigError]
) -> dict[str, dict[str, Row]]:
    """Validate every row (with ``***`` secrets restored) and its references; return the rows by id."""
    incoming: dict[str, dict[str, Row]] = {table: {} for table in CONFIG_TABLES}
    specs: list[tuple[str, str, Any]] = []
    for table in CONFIG_TABLES:
        for raw in tables.get(table, []):
            row = {k: v for k, v in raw.items() if k not in IGNORED_COLUMNS}
            row_id = row_id_of(table, row)
            key = str(row_id)
            if row_id is not None and key in incoming[table]:
                errors.append(MuxlyConfigError(table, row_id, "/".join(primary_key(table)), "a unique key"))
                continue
            if key in stored[table]:
                # Columns the file leaves out keep their stored values; their secrets are kept secrets too,
                # so they go through the same host check as '***'.
                row = {**{c: v for c, v in stored[table][key].items() if c not in row}, **row}
            row = _with_json_defaults(table, row)
            row, secret_problems = keep_stored_secrets(table, row, stored[table].get(key))
            for secret_problem in secret_problems:
                errors.append(
                    MuxlyConfigError(table, row_id, path_text(secret_problem.path), secret_problem.expected)
                )
            spec, row_problems = row_errors(table, row)
            errors.extend(row_problems)
            errors.extend(
                MuxlyConfigError(table, row_id, exc.field or "", exc.reason)
                for exc in template_problems(table, row)
            )
            if spec is not None:
                specs.append((table, key, spec))
                # The CLI user is trusted with inline credentials; paths and databases stay confined.
                for problem in confinement_problems(
                    table, row, stored[table].get(key), credentials_allowed=True
                ):
                    errors.append(MuxlyConfigError(table, row_id, problem.field, problem.reason))
            incoming[table][key] = row
    known = {table: set(stored[table]) | set(incoming[table]) for table in CONFIG_TABLES}
    for table, key, spec in specs:
        for field_name, target, target_id in row_references(table, spec):
            if target_id not in known[target]:
                errors.append(
                    MuxlyConfigError(
                        table, key, field_name, f"the id of a row of {target} (got {target_id!r})"
                    )
                )
    owners: dict[str, str] = {}
    for key, row in {**stored["webhook_triggers"], **incoming["webhook_triggers"]}.items():
        endpoint = str(row.get("endpoint_path"))
        if endpoint in owners:
            expected = f"a path no other trigger uses (also used by {owners[endpoint]!r})"
            errors.append(MuxlyConfigError("webhook_triggers", key, "endpoint_path", expected))
        owners[endpoint] = key
    return incoming


def _comparable(table: str, column: str, value: Any) -> Any:
    if table == "routing_rules" and column == "condition":
        try:
            return condition_expression(value if not isinstance(value, str | dict) else json.dumps(value))
        except ValueError:
            return value
    return value


def _changed_fields(table: str, new: Row, old: Row) -> tuple[str, ...]:
    new_plain = decrypt_row_secrets(table, new)
    old_plain = decrypt_row_secrets(table, old)
    return tuple(
        column
        for column in new_plain
        if _comparable(table, column, new_plain[column]) != _comparable(table, column, old_plain.get(column))
    )


def _plan(incoming: dict[str, dict[str, Row]], stored: dict[str, dict[str, Row]]) -> ImportPlan:
    plan = ImportPlan()
    for table in CONFIG_TABLES:
        for key, row in incoming[table].items():
            old = stored[table].get(key)
            if old is None:
                plan.changes.append(RowChange(table, key, "create"))
                continue
            changed = _changed_fields(table, row, old)
            plan.changes.append(RowChange(table, key, "update" if changed else "unchanged", changed))
    return plan


def db_values(table: str, row: Row) -> Row:
    """``row`` as column values: secrets encrypted, JSON columns and conditions as JSON text."""
    values = encrypt_row_secrets(table, copy.deepcopy(row))
    for column in JSON_COLUMNS.get(table, ()):
        if column in values and values[column] is not None and not isinstance(values[column], str):
            values[column] = json.dumps(values[column])
    if table == "routing_rules" and values.get("condition") is not None:
        condition = values["condition"]
        values["condition"] = json.dumps(condition) if isinstance(condition, str | dict) else str(condition)
    return values


def import_config(engine: Engine, data: Mapping[str, Any], dry_run: bool = False) -> ImportPlan:
    """Validate ``data`` entirely, then upsert its rows by primary key in one transaction.

    Rows absent from ``data`` are kept (import never deletes). Columns absent from a row keep their stored
    value (or the column default for a new row). After the commit it asks Airflow to re-parse the DAG files the
    written rows affect (:func:`muxly_provider.dag_factory.reparse.request_reparse`; never fails the import).

    :param engine: Muxly's engine
    :param data: the parsed YAML (see :func:`export_config`)
    :param dry_run: validate and plan only, write nothing
    :raises MuxlyConfigErrors: every problem found; nothing is written
    :raises MuxlySecretError: when secrets must be encrypted and ``[core] fernet_key`` is not set
    """
    errors: list[MuxlyConfigError] = []
    tables = file_rows(data, errors)
    stored = stored_rows(engine)
    incoming = _prepare(tables, stored, errors)
    if errors:
        raise MuxlyConfigErrors(errors)
    plan = _plan(incoming, stored)
    plan.dry_run = dry_run
    if dry_run:
        return plan
    statements: list[Executable] = []
    for change in plan.changes:
        if change.action == "unchanged":
            continue
        table = metadata.tables[change.table]
        values = db_values(change.table, incoming[change.table][change.row_id])
        if change.action == "create":
            statements.append(table.insert().values(**values))
        else:
            row = incoming[change.table][change.row_id]
            where = and_(*(table.c[column] == row[column] for column in primary_key(change.table)))
            if "updated_at" in table.c:
                values["updated_at"] = func.current_timestamp()
            statements.append(table.update().where(where).values(**values))
    with engine.begin() as conn:
        for statement in statements:
            conn.execute(statement)
    plan.applied = True
    from muxly_provider.dag_factory.reparse import request_reparse

    request_reparse((c.table, c.row_id) for c in plan.changes if c.action != "unchanged")
    return plan
