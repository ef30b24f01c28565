"""The email destination against a real SMTP server (aiosmtpd) and the slack destination against a local
server speaking the incoming-webhook protocol."""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from email.header import decode_header, make_header
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


@pytest.mark.parametrize("path", ["conn_id", "inline"])
def test_email_through_the_smtp_hook_with_a_login(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both ways reach the server through the SMTP provider's SmtpHook, which logs in; with ``conn_id``
    nothing but the recipients is configured (the sender is the connection's ``from_email`` extra)."""
    with smtp_server(credentials=("mailer", "SMTP-PW-2")) as mailbox:
        monkeypatch.setenv(
            "AIRFLOW_CONN_MUXLY_MAILER",
            json.dumps(
                {
                    "conn_type": "smtp",
                    "host": mailbox.host,
                    "port": mailbox.port,
                    "login": "mailer",
                    "password": "SMTP-PW-2",
                    "extra": {"disable_ssl": True, "disable_tls": True, "from_email": "reports@example.com"},
                }
            ),
        )
        if path == "conn_id":
            config: dict[str, Any] = {"conn_id": "muxly_mailer", "to_emails": ["ops@example.com"]}
        else:
            config = {
                "smtp_host": mailbox.host,
                "smtp_port": mailbox.port,
                "smtp_username": "mailer",
                "smtp_password": "SMTP-PW-2",
                "use_tls": False,
                "from_email": "reports@example.com",
                "from_name": "Muxly Größe",
                "to_emails": ["ops@example.com"],
            }
        ctx = DestinationContext(id="mail", name="Mail", destination_type="email", config=config)
        dest = EmailDestination(ctx, RUN)
        dest.write_batch(RECORDS)
        dest.write_batch(RECORDS[:1])
        assert dest.commit() == ["2 message(s) to 1 recipient(s)"]
    assert mailbox.logins == [("mailer", True), ("mailer", True)]
    assert [(m[0], m[1]) for m in mailbox.messages] == [("reports@example.com", ["ops@example.com"])] * 2
    message = mailbox.messages[0][2]
    assert message["Subject"] == "Muxly: 2 records from sales"
    assert message["Message-ID"].endswith("@example.com>") and RUN.run_key in message["Message-ID"]
    if path == "inline":
        assert str(make_header(decode_header(message["From"]))) == "Muxly Größe <reports@example.com>"


def test_email_refused_login_is_permanent_and_hides_the_password() -> None:
    with smtp_server(credentials=("mailer", "right")) as mailbox:
        dest = _email(
            smtp_host=mailbox.host,
            smtp_port=mailbox.port,
            smtp_username="mailer",
            smtp_password="wrong-pw-77",
        )
        with pytest.raises(MuxlyDeliveryError, match="SMTP login refused") as info:
            dest.write_batch(RECORDS)
    assert not info.value.retryable and "wrong-pw-77" not in str(info.value)
    # smtplib tries each mechanism the server offers (PLAIN, LOGIN): every one refused, nothing sent.
    assert mailbox.messages == [] and mailbox.logins and set(mailbox.logins) == {("mailer", False)}


def test_email_conn_id_without_a_sender_is_a_permanent_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_BARE_SMTP", json.dumps({"conn_type": "smtp", "host": "127.0.0.1"}))
    ctx = DestinationContext(
        id="mail",
        name="Mail",
        destination_type="email",
        config={"conn_id": "bare_smtp", "to_emails": ["a@b.c"]},
    )
    with pytest.raises(MuxlyDeliveryError, match="no sender: set from_email") as info:
        EmailDestination(ctx, RUN).write_batch(RECORDS)
    assert not info.value.retryable


@pytest.mark.parametrize(
    ("destination_type", "config", "module", "extra"),
    [
        (
            "email",
            {"smtp_host": "127.0.0.1", "from_email": "a@b.c", "to_emails": ["a@b.c"]},
            "airflow.providers.smtp.hooks.smtp",
            "smtp",
        ),
        (
            "slack",
            {"webhook_url": "http://127.0.0.1:9/hook"},
            "airflow.providers.slack.hooks.slack_webhook",
            "slack",
        ),
    ],
)
def test_a_missing_provider_names_the_extra(
    destination_type: str, config: dict[str, Any], module: str, extra: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # as if the provider were not installed
    cls = EmailDestination if destination_type == "email" else SlackDestination
    dest = cls(DestinationContext(id="d", name="D", destination_type=destination_type, config=config), RUN)
    with pytest.raises(MuxlyDeliveryError) as info:
        dest.write_batch(RECORDS)
    assert not info.value.retryable
    assert f"pip install 'airflow-provider-muxly[{extra}]'" in str(info.value)


@pytest.mark.parametrize("how", ["url", "host_and_token"])
def test_slack_conn_id_only_through_the_slack_webhook_hook(how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A ``slackwebhook`` connection as the Slack provider reads it: the password is the whole URL, or the
    token path after ``host``; nothing else is configured."""
    with http_recorder(slack=True) as server:
        if how == "url":
            conn = {"conn_type": "slackwebhook", "password": server.url + "/services/T1/B1/TOKEN-SECRET"}
        else:
            conn = {
                "conn_type": "slackwebhook",
                "host": server.url + "/services",
                "password": "T1/B1/TOKEN-SECRET",
            }
        monkeypatch.setenv("AIRFLOW_CONN_MUXLY_SLACK", json.dumps(conn))
        ctx = DestinationContext(
            id="chat", name="Chat", destination_type="slack", config={"conn_id": "muxly_slack"}
        )
        dest = SlackDestination(ctx, RUN)
        dest.write_batch(RECORDS)
        assert dest.commit() == ["1 message(s)"]
        server.statuses = [403]
        with pytest.raises(MuxlyDeliveryError) as info:
            dest.write_batch(RECORDS)
    [request] = server.requests
    assert request.path == "/services/T1/B1/TOKEN-SECRET" and request.json()["text"] == "2 records from sales"
    assert "HTTP 403 Forbidden (not retried)" in str(info.value) and "TOKEN-SECRET" not in str(info.value)


def test_slack_never_posts_to_a_metadata_address(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_MUXLY_IMDS",
        json.dumps({"conn_type": "slackwebhook", "password": "http://169.254.169.254/latest/meta-data"}),
    )
    for config in ({"conn_id": "muxly_imds"}, {"webhook_url": "http://metadata.google.internal/hook"}):
        dest = SlackDestination(
            DestinationContext(id="c", name="C", destination_type="slack", config=config), RUN
        )
        with pytest.raises(MuxlyDeliveryError, match=r"request refused: .* metadata") as info:
            dest.write_batch(RECORDS)
        assert not info.value.retryable


def test_slack_connection_errors_are_retried_then_retryable() -> None:
    waits: list[float] = []
    dest = _slack(f"http://127.0.0.1:{free_port()}/hook", retry_count=2, retry_backoff_seconds=0.25)
    dest.sleep = waits.append
    with pytest.raises(MuxlyDeliveryError, match=r"connection failed .* after 3 tries") as info:
        dest.write_batch(RECORDS)
    assert info.value.retryable and waits == [0.25, 0.5]
