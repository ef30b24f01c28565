"""Connector test messages (:func:`muxly_provider.connectors.check.safe_test_message`): short reasons, one line,
bounded, never the words of the remote server."""

from __future__ import annotations

import pytest

from muxly_provider.connectors.base import ConnectorContext
from muxly_provider.connectors.check import check_connector, safe_test_message


@pytest.mark.parametrize(
    ("driver_text", "reason"),
    [
        (
            'OperationalError: connection to server at "h", port 5 failed: Connection refused',
            "connection refused",
        ),
        ("OperationalError: connection to server failed: timeout expired", "timed out"),
        ('OperationalError: FATAL:  password authentication failed for user "u"', "authentication failed"),
        ("OperationalError: (1045, \"Access denied for user 'u'@'h'\")", "authentication failed"),
        ('OperationalError: could not translate host name "nowhere" to address', "name not resolved"),
        ('OperationalError: FATAL:  database "x" does not exist', "database does not exist"),
        (
            "OperationalError: received invalid response to SSL negotiation: Z",
            "the server did not complete the handshake (OperationalError)",
        ),
        (
            "InternalError: Packet sequence number wrong - got 90",
            "the server did not complete the handshake (InternalError)",
        ),
    ],
)
def test_driver_messages_become_short_reasons(driver_text: str, reason: str) -> None:
    assert (
        safe_test_message(f"connector 'd': cannot connect: {driver_text}")
        == f"connector 'd': cannot connect: {reason}"
    )


def test_other_messages_stay_one_bounded_line() -> None:
    assert safe_test_message("connector 'a': GET http://h/x answered HTTP 404 Not Found") == (
        "connector 'a': GET http://h/x answered HTTP 404 Not Found"
    )
    long = safe_test_message("connector 'a': " + "x" * 1000 + "\nsecond line")
    assert len(long) == 303 and "second" not in long


def test_the_cli_check_says_connection_refused() -> None:
    context = ConnectorContext(
        id="d",
        name="d",
        connector_type="database",
        auth={"auth_type": "none"},
        settings={"connection_string": "postgresql+psycopg2://u:p@127.0.0.1:1/db"},
    )
    result = check_connector(context)
    assert (result.ok, result.message) == (False, "connector 'd': cannot connect: connection refused")
