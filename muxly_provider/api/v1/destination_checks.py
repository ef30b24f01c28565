"""Destination tests for ``POST /destinations/{id}/test``: reach the target without delivering a record.

One probe per destination type (a registry keyed by type): ``file`` checks that the output folder is inside
``files_root`` and writable; ``database`` connects and looks the table up; ``email`` connects to the SMTP server
(TLS and login as configured) and quits without sending; ``s3`` asks for the bucket (``HeadBucket``); ``webhook``,
``slack`` and ``prometheus`` open a TCP (and TLS for ``https``) connection to the URL's host through the same
address check as every server-side request (no link-local or metadata address) and send nothing: a request
would deliver a message or a metric. Each probe builds the destination with its runtime class, so a config the
run would refuse is refused here with the run's words.

As for connector tests, the answer never carries words of the remote server: a short reason chosen by Muxly
(``connection refused``, ``authentication failed``, ``HTTP``-less ``timed out``, ...), with secrets redacted.
"""

from __future__ import annotations

import os
import shutil
import socket
import ssl
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from muxly_provider.destinations.base import DestinationContext, MuxlyDestination, RunInfo

TEST_SECONDS = 15.0
"""The longest a destination test may take; then it answers ``timed out``."""

_CONNECT_SECONDS = 10.0

Probe = Callable[[MuxlyDestination], str]


class ProbeFailed(Exception):
    """A probe's short reason (already safe to show)."""


def _reason(exc: BaseException) -> str:
    """A short reason for a library error, never its text (which may quote what the server sent)."""
    from muxly_provider.connectors.check import DRIVER_REASONS

    text = f"{exc}".lower()
    for needles, short in DRIVER_REASONS:
        if any(needle in text for needle in needles):
            return short
    if isinstance(exc, TimeoutError | socket.timeout):
        return "timed out"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    if isinstance(exc, socket.gaierror):
        return "name not resolved"
    if isinstance(exc, ssl.SSLError):
        return "TLS handshake failed"
    return f"failed ({type(exc).__name__})"


def _file(destination: MuxlyDestination) -> str:
    from muxly_provider.destinations.file import FileDestination

    assert isinstance(destination, FileDestination)
    if destination.remote is not None:
        shutil.rmtree(destination.output_dir, ignore_errors=True)  # the run's local staging folder
        return "object storage output: its location is valid (it is reached at the first delivery)"
    destination._confined()
    folder: Path = destination.output_dir
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
        raise ProbeFailed("output_dir is not writable by the api-server")
    where = "exists and is writable" if existing == folder else "can be created"
    return f"output_dir {where} (the run writes from the workers: check them too)"


def _database(destination: MuxlyDestination) -> str:
    from muxly_provider.destinations.database import DatabaseDestination

    assert isinstance(destination, DatabaseDestination)
    try:
        with destination.engine.connect() as conn:
            columns = destination._reflect(conn)
            conn.rollback()
    except Exception as exc:
        if type(exc).__module__.startswith("muxly_provider"):
            raise
        raise ProbeFailed(_reason(exc)) from None
    finally:
        if destination._engine is not None:
            destination._engine.dispose()
    table = destination.settings.table
    if columns is None:
        return f"connected; table {table!r} does not exist yet (the first delivery creates it)"
    return f"connected; table {table!r} exists with {len(columns)} column(s)"


def _email(destination: MuxlyDestination) -> str:
    import smtplib

    from muxly_provider.destinations.email import EmailDestination
    from muxly_provider.hooks.providers import MuxlyProviderMissingError

    assert isinstance(destination, EmailDestination)
    try:
        hook = destination.smtp_hook()
    except MuxlyProviderMissingError as exc:
        raise ProbeFailed(str(exc)) from None
    try:
        with hook:  # the SMTP provider's hook: connects, STARTTLS and login as configured, then closes
            pass
    except smtplib.SMTPAuthenticationError:
        raise ProbeFailed("authentication failed") from None
    except smtplib.SMTPException as exc:
        raise ProbeFailed(f"the SMTP server refused the session ({type(exc).__name__})") from None
    except OSError as exc:
        raise ProbeFailed(_reason(exc)) from None
    except Exception as exc:  # Airflow's "Unable to connect to smtp server" after a dropped connection
        raise ProbeFailed(f"failed ({type(exc).__name__})") from None
    login = " and logged in" if destination.connection().login else ""
    return f"connected to the SMTP server{login}; no message was sent"


