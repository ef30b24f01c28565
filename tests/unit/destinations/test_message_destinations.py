"""The email destination against a real SMTP server (aiosmtpd) and the slack destination against a local
server speaking the incoming-webhook protocol."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from muxly_provider.destinations.base import DestinationContext, MuxlyDeliveryError, RunInfo
from muxly_provider.destinations.email import EmailDestination
from muxly_provider.destinations.slack import MAX_ATTACHMENTS, SlackDestination
from tests.integration.destinations.destination_servers import free_port, http_recorder, smtp_server

RUN = RunInfo(
    dag_id="muxly__j",
    run_id="manual__1",
    job_id="j",
    connector_id="sales",
    logical_date=datetime(2026, 11, 26, tzinfo=UTC),
)
RECORDS = [
    {"order_id": "A1", "customer": "<Ann>", "amount": 10},
    {"order_id": "A2", "customer": "Bob", "amount": 3},
]


def _email(**config: Any) -> EmailDestination:
    base = {"from_email": "muxly@example.com", "to_emails": ["ops@example.com"], "use_tls": False}
    ctx = DestinationContext(id="mail", name="Mail", destination_type="email", config={**base, **config})
    return EmailDestination(ctx, RUN)


def test_email_html_message_with_templates_cc_and_bcc() -> None:
    with smtp_server() as mailbox:
        dest = _email(
            smtp_host=mailbox.host,
            smtp_port=mailbox.port,
            from_name="Muxly",
            cc_emails=["cc@example.com"],
            bcc_emails=["hidden@example.com"],
            subject_template="{{count}} orders, first {{order_id}} ({{ who }})",
            body_template="<p>{% for r in records %}{{r.customer}};{% endfor %}</p>",
            template_variables={"who": "customer"},
        )
        dest.write_batch(RECORDS)
        assert dest.commit() == ["1 message(s) to 1 recipient(s)"]
    [(sender, recipients, message)] = mailbox.messages
    assert sender == "muxly@example.com"
    assert recipients == ["ops@example.com", "cc@example.com", "hidden@example.com"]
    assert message["Subject"] == "2 orders, first A1 (<Ann>)"
    assert message["From"] == "Muxly <muxly@example.com>" and message["Cc"] == "cc@example.com"
    assert message["Bcc"] is None
    html = next(p for p in message.walk() if p.get_content_type() == "text/html").get_payload(decode=True)
    assert b"<p>&lt;Ann&gt;;Bob;</p>" in html


def test_email_default_body_is_a_table_and_airflow_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    with smtp_server() as mailbox:
        monkeypatch.setenv(
            "AIRFLOW_CONN_MUXLY_SMTP",
            json.dumps(
                {
                    "conn_type": "smtp",
                    "host": mailbox.host,
                    "port": mailbox.port,
                    "extra": {"disable_ssl": True, "disable_tls": True},
                }
            ),
        )
        dest = _email(conn_id="muxly_smtp")
        dest.write_batch(RECORDS)
    [(_, _, message)] = mailbox.messages
    html = next(p for p in message.walk() if p.get_content_type() == "text/html").get_payload(decode=True)
    assert b"<th>order_id</th>" in html and b"<td>A2</td>" in html
    assert message["Subject"] == "Muxly: 2 records from sales"


def test_email_unreachable_server_is_retryable_and_hides_the_password() -> None:
    dest = _email(
        smtp_host="127.0.0.1", smtp_port=free_port(), smtp_username="u", smtp_password="pw-secret-99"
    )
    with pytest.raises(MuxlyDeliveryError) as info:
        dest.write_batch(RECORDS)
    assert info.value.retryable and "'mail' (email)" in str(info.value) and "pw-secret" not in str(info.value)


def _slack(url: str, **config: Any) -> SlackDestination:
    ctx = DestinationContext(
        id="chat", name="Chat", destination_type="slack", config={"webhook_url": url, **config}
    )
    return SlackDestination(ctx, RUN)


def test_slack_message_with_attachments() -> None:
    with http_recorder(slack=True) as server:
        dest = _slack(
            server.url + "/services/T0/B0/XYZ",
            channel="#sales",
            username="muxly",
            icon=":chart:",
            message_template="{{count}} orders from {{connector_id}}",
            include_data=True,
            color="#36a64f",
        )
        dest.write_batch(RECORDS)
        assert dest.commit() == ["1 message(s)"]
    [request] = server.requests
    assert request.path == "/services/T0/B0/XYZ"
    payload = request.json()
    assert payload["text"] == "2 orders from sales"
    assert (payload["channel"], payload["username"], payload["icon_emoji"]) == ("#sales", "muxly", ":chart:")
    assert payload["attachments"][1]["color"] == "#36a64f"
    assert {"title": "order_id", "value": "A2", "short": True} in payload["attachments"][1]["fields"]


def test_slack_splits_large_batches() -> None:
    records = [{"n": i} for i in range(MAX_ATTACHMENTS + 5)]
    with http_recorder(slack=True) as server:
        dest = _slack(server.url + "/hook", include_data=True)
        dest.write_batch(records)
    assert [len(r.json()["attachments"]) for r in server.requests] == [MAX_ATTACHMENTS, 5]


def test_slack_errors_do_not_quote_the_webhook_url() -> None:
    with http_recorder(slack=True) as server:
        server.statuses = [500, 500]
        dest = _slack(server.url + "/services/T0/B0/SECRETPART", retry_count=1, retry_backoff_seconds=0.01)
        with pytest.raises(MuxlyDeliveryError) as info:
            dest.write_batch(RECORDS)
    assert "HTTP 500" in str(info.value) and "SECRETPART" not in str(info.value)
    with http_recorder(slack=True) as server:
        server.statuses = [404]
        with pytest.raises(MuxlyDeliveryError) as info:
            _slack(server.url + "/services/T0/B0/SECRETPART").write_batch(RECORDS)
    assert not info.value.retryable


def test_slack_honours_retry_after_on_429_and_503() -> None:
    waits: list[float] = []
    with http_recorder(slack=True) as server:
        server.statuses = [(429, {"Retry-After": "2"}), (503, {"Retry-After": "120"}), 500]
        dest = _slack(server.url + "/hook", retry_count=3, retry_backoff_seconds=0.5)
        dest.sleep = waits.append
        dest.write_batch(RECORDS)
        assert dest.commit() == ["1 message(s)"]
    assert waits == [2.0, 60.0, 2.0]  # Retry-After, Retry-After capped at 60 s, then the backoff (0.5 * 2**2)
    assert len(server.requests) == 1 and len(server.arrivals) == 4


def test_slack_429_forever_fails_retryable_after_its_retries() -> None:
    waits: list[float] = []
    with http_recorder(slack=True) as server:
        server.then = (429, {"Retry-After": "1"})
        dest = _slack(server.url + "/services/T0/B0/SECRETPART", retry_count=2)
        dest.sleep = waits.append
        with pytest.raises(MuxlyDeliveryError) as info:
            dest.write_batch(RECORDS)
    assert info.value.retryable and "HTTP 429" in str(info.value) and "3 tries" in str(info.value)
    assert "SECRETPART" not in str(info.value)
    assert waits == [1.0, 1.0] and len(server.arrivals) == 3


def test_email_never_sends_a_connections_password_to_another_smtp_host(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An operator may name an admin's SMTP connection, not redirect its password to a server of its own."""
    with smtp_server() as attacker:
        monkeypatch.setenv(
            "AIRFLOW_CONN_OPS_SMTP",
            json.dumps(
                {"conn_type": "smtp", "host": "mail.internal", "login": "mailer", "password": "SMTP-PW-1"}
            ),
        )
        dest = _email(conn_id="ops_smtp", smtp_host=attacker.host, smtp_port=attacker.port)
        with pytest.raises(MuxlyDeliveryError, match="smtp_host differs") as failure:
            dest.write_batch(RECORDS)
    assert "SMTP-PW-1" not in str(failure.value)
    assert attacker.messages == []
