"""Connection tests: load a connector row and check its reachability and credentials.

Used by ``airflow muxly connectors test ID``, by the ``muxly`` connection type's test button and by
``POST /connectors/{id}/test``. A test answers with a short reason, never with words of the remote server
(:func:`safe_test_message`): HTTP connectors already say ``HTTP 401 Unauthorized``, ``connection refused``,
...; a database driver's message (which can quote the first bytes the server sent) becomes a short reason too.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

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


_DRIVER_MESSAGE = re.compile(r"(?P<head>.*?cannot connect: )(?P<kind>\w+): (?P<text>.*)", re.DOTALL)
DRIVER_REASONS: tuple[tuple[tuple[str, ...], str], ...] = (
    (("connection refused",), "connection refused"),
    (("timed out", "timeout expired", "timeout"), "timed out"),
    (("password authentication failed", "access denied", "authentication failed"), "authentication failed"),
    (
        (
            "could not translate host name",
            "name or service not known",
            "nodename nor servname",
            "unknown host",
        ),
        "name not resolved",
    ),
    (("does not exist", "unknown database"), "database does not exist"),
    (("no route to host", "network is unreachable"), "host unreachable"),
)
"""Words of a database driver's error -> the short reason shown instead of its text (which may quote the
server); the API's destination checks use them too."""
_MAX_MESSAGE = 300


def safe_test_message(message: str) -> str:
    """``message`` as a connector test may show it: one line, bounded, no text the remote server chose.

    :param message: the message of a :class:`~muxly_provider.exceptions.MuxlyError` of a connector
    """
    match = _DRIVER_MESSAGE.fullmatch(message.strip())
    if match is not None:
        text = match["text"].lower()
        reason = next(
            (short for needles, short in DRIVER_REASONS if any(n in text for n in needles)),
            f"the server did not complete the handshake ({match['kind']})",
        )
        message = match["head"] + reason
    first = message.strip().splitlines()[0] if message.strip() else message
    return first if len(first) <= _MAX_MESSAGE else first[:_MAX_MESSAGE] + "..."


def load_connector_context(connector_id: str, engine: Engine | None = None) -> ConnectorContext:
    """The validated, decrypted connector row ``connector_id``.

    :raises MuxlyConfigError: when the row is missing or invalid
    """
    from muxly_provider.config.validation import validate_row
    from muxly_provider.db.snapshot import load_snapshot
    from muxly_provider.runtime.loading import check_connections, decrypted_row

    row = load_snapshot(engine).by_id("connectors").get(connector_id)
    if row is None:
        raise MuxlyConfigError("connectors", connector_id, "id", "an existing connector")
    validate_row("connectors", row)
    check_connections("connectors", row)  # [muxly] allowed_conn_ids, as for a run
    parsed = decrypted_row("connectors", dict(row))
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
        return CheckResult(False, safe_test_message(str(exc)))
    except Exception as exc:
        # A bug or an unexpected library error: say which, without its message (it may echo a secret).
        return CheckResult(False, f"connector {context.id!r}: unexpected {type(exc).__name__}")
