"""The ``email`` destination: one HTML message per batch through an SMTP server.

Options (REFERENCE.md): ``smtp_host``, ``smtp_port``, ``smtp_username``, ``smtp_password`` (stored
encrypted), ``use_tls``, ``from_email``, ``from_name``, ``to_emails``, ``cc_emails``, ``bcc_emails``,
``subject_template``, ``body_template`` (HTML), ``template_variables`` (name -> path into the record), and
(new) ``conn_id``: an Airflow SMTP connection (host, port, login, password; extras ``disable_ssl`` and
``disable_tls`` as the SMTP provider reads them, ``from_email``), used for whatever the config leaves out.

TLS: port 465 means implicit TLS (``SMTP_SSL``); on any other port ``use_tls`` means ``STARTTLS``. Templates
see the run and batch variables of :mod:`muxly_provider.destinations.templates`; the HTML body escapes values.
Without ``body_template`` the body is an HTML table of the batch. Bcc recipients get the message without
appearing in its headers. Email is not idempotent: an Airflow retry of the run sends its messages again.
"""

from __future__ import annotations

import smtplib
import ssl
from email.headerregistry import Address
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any

from muxly_provider.config.destinations import EmailDestinationConfig
from muxly_provider.destinations.base import MuxlyDestination, Record
from muxly_provider.destinations.templates import (
    TemplateRenderError,
    check_template,
    render,
    template_context,
)

DEFAULT_BODY = """<html><body>
<p>{{ count }} record(s) from <b>{{ connector_id }}</b> (job {{ job_id }}, run {{ run_id }}).</p>
<table border="1" cellpadding="4" cellspacing="0">
<tr>{% for column in columns %}<th>{{ column }}</th>{% endfor %}</tr>
{% for row in records %}<tr>{% for column in columns %}<td>{{ row.get(column, "") }}</td>{% endfor %}</tr>
{% endfor %}</table>
</body></html>
"""


class EmailDestination(MuxlyDestination):
    """Send each batch as an HTML email."""

    destination_type = "email"
    idempotent = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.settings = self.parse_config(EmailDestinationConfig)
        self.body_template = self.settings.body_template or DEFAULT_BODY
        try:
            check_template(self.settings.subject_template)
            check_template(self.body_template)
        except TemplateRenderError as exc:
            raise self.fail(str(exc), retryable=False) from None
        self._server: dict[str, Any] | None = None
        self.sent = 0

    def _server_settings(self) -> dict[str, Any]:
        if self._server is not None:
            return self._server
        s = self.settings
        server: dict[str, Any] = {
            "host": s.smtp_host,
            "port": s.smtp_port,
            "username": s.smtp_username,
            "password": s.smtp_password,
            "ssl": s.smtp_port == 465,
            "starttls": s.use_tls and s.smtp_port != 465,
        }
        if s.conn_id:
            from airflow.sdk import BaseHook

            try:
                conn = BaseHook.get_connection(s.conn_id)
            except Exception as exc:
                raise self.fail(
                    f"Airflow connection {s.conn_id!r} not found ({type(exc).__name__})"
                ) from None
            extra = conn.extra_dejson
            own_host = str(conn.host or "").strip().lower()
            if (
                conn.password
                and not s.smtp_password
                and s.smtp_host
                and s.smtp_host.strip().lower() != own_host
            ):
                # The connection may belong to someone else: its password goes only to its own server.
                raise self.fail(
                    f"smtp_host differs from the host of Airflow connection {s.conn_id!r}, whose password is only "
                    "sent to that host: leave smtp_host unset (or set it to the connection's host)"
                )
            server["host"] = s.smtp_host or conn.host
            if conn.port and not s.smtp_host:
                server["port"] = int(conn.port)
            server["username"] = s.smtp_username or conn.login
            server["password"] = s.smtp_password or conn.password
            if not s.smtp_host:
                server["ssl"] = not _flag(extra.get("disable_ssl"))
                server["starttls"] = not server["ssl"] and not _flag(extra.get("disable_tls"))
        if not server["host"]:
            raise self.fail("no SMTP host (smtp_host or the connection's host)", retryable=False)
        self._server = server
        return server

    def _message(self, records: list[Record]) -> EmailMessage:
        s = self.settings
        columns: dict[str, None] = {}
        for record in records:
            columns.update(dict.fromkeys(record))
        context = template_context(
            self.run,
            destination_id=self.context.id,
            destination_name=self.context.name,
            records=records,
            batch=self.batch_index,
            variables=s.template_variables,
            extra={"columns": list(columns)},
        )
        try:
            subject = " ".join(render(s.subject_template, context).split())
            body = render(self.body_template, context, html=True)
        except TemplateRenderError as exc:
            raise self.fail(str(exc), retryable=False) from None
        message = EmailMessage()
        message["Subject"] = subject
        message["From"] = formataddr((s.from_name or "", s.from_email)) if s.from_name else s.from_email
        message["To"] = ", ".join(s.to_emails)
        if s.cc_emails:
            message["Cc"] = ", ".join(s.cc_emails)
        domain = Address(addr_spec=s.from_email).domain or "muxly.local"
        message["Message-ID"] = make_msgid(f"{self.run.run_key}.{self.batch_index}", domain=domain)
        message.set_content(
            f"{len(records)} record(s) from {self.run.connector_id}; view this message as HTML."
        )
        message.add_alternative(body, subtype="html")
        return message

    def _connect(self) -> smtplib.SMTP:
        server = self._server_settings()
        timeout = 30.0
        if server["ssl"]:
            smtp: smtplib.SMTP = smtplib.SMTP_SSL(
                server["host"], server["port"], timeout=timeout, context=ssl.create_default_context()
            )
        else:
            smtp = smtplib.SMTP(server["host"], server["port"], timeout=timeout)
            if server["starttls"]:
                smtp.starttls(context=ssl.create_default_context())
        if server["username"]:
            smtp.login(server["username"], server["password"] or "")
        return smtp

    def write_batch(self, records: list[Record]) -> None:
        """Send one message holding the batch."""
        message = self._message(records)
        s = self.settings
        recipients = [*s.to_emails, *s.cc_emails, *s.bcc_emails]
        try:
            with self._connect() as smtp:
                smtp.send_message(message, from_addr=s.from_email, to_addrs=recipients)
        except smtplib.SMTPAuthenticationError as exc:
            raise self.fail(f"SMTP login refused ({exc.smtp_code})", retryable=False) from None
        except smtplib.SMTPRecipientsRefused:
            raise self.fail("every recipient was refused", retryable=False) from None
        except smtplib.SMTPResponseException as exc:
            raise self.fail(f"SMTP error {exc.smtp_code}", retryable=exc.smtp_code < 500) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise self.fail(f"SMTP server unreachable ({type(exc).__name__})") from None
        self.batch_index += 1
        self.sent += 1
        self.delivered += len(records)

    def commit(self) -> list[str]:
        """Messages were sent by :meth:`write_batch`."""
        return [f"{self.sent} message(s) to {len(self.settings.to_emails)} recipient(s)"]


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in {"1", "true", "yes", "on"}
