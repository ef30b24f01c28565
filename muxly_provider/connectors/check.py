"""Connection tests: load a connector row and check its reachability and credentials.

Used by ``airflow muxly connectors test ID`` and by the ``muxly`` connection type's test button.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine

from muxly_provider.connectors.base import ConnectorContext
from muxly_provider.exceptions import MuxlyConfigError, MuxlyError


@dataclass(frozen=True)
class CheckResult:
    """The outcome of a connection test.

    :param ok: whether the connector could reach its source with its credentials
    :param message: what was checked, or what is wrong (never a secret)
    """

    ok: bool
    message: str


def load_connector_context(connector_id: str, engine: Engine | None = None) -> ConnectorContext:
    """The validated, decrypted connector row ``connector_id``.

    :raises MuxlyConfigError: when the row is missing or invalid
    """
    from muxly_provider.config.validation import validate_row
    from muxly_provider.crypto import decrypt_row_secrets
    from muxly_provider.db.snapshot import load_snapshot
    from muxly_provider.runtime.loading import _json

    row = load_snapshot(engine).by_id("connectors").get(connector_id)
    if row is None:
        raise MuxlyConfigError("connectors", connector_id, "id", "an existing connector")
    validate_row("connectors", row)
    parsed: dict[str, Any] = dict(row)
    for column in ("auth_settings", "connection_settings"):
        parsed[column] = _json(parsed.get(column))
    parsed = decrypt_row_secrets("connectors", parsed)
    return ConnectorContext(
        id=str(parsed["id"]),
        name=str(parsed["name"]),
        connector_type=str(parsed["connector_type"]),
        auth=parsed.get("auth_settings") or {},
        settings=parsed.get("connection_settings") or {},
    )


def check_connector(context: ConnectorContext) -> CheckResult:
    """Run the connector type's :meth:`~muxly_provider.connectors.base.MuxlyConnector.test_connection`."""
    from muxly_provider.connectors.registry import get_connector_class

    try:
        connector = get_connector_class(context.connector_type)(context, batch_size=100)
        try:
            return CheckResult(True, connector.test_connection())
        finally:
            connector.close()
    except MuxlyError as exc:
        return CheckResult(False, str(exc))
    except Exception as exc:
        # A bug or an unexpected library error: say which, without its message (it may echo a secret).
        return CheckResult(False, f"connector {context.id!r}: unexpected {type(exc).__name__}")
