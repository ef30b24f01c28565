"""The ``email`` destination: one HTML message per batch through the SMTP provider's ``SmtpHook``.

Options (REFERENCE.md): ``smtp_host``, ``smtp_port``, ``smtp_username``, ``smtp_password`` (stored
encrypted), ``use_tls``, ``from_email``, ``from_name``, ``to_emails``, ``cc_emails``, ``bcc_emails``,
``subject_template``, ``body_template`` (HTML), ``template_variables`` (name -> path into the record), and
(new) ``conn_id``: an Airflow SMTP connection (host, port, login, password; the extras the SMTP provider reads:
``disable_ssl``, ``disable_tls``, ``timeout``, ``ssl_context``, ``from_email``, ``auth_type``). With a
``conn_id`` the destination needs only its recipients; inline options override the connection's, except that
the connection's password is only ever sent to the connection's own host.

Both ways end in one ``SmtpHook`` (``airflow-provider-muxly[smtp]``, which Airflow installs with its core):
inline options become an in-memory SMTP connection (:mod:`muxly_provider.hooks.providers`). TLS of inline
options: port 465 means implicit TLS; on any other port ``use_tls`` means ``STARTTLS``. The hook's own retries
are off (``retry_limit`` 0): Muxly retries a failed batch itself (``retry_count``), and a permanent refusal
(bad login, refused recipients, a 5xx answer) is not retried at all.

Templates see the run and batch variables of :mod:`muxly_provider.destinations.templates`; the HTML body escapes
values. Without ``body_template`` the body is an HTML table of the batch. Bcc recipients get the message
without appearing in its headers. Email is not idempotent: an Airflow retry of the run sends its messages again.
"""

from __future__ import annotations

from email.headerregistry import Address
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
from muxly_provider.hooks import providers as provider_hooks

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
            check_template(self.settings.subject_template, field="config.subject_template")
            check_template(self.body_template, field="config.body_template")
        except TemplateRenderError as exc:
            raise self.fail(str(exc), retryable=False) from None
        self._server: Any = None  # the SMTP connection the hook works on, once built
        self._from: str | None = None
        self.sent = 0

    def connection(self) -> Any:
        """The SMTP connection the hook works on: ``conn_id``'s with the inline options over it, or the inline
        options alone."""
        if self._server is not None:
            return self._server
        s = self.settings
        host, login, password = s.smtp_host, s.smtp_username, s.smtp_password
        port: int | None = s.smtp_port
        extra: dict[str, Any] = {
            "disable_ssl": s.smtp_port != 465,
            "disable_tls": not s.use_tls or s.smtp_port == 465,
            "timeout": 30,
        }
        if s.conn_id:
            try:
                conn = provider_hooks.get_connection(s.conn_id)
            except provider_hooks.MuxlyConnectionError as exc:
                raise self.fail(str(exc), retryable=not exc.permanent) from None
            own_host = str(conn.host or "").strip().lower()
            if (
                conn.password
                and not s.smtp_password
                and s.smtp_host
                and s.smtp_host.strip().lower() != own_host
            ):
                # The connection may belong to someone else: its password goes only to its own server.
                raise self.fail(
                    f"smtp_host differs from the host of Airflow connection {s.conn_id!r}, whose password is "
                    "only sent to that host: leave smtp_host unset (or set it to the connection's host)",
                    retryable=False,
                )
            own = dict(conn.extra_dejson)
            if not s.smtp_host:
                host, port = conn.host, conn.port or s.smtp_port
                extra = {"timeout": 30, **own}
            else:
                extra = {**own, **extra}
            login = s.smtp_username or conn.login
            password = s.smtp_password or conn.password
        if not host:
            raise self.fail("no SMTP host (smtp_host or the connection's host)", retryable=False)
        self._from = s.from_email or extra.get("from_email")
        if not self._from:
            raise self.fail(
                f"no sender: set from_email, or the from_email extra of Airflow connection {s.conn_id!r}",
                retryable=False,
            )
        self._secrets = sorted({*self._secrets, str(password or "")} - {""}, key=len, reverse=True)
        extra["retry_limit"] = 0  # Muxly retries whole batches itself (retry_count)
        self._server = provider_hooks.make_connection(
            s.conn_id or f"muxly_email_{self.context.id}",
            "smtp",
            host=host,
            port=int(port) if port else None,
            login=login or None,
            password=password or None,
            extra=extra,
        )
        return self._server

    def smtp_hook(self) -> Any:
        """A new ``SmtpHook`` on :meth:`connection`: ``with`` it connects (TLS and login as configured) and
        closes the session (one per batch).

        :raises provider_hooks.MuxlyProviderMissingError: without the SMTP provider
        """
        module = provider_hooks.import_module("smtp", "email delivery")
        connection = self.connection()
        return provider_hooks.on_connection(module.SmtpHook, connection, smtp_conn_id=connection.conn_id)

    def _message(self, records: list[Record]) -> tuple[str, str, dict[str, str]]:
        """The subject, the HTML body and the extra headers of the batch's message."""
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
            subject = " ".join(render(s.subject_template, context, field="config.subject_template").split())
            body = render(self.body_template, context, html=True, field="config.body_template")
        except TemplateRenderError as exc:
            raise self.fail(str(exc), retryable=False) from None
        domain = Address(addr_spec=str(self._from)).domain or "muxly.local"
        headers = {"Message-ID": make_msgid(f"{self.run.run_key}.{self.batch_index}", domain=domain)}
        return subject, body, headers

    def write_batch(self, records: list[Record]) -> None:
        """Send one message holding the batch."""
        s = self.settings
        try:
            hook = self.smtp_hook()
        except provider_hooks.MuxlyProviderMissingError as exc:
            raise self.fail(str(exc), retryable=False) from None
        subject, body, headers = self._message(records)
        sender = formataddr((s.from_name, str(self._from))) if s.from_name else str(self._from)
        try:
            with hook:
                hook.send_email_smtp(
                    to=list(s.to_emails),
                    cc=list(s.cc_emails) or None,
                    bcc=list(s.bcc_emails) or None,
                    subject=subject,
                    html_content=body,
                    from_email=sender,
                    custom_headers=headers,
                )
        except Exception as exc:
            raise self._failure(exc) from None
        self.batch_index += 1
        self.sent += 1
        self.delivered += len(records)

    def _failure(self, exc: Exception) -> Exception:
        """The delivery error of an exception of the SMTP hook (the SMTP library's, an ``OSError``, Airflow's)."""
        code = getattr(exc, "smtp_code", None)
        kind = type(exc).__name__
        if kind == "SMTPAuthenticationError":
            return self.fail(f"SMTP login refused ({code})", retryable=False)
        if kind == "SMTPRecipientsRefused":
            return self.fail("every recipient was refused", retryable=False)
        if isinstance(code, int):
            return self.fail(f"SMTP error {code}", retryable=code < 500)
        return self.fail(f"SMTP server unreachable ({kind})")

    def commit(self) -> list[str]:
        """Messages were sent by :meth:`write_batch`."""
        return [f"{self.sent} message(s) to {len(self.settings.to_emails)} recipient(s)"]
