"""An S3-compatible store on loopback for tests: moto's server in a subprocess, reachable over HTTP by any process.

Usage from a test (the fixture starts one server per test session and stops it at the end)::

    from tests.s3_helpers import create_bucket  # the moto_s3 fixture is registered in tests/conftest.py

    def test_something(moto_s3, monkeypatch):
        bucket = create_bucket(moto_s3.endpoint_url)          # a new, uniquely named bucket
        monkeypatch.setenv("AIRFLOW_CONN_MUXLY_S3", moto_s3.connection_json())
        monkeypatch.setenv("AIRFLOW__MUXLY__STAGING_PATH", f"s3://{bucket}/staging")
        monkeypatch.setenv("AIRFLOW__MUXLY__STAGING_CONN_ID", "muxly_s3")

Usage from a harness that starts other processes (Airflow workers, a scheduler)::

    server = start_moto_server()
    try:
        env["AIRFLOW_CONN_MUXLY_S3"] = server.connection_json()   # the workers reach server.endpoint_url
        ...
    finally:
        server.stop()

The server runs ``moto_server`` (moto's CLI) in its own process group on a free port of 127.0.0.1, so Airflow
workers, Celery workers and the test process all see the same buckets; ``stop()`` ends the whole group and is
safe to call twice. moto accepts any access key; the ones below are fixed so a connection can be written down.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

ACCESS_KEY_ID = "muxly-test-access-key"
SECRET_ACCESS_KEY = "muxly-test-secret-key"
REGION = "us-east-1"


def free_port() -> int:
    """A TCP port of 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class MotoServer:
    """A running moto server: its ``endpoint_url`` and ``stop()``."""

    endpoint_url: str
    stop: Callable[[], None] = field(repr=False)
    pid: int = 0

    def connection_json(self, **extra: Any) -> str:
        """An ``aws`` Airflow connection to this server, as JSON for an ``AIRFLOW_CONN_<ID>`` variable."""
        return aws_connection_json(self.endpoint_url, **extra)

    def client(self) -> Any:
        """A boto3 S3 client for this server."""
        return s3_client(self.endpoint_url)


def aws_connection_json(endpoint_url: str, **extra: Any) -> str:
    """JSON of an ``aws`` connection whose extras hold ``endpoint_url``, keys and region (``AIRFLOW_CONN_<ID>``)."""
    extras: dict[str, Any] = {
        "endpoint_url": endpoint_url,
        "aws_access_key_id": ACCESS_KEY_ID,
        "aws_secret_access_key": SECRET_ACCESS_KEY,
        "region_name": REGION,
    }
    extras.update(extra)
    return json.dumps({"conn_type": "aws", "extra": extras})


def s3_client(endpoint_url: str) -> Any:
    """A boto3 S3 client for ``endpoint_url`` with the fixed test keys."""
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=endpoint_url,
        aws_access_key_id=ACCESS_KEY_ID,
        aws_secret_access_key=SECRET_ACCESS_KEY,
        region_name=REGION,
    )


def create_bucket(endpoint_url: str, name: str | None = None) -> str:
    """Create a bucket (``muxly-test-<random>`` unless ``name`` is given) and return its name."""
    bucket = name or f"muxly-test-{uuid.uuid4().hex[:12]}"
    s3_client(endpoint_url).create_bucket(Bucket=bucket)
    return bucket


def list_keys(endpoint_url: str, bucket: str, prefix: str = "") -> list[str]:
    """Every object key of ``bucket`` under ``prefix``, sorted."""
    client = s3_client(endpoint_url)
    keys: list[str] = []
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        keys.extend(item["Key"] for item in page.get("Contents", []))
    return sorted(keys)


def read_object(endpoint_url: str, bucket: str, key: str) -> bytes:
    """The bytes of one object."""
    body = s3_client(endpoint_url).get_object(Bucket=bucket, Key=key)["Body"]
    return bytes(body.read())


def _moto_command(port: int) -> list[str]:
    exe = Path(sys.executable).with_name("moto_server")
    if exe.exists():
        return [str(exe), "-H", "127.0.0.1", "-p", str(port)]
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]


def _reachable(endpoint_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{endpoint_url}/moto-api/", timeout=1):
            return True
    except (urllib.error.URLError, OSError):
        return False


def start_moto_server(timeout: float = 30.0, log_path: Path | None = None) -> MotoServer:
    """Start ``moto_server`` on a free loopback port in its own process group; return once it answers HTTP.

    ``log_path`` receives the server's output (discarded otherwise). Raises ``RuntimeError`` when the server
    does not answer within ``timeout`` seconds (three ports are tried, in case another process took one).
    """
    last_error = ""
    for _ in range(3):
        port = free_port()
        endpoint_url = f"http://127.0.0.1:{port}"
        out = open(log_path, "ab") if log_path else subprocess.DEVNULL  # noqa: SIM115 - closed in stop()
        env = {**os.environ, "MOTO_ALLOW_NONEXISTENT_REGION": "true"}
        proc = subprocess.Popen(
            _moto_command(port), stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env
        )

        def stop(proc: subprocess.Popen[bytes] = proc, out: Any = out) -> None:
            if proc.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGTERM)
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(proc.pid, signal.SIGKILL)
                    proc.wait(timeout=10)
            if out is not subprocess.DEVNULL:
                out.close()

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                last_error = f"moto_server exited with {proc.returncode} on port {port}"
                break
            if _reachable(endpoint_url):
                return MotoServer(endpoint_url=endpoint_url, stop=stop, pid=proc.pid)
            time.sleep(0.1)
        else:
            last_error = f"moto_server did not answer on {endpoint_url} within {timeout} s"
        stop()
    raise RuntimeError(last_error)


@pytest.fixture(scope="session")
def moto_s3() -> Iterator[MotoServer]:
    """A moto S3 server for the whole test session (create a bucket per test with ``create_bucket``)."""
    server = start_moto_server()
    try:
        yield server
    finally:
        server.stop()
