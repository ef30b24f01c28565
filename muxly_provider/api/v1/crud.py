"""Reads and writes of configuration rows for the API, through the same validation as the CLI and the import.

Every write: fills a missing id, refuses a taken one (``409``), keeps stored secrets sent back as ``"***"``
(and refuses ``"***"`` where nothing is stored, where a host the secret goes to changed, and any ciphertext
that is not the stored value: :func:`muxly_provider.crypto.keep_stored_secrets`), validates the row with
:func:`muxly_provider.config.validation.row_errors` and its references to other rows (``422`` naming the field),
then stores it with secrets encrypted (the import's :func:`muxly_provider.config_io.db_values`). Reads parse
the JSON columns and replace every secret with ``"***"``. A write of a row the DAG factory reads asks Airflow to
re-parse the affected DAG files once the request's transaction committed
(:func:`muxly_provider.dag_factory.reparse.note_write`).
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import ColumnElement, Table, and_, asc, desc, func, select
from sqlalchemy.orm import Session

from muxly_provider.api.errors import MuxlyHTTPError
from muxly_provider.api.v1.common import config_errors_answer, invalid, not_found
from muxly_provider.auth.permissions import Principal
from muxly_provider.config.validation import IGNORED_COLUMNS, primary_key, row_errors
from muxly_provider.config_io import db_values, parse_json_columns, row_references
from muxly_provider.crypto import keep_stored_secrets, path_text, redact_row_secrets
from muxly_provider.dag_factory.reparse import note_write
from muxly_provider.db.models import metadata
from muxly_provider.exceptions import MuxlyConfigError
from muxly_provider.templating import template_problems

Row = dict[str, Any]


def table_of(name: str) -> Table:
    """The SQLAlchemy table ``name`` of Muxly's metadata."""
    return metadata.tables[name]


def _where_key(table: Table, name: str, key: Mapping[str, Any]) -> ColumnElement[bool]:
    return and_(*(table.c[column] == key[column] for column in primary_key(name)))


def load_row(session: Session, name: str, key: str | Mapping[str, Any]) -> Row | None:
    """The stored row (JSON columns parsed, secrets as stored), ``None`` when absent."""
    table = table_of(name)
    where = key if isinstance(key, Mapping) else {primary_key(name)[0]: key}
    found = session.execute(select(table).where(_where_key(table, name, where))).mappings().first()
    return None if found is None else parse_json_columns(name, dict(found))


def public(name: str, row: Mapping[str, Any]) -> Row:
    """``row`` as the API shows it: every secret replaced by ``"***"``."""
    return redact_row_secrets(name, row)


def list_rows(
    session: Session,
    name: str,
    *,
    filters: Mapping[str, Any],
    sort: str,
    order: str,
    limit: int,
    offset: int,
) -> tuple[list[Row], int]:
    """A page of rows of ``name`` matching ``filters`` (equality; ``None`` values are ignored), and the total."""
    table = table_of(name)
    clauses = [table.c[column] == value for column, value in filters.items() if value is not None]
    where = and_(True, *clauses)
    total = int(session.execute(select(func.count()).select_from(table).where(where)).scalar_one())
    direction = desc if order == "desc" else asc
    keys = [direction(table.c[sort]), *(asc(table.c[c]) for c in primary_key(name) if c != sort)]
    rows = session.execute(select(table).where(where).order_by(*keys).limit(limit).offset(offset)).mappings()
    return [parse_json_columns(name, dict(row)) for row in rows], total


def check_row(
    session: Session, name: str, row: Row, stored: Row | None, principal: Principal | None = None
) -> Row:
    """``row`` with stored secrets restored, validated with its references and its confinement.

    :param principal: the writer; without one, inline credentials are refused (see :mod:`muxly_provider.security`)
    :raises MuxlyHTTPError: ``422`` naming the first invalid field (paths outside ``files_root``, Muxly's or
        Airflow's database included), ``403`` for inline credentials without ``credentials:create``
    """
    row = {k: v for k, v in row.items() if k not in IGNORED_COLUMNS}
    row, secret_problems = keep_stored_secrets(name, row, stored)
    if secret_problems:
        try:  # a writer who may not touch inline credentials at all hears that first (403)
            check_confinement(name, row, stored, principal)
        except MuxlyHTTPError as exc:
            if exc.status_code == 403:
                raise
        raise invalid(path_text(secret_problems[0].path), secret_problems[0].expected)
    spec, errors = row_errors(name, row)
    if errors or spec is None:
        raise config_errors_answer(errors)
    row_id = "/".join(str(row.get(c)) for c in primary_key(name))
    problems = [
        MuxlyConfigError(name, row_id, exc.field or "", exc.reason) for exc in template_problems(name, row)
    ]
    for field, target, target_id in row_references(name, spec):
        if load_row(session, target, target_id) is None:
            problems.append(
                MuxlyConfigError(name, row_id, field, f"the id of a row of {target} (got {target_id!r})")
            )
    if problems:
        raise config_errors_answer(problems)
    check_confinement(name, row, stored, principal)
    return row


