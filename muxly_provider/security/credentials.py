"""Inline credentials are an admin capability: the permission ``credentials:create``.

An inline credential is a value that lets a run reach another system on its own: a ``connection_string``, an
SMTP password, static S3 keys, a Slack webhook URL, user info in an object-storage URL, and the worker's own
identity (object storage or S3 without ``conn_id`` uses the instance role or the environment's keys). Users
without the permission use ``conn_id`` (an Airflow connection, governed by Airflow's own RBAC).

A write needs the permission only when it introduces or changes an inline credential, or changes where a stored
one is sent (the SMTP host, port or user of a stored password; the endpoint of stored S3 keys; an S3
``endpoint_url`` beside a ``conn_id``, which would send requests signed with the connection's keys elsewhere). Sending
``"***"`` back, or leaving the field out of a ``PATCH``, keeps the stored credential and needs nothing, so an
operator can still rename or re-batch a destination an admin configured.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

from muxly_provider.security.errors import MuxlyConfinementError, Problem
from muxly_provider.security.paths import is_remote

PERMISSION = ("credentials", "create")
"""The ``(resource, action)`` that allows inline credentials."""

Row = Mapping[str, Any]
_Extractor = Callable[[Row], dict[str, tuple[Any, ...]]]
"""Row -> {credential field: (the credential, then what decides where it goes)}."""


def plain_value(value: Any) -> Any:
    """``value`` decrypted when it is an encrypted secret (mappings as sorted tuples, for comparisons)."""
    from muxly_provider.crypto import decrypt_secret, is_encrypted
    from muxly_provider.exceptions import MuxlySecretError

    if isinstance(value, Mapping):
        return tuple(sorted((k, plain_value(v)) for k, v in value.items()))
    if is_encrypted(value):
        try:
            return decrypt_secret(str(value))
        except MuxlySecretError:
            return value
    return value


def json_column(row: Row, column: str) -> Mapping[str, Any]:
    """The JSON column ``column`` of ``row`` as a mapping (parsed when it is text; ``{}`` when not an object)."""
    value = row.get(column)
    if isinstance(value, str):
        import json

        try:
            value = json.loads(value)
        except ValueError:
            return {}
    return value if isinstance(value, Mapping) else {}


def _userinfo(location: Any) -> bool:
    if not isinstance(location, str) or "://" not in location:
        return False
    try:
        return bool(urlsplit(location).username or urlsplit(location).password)
    except ValueError:
        return False


def _remote(location: Any) -> bool:
    if not isinstance(location, str):
        return False
    try:
        return is_remote(location)
    except MuxlyConfinementError:  # an invalid location is reported by the path check
        return False


def _connector(row: Row) -> dict[str, tuple[Any, ...]]:
    settings = json_column(row, "connection_settings")
    found: dict[str, tuple[Any, ...]] = {}
    kind = row.get("connector_type")
    if kind == "database" and settings.get("connection_string"):
        found["connection_settings.connection_string"] = (plain_value(settings["connection_string"]),)
    if kind == "file":
        for key in ("path", "glob"):
            location = settings.get(key)
            if _userinfo(location) or (_remote(location) and not settings.get("conn_id")):
                found[f"connection_settings.{key}"] = (location,)
    return found


def _destination(row: Row) -> dict[str, tuple[Any, ...]]:
    config = json_column(row, "config")
    kind = row.get("destination_type")
    found: dict[str, tuple[Any, ...]] = {}
    if kind == "database" and config.get("connection_string"):
        found["config.connection_string"] = (plain_value(config["connection_string"]),)
    elif kind == "email" and config.get("smtp_password"):
        found["config.smtp_password"] = (
            plain_value(config["smtp_password"]),
            ("config.smtp_host", config.get("smtp_host")),
            ("config.smtp_port", config.get("smtp_port")),
            ("config.smtp_username", config.get("smtp_username")),
        )
    elif kind == "slack" and config.get("webhook_url"):
        found["config.webhook_url"] = (plain_value(config["webhook_url"]),)
    elif kind == "s3" and config.get("credentials"):
        found["config.credentials"] = (
            plain_value(config["credentials"]),
            ("config.endpoint_url", config.get("endpoint_url")),
        )
    elif kind == "s3" and not config.get("conn_id"):
        # The worker's own identity (instance role, environment keys) writes to this bucket.
        found["config.conn_id"] = (
            ("config.bucket", config.get("bucket")),
            ("config.endpoint_url", config.get("endpoint_url")),
        )
    elif kind == "s3" and config.get("endpoint_url"):
        # An endpoint of the row's own receives the requests signed with the connection's keys, and the records.
        found["config.endpoint_url"] = (
            plain_value(config["endpoint_url"]),
            ("config.conn_id", config.get("conn_id")),
        )
    elif kind == "file":
        output_dir = config.get("output_dir")
        if _userinfo(output_dir) or (_remote(output_dir) and not config.get("conn_id")):
            found["config.output_dir"] = (output_dir,)
    return found


_EXTRACTORS: dict[str, _Extractor] = {"connectors": _connector, "destinations": _destination}


def inline_credentials(table: str, row: Row) -> dict[str, tuple[Any, ...]]:
    """The inline credentials of ``row`` by field, each with what decides where it is sent (decrypted)."""
    extractor = _EXTRACTORS.get(table)
    return extractor(row) if extractor is not None else {}


def credential_problems(table: str, row: Row, stored: Row | None) -> list[Problem]:
    """The inline credentials ``row`` introduces or changes compared with ``stored`` (``"***"`` restored)."""
    new = inline_credentials(table, row)
    old = inline_credentials(table, stored) if stored is not None else {}
    problems = []
    for field, value in new.items():
        before = old.get(field)
        if before == value:
            continue
        named = field
        if before is not None and before[:1] == value[:1]:
            # The credential is kept; what changed is where it goes.
            named = next(
                (
                    str(part[0])
                    for part, old_part in zip(value[1:], before[1:], strict=False)
                    if part != old_part and isinstance(part, tuple)
                ),
                field,
            )
        problems.append(
            Problem(
                named,
                "permission create on credentials (inline credentials are for admins; use 'conn_id', an "
                "Airflow connection)",
                "credentials",
            )
        )
    return problems