def _s3(destination: MuxlyDestination) -> str:
    from muxly_provider.destinations.s3 import S3Destination

    assert isinstance(destination, S3Destination)
    bucket = destination.bucket
    try:
        destination.hook.get_conn().head_bucket(Bucket=bucket)
    except Exception as exc:
        if type(exc).__module__.startswith("muxly_provider"):
            raise
        status = getattr(exc, "response", {}).get("ResponseMetadata", {}).get("HTTPStatusCode")
        reasons = {
            403: "access denied",
            404: "the bucket does not exist",
            301: "the bucket is in another region",
        }
        raise ProbeFailed(reasons.get(status, _reason(exc))) from None
    return f"bucket {bucket!r} is reachable; nothing was written"


def _reach(url: str) -> str:
    """Open (and close) a TCP, and for ``https`` a TLS, connection to ``url``'s host; nothing is sent."""
    from muxly_provider.security.network import BlockedAddressError, resolve_allowed

    parts = urlsplit(url)
    host = parts.hostname or ""
    if parts.scheme not in ("http", "https") or not host or "{" in host:
        raise ProbeFailed("the URL is not an http(s) URL with a plain host name")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    try:
        addresses = resolve_allowed(host, port)
    except BlockedAddressError as exc:
        raise ProbeFailed(str(exc)) from None
    except OSError as exc:
        raise ProbeFailed(_reason(exc)) from None
    last: BaseException | None = None
    for address in addresses:
        try:
            with socket.create_connection((address, port), timeout=_CONNECT_SECONDS) as sock:
                if parts.scheme == "https":
                    context = ssl.create_default_context()
                    with context.wrap_socket(sock, server_hostname=host):
                        pass
            return f"reached {parts.scheme}://{host}:{port}; nothing was sent"
        except OSError as exc:
            last = exc
    raise ProbeFailed(_reason(last) if last is not None else "name not resolved")


def _webhook(destination: MuxlyDestination) -> str:
    from muxly_provider.destinations.webhook import WebhookDestination

    assert isinstance(destination, WebhookDestination)
    return _reach(destination.reach_url())


def _slack(destination: MuxlyDestination) -> str:
    from muxly_provider.destinations.slack import SlackDestination

    assert isinstance(destination, SlackDestination)
    return _reach(destination.webhook_url)


def _prometheus(destination: MuxlyDestination) -> str:
    from muxly_provider.destinations.prometheus import PrometheusDestination

    assert isinstance(destination, PrometheusDestination)
    return _reach(destination.gateway()[0])


PROBES: dict[str, Probe] = {
    "file": _file,
    "database": _database,
    "email": _email,
    "s3": _s3,
    "webhook": _webhook,
    "slack": _slack,
    "prometheus": _prometheus,
}
"""The probe of each destination type."""


def probe_destination(context: DestinationContext) -> str:
    """Build the destination and run its type's probe; return what was checked.

    :raises ProbeFailed: with a short reason
    :raises MuxlyError: when the destination refuses its config (the message names it, without secrets)
    """
    from muxly_provider.destinations.registry import get_destination_class

    run = RunInfo(
        dag_id="muxly__destination_test",
        run_id="destination_test",
        job_id="(test)",
        connector_id="(test)",
        logical_date=datetime.now(UTC),
    )
    probe = PROBES.get(context.destination_type)
    if probe is None:
        raise ProbeFailed(f"no test for destination type {context.destination_type!r}")
    destination = get_destination_class(context.destination_type)(context, run)
    try:
        return probe(destination)
    except ProbeFailed as exc:
        from muxly_provider.destinations.base import redact, secret_fragments

        raise ProbeFailed(redact(str(exc), secret_fragments(context.config))) from None


def describe(context: DestinationContext, message: str) -> str:
    """``message`` prefixed with the destination's id and type."""
    return f"destination {context.id!r} ({context.destination_type}): {message}"


def destination_context(row: dict[str, Any]) -> DestinationContext:
    """The runtime context of a stored destination row (secrets decrypted)."""
    from muxly_provider.crypto import decrypt_row_secrets

    plain = decrypt_row_secrets("destinations", row)
    return DestinationContext(
        id=str(plain["id"]),
        name=str(plain["name"]),
        destination_type=str(plain["destination_type"]),
        config=plain.get("config") or {},
    )