def check_confinement(name: str, row: Row, stored: Row | None, principal: Principal | None) -> None:
    """Refuse paths outside ``files_root``, Muxly's or Airflow's database, and unpermitted inline credentials.

    :raises MuxlyHTTPError: ``403`` naming the field of an inline credential (checked first), or ``422``
        naming the field
    """
    from muxly_provider.security import row_problems
    from muxly_provider.security.credentials import PERMISSION

    allowed = principal is not None and principal.can(*PERMISSION)
    found = row_problems(name, row, stored, credentials_allowed=allowed)
    row_id = "/".join(str(row.get(c)) for c in primary_key(name))
    for problem in found:
        if problem.kind == "credentials":
            raise MuxlyHTTPError(
                403,
                "forbidden",
                f"field {problem.field!r}: {problem.reason}",
                {"resource": PERMISSION[0], "action": PERMISSION[1], "field": problem.field},
            )
    if found:
        raise config_errors_answer([MuxlyConfigError(name, row_id, p.field, p.reason) for p in found])


def insert_row(session: Session, name: str, row: Row) -> None:
    """Insert a validated row (secrets encrypted, JSON columns as text)."""
    session.execute(table_of(name).insert().values(**db_values(name, row)))
    note_write(session, name, "/".join(str(row.get(c)) for c in primary_key(name)))


def update_row(session: Session, name: str, row: Row) -> None:
    """Update a validated row by its primary key (secrets encrypted, ``updated_at`` set)."""
    table = table_of(name)
    values = db_values(name, row)
    if "updated_at" in table.c:
        values["updated_at"] = func.current_timestamp()
    session.execute(table.update().where(_where_key(table, name, row)).values(**values))
    note_write(session, name, "/".join(str(row.get(c)) for c in primary_key(name)))


def delete_row(session: Session, name: str, key: str) -> bool:
    """Delete the row ``key`` (children go with it: the foreign keys cascade); whether it existed."""
    table = table_of(name)
    result = session.execute(table.delete().where(table.c[primary_key(name)[0]] == key))
    note_write(session, name, key)
    return bool(getattr(result, "rowcount", 0))


def create(
    session: Session, name: str, kind: str, data: Mapping[str, Any], principal: Principal | None = None
) -> Row:
    """Validate and insert a new row; return it as the API shows it.

    :param principal: the writer (see :func:`check_row`)
    :raises MuxlyHTTPError: ``409`` when the id is taken, ``422`` when the row is not valid
    """
    from muxly_provider.api.v1.common import conflict

    row = dict(data)
    if row.get("id") is None:
        row["id"] = uuid.uuid4().hex
    if load_row(session, name, str(row["id"])) is not None:
        raise conflict(f"{kind} {row['id']!r} already exists", "id")
    row = check_row(session, name, row, None, principal)
    insert_row(session, name, row)
    session.flush()
    stored = load_row(session, name, str(row["id"]))
    assert stored is not None
    return public(name, stored)


def update(
    session: Session,
    name: str,
    kind: str,
    key: str,
    changes: Mapping[str, Any],
    principal: Principal | None = None,
) -> Row:
    """Merge ``changes`` into the stored row, validate and store it; return it as the API shows it.

    :param principal: the writer (see :func:`check_row`)
    :raises MuxlyHTTPError: ``404`` when absent, ``422`` when the result is not valid
    """
    stored = load_row(session, name, key)
    if stored is None:
        raise not_found(kind, key)
    row = {**stored, **changes, primary_key(name)[0]: key}
    row = check_row(session, name, row, stored, principal)
    update_row(session, name, row)
    session.flush()
    fresh = load_row(session, name, key)
    assert fresh is not None
    return public(name, fresh)


def get(session: Session, name: str, kind: str, key: str) -> Row:
    """The row ``key`` as the API shows it.

    :raises MuxlyHTTPError: ``404`` when absent
    """
    stored = load_row(session, name, key)
    if stored is None:
        raise not_found(kind, key)
    return public(name, stored)


def remove(session: Session, name: str, kind: str, key: str) -> None:
    """Delete the row ``key``.

    :raises MuxlyHTTPError: ``404`` when absent
    """
    if not delete_row(session, name, key):
        raise not_found(kind, key)
