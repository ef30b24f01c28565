"""Real servers on loopback for destination tests: an HTTP recorder (webhooks, Slack's incoming-webhook
protocol), an SMTP server (aiosmtpd), a Prometheus Pushgateway (the real binary) and an S3-compatible server
(moto's ThreadedMotoServer). Shared by tests/unit/destinations and tests/integration/destinations."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import requests


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class HttpRequest:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Answer = int | tuple[int, dict[str, str]]
"""A status, or a status with headers (``(429, {"Retry-After": "1"})``)."""


@dataclass
class Recorder:
    """Records requests; answers with the next of ``statuses`` (then ``then``, 200 by default).

    ``requests`` holds the accepted (2xx) requests; ``arrivals`` the ``time.monotonic()`` of every request.
    """

    url: str
    requests: list[HttpRequest] = field(default_factory=list)
    statuses: list[Answer] = field(default_factory=list)
    slack: bool = False
    then: Answer = 200
    arrivals: list[float] = field(default_factory=list)


@contextmanager
def http_recorder(slack: bool = False, port: int = 0) -> Iterator[Recorder]:
    """An HTTP server that records every request; ``slack=True`` answers ``ok`` as Slack does, and rejects a
    payload without ``text`` with ``400 invalid_payload``."""
    recorder = Recorder(url="")
    lock = threading.Lock()

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return

        def _handle(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            with lock:
                recorder.arrivals.append(time.monotonic())
                answer_spec = recorder.statuses.pop(0) if recorder.statuses else recorder.then
                status, extra = answer_spec if isinstance(answer_spec, tuple) else (answer_spec, {})
                request = HttpRequest(self.command, self.path, dict(self.headers), body)
                if status < 300:
                    recorder.requests.append(request)
            answer = b"ok" if recorder.slack else b'{"accepted": true}'
            if recorder.slack and status < 300:
                try:
                    if "text" not in json.loads(body):
                        status, answer = 400, b"invalid_payload"
                except ValueError:
                    status, answer = 400, b"invalid_payload"
            self.send_response(status)
            for name, value in extra.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(answer)))
            self.end_headers()
            self.wfile.write(answer)

        do_POST = do_PUT = do_PATCH = do_GET = _handle

    server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
    recorder.url = f"http://127.0.0.1:{server.server_address[1]}"
    recorder.slack = slack
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield recorder
    finally:
        server.shutdown()
        server.server_close()


@dataclass
class Mailbox:
    host: str
    port: int
    messages: list[tuple[str, list[str], Message]] = field(default_factory=list)
    logins: list[tuple[str, bool]] = field(default_factory=list)
    """``(login, accepted)`` of each ``AUTH`` the server saw."""


@contextmanager
def smtp_server(credentials: tuple[str, str] | None = None) -> Iterator[Mailbox]:
    """An aiosmtpd SMTP server on loopback collecting ``(envelope from, recipients, message)``; with
    ``credentials`` (login, password) it offers ``AUTH`` (without TLS: loopback) and refuses other logins."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    port = free_port()
    mailbox = Mailbox("127.0.0.1", port)

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        login = data.login.decode() if isinstance(data, LoginPassword) else ""
        ok = isinstance(data, LoginPassword) and (login, data.password.decode()) == credentials
        mailbox.logins.append((login, ok))
        return AuthResult(success=ok, handled=False)  # aiosmtpd answers 535 itself on failure

    # AUTH offered without TLS (loopback); not required, so the tests see whether the client logged in.
    auth: dict[str, Any] = {"authenticator": authenticator, "auth_require_tls": False} if credentials else {}

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            mailbox.messages.append(
                (envelope.mail_from, list(envelope.rcpt_tos), message_from_bytes(envelope.content))
            )
            return "250 OK"

    controller = Controller(Handler(), hostname="127.0.0.1", port=port, **auth)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()


@contextmanager
def pushgateway() -> Iterator[str]:
    """The real Prometheus Pushgateway (Debian package ``prometheus-pushgateway``) on a free loopback port."""
    import pytest

    binary = shutil.which("prometheus-pushgateway") or shutil.which("pushgateway")
    if binary is None:
        pytest.skip("prometheus-pushgateway is not installed (apt-get install prometheus-pushgateway)")
    port = free_port()
    process = subprocess.Popen(
        [binary, f"--web.listen-address=127.0.0.1:{port}", "--persistence.file="],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(100):
            try:
                if requests.get(f"{url}/-/ready", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.05)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)


def pushed_samples(url: str) -> dict[str, float]:
    """The Pushgateway's pushed samples as ``{"name{label=value,...}": value}`` (its own metrics left out)."""
    from prometheus_client.parser import text_string_to_metric_families

    samples: dict[str, float] = {}
    for family in text_string_to_metric_families(requests.get(f"{url}/metrics", timeout=5).text):
        for sample in family.samples:
            labels = {k: v for k, v in sample.labels.items() if k not in {"instance"}}
            if "muxly_destination" not in labels:
                continue
            text = ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
            samples[f"{sample.name}{{{text}}}"] = sample.value
    return samples


@contextmanager
def s3_server() -> Iterator[str]:
    """moto's S3-compatible server on a free loopback port; yields its endpoint URL."""
    from moto.server import ThreadedMotoServer

    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def s3_client(endpoint: str) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="AKIATEST",
        aws_secret_access_key="test-secret-key",
    )


MARIADB_ADMIN_URL = "mysql+pymysql://root@127.0.0.1:3306/test"


@contextmanager
def mariadb_database() -> Iterator[str]:
    """A new MariaDB database on 127.0.0.1:3306 (skips when the server is unreachable); yields its URL."""
    import uuid

    import pytest
    import sqlalchemy as sa

    name = f"muxly_{uuid.uuid4().hex[:8]}"
    admin = sa.create_engine(MARIADB_ADMIN_URL)
    try:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except Exception as exc:
        admin.dispose()
        pytest.skip(f"MariaDB unreachable: {exc}")
    try:
        yield f"mysql://root@127.0.0.1:3306/{name}"
    finally:
        with admin.begin() as conn:
            conn.exec_driver_sql(f"DROP DATABASE {name}")
        admin.dispose()
