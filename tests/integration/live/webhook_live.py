"""Shared setup of the live webhook tests and of ``benchmarks/bench_webhook.py``: ``airflow standalone``
(api-server, scheduler, dag-processor, triggerer, LocalExecutor) on its own AIRFLOW_HOME, DAG folder and SQLite
databases, signed deliveries to ``POST /muxly/webhooks/{path}`` and calls to Airflow's REST API.
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from tests.integration.live.test_live_airflow import AIRFLOW, Live, _free_port, standalone_env


def encrypt_with(fernet: str, secret: str) -> str:
    """``secret`` encrypted as ``muxly_provider.crypto`` does under an Airflow whose fernet key is ``fernet``."""
    from muxly_provider.crypto import encrypt_secret

    os.environ["AIRFLOW__CORE__FERNET_KEY"], previous = fernet, os.environ.get("AIRFLOW__CORE__FERNET_KEY")
    try:
        return encrypt_secret(secret)
    finally:
        if previous is None:
            del os.environ["AIRFLOW__CORE__FERNET_KEY"]
        else:
            os.environ["AIRFLOW__CORE__FERNET_KEY"] = previous


@contextmanager
def standalone(
    home: Path,
    dag_files: dict[str, str],
    seed: Callable[[Any, str], None],
    ready: Callable[[Live], bool],
    what: str,
    timeout: float = 240,
    extra_env: dict[str, str] | None = None,
) -> Iterator[Live]:
    """``airflow standalone`` on ``home`` with ``dag_files`` (name to source) in its DAG folder.

    ``seed(engine, fernet)`` fills Muxly's database before the start; the context is entered once ``ready(live)``
    holds. ``live.out`` is ``home / "out"`` (for the DAGs' files). The process group is stopped on exit, even on
    failure, and the tail of its log printed on failure.
    """
    from cryptography.fernet import Fernet

    from muxly_provider.db.engine import build_engine
    from muxly_provider.db.migrate import upgrade
    from muxly_provider.settings import DEFAULT_SCHEMA

    dags, out = home / "dags", home / "out"
    dags.mkdir()
    out.mkdir()
    for name, source in dag_files.items():
        (dags / name).write_text(source)
    api_port = _free_port()
    fernet = Fernet.generate_key().decode()
    env = standalone_env(home, dags, api_port, fernet)
    env.update(extra_env or {})
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    muxly_url = env["AIRFLOW__MUXLY__SQL_ALCHEMY_CONN"]
    # On PostgreSQL Muxly's tables are in [muxly] db_schema (default "muxly"), as the processes will see them.
    schema = (
        env.get("AIRFLOW__MUXLY__DB_SCHEMA", DEFAULT_SCHEMA) if muxly_url.startswith("postgresql") else None
    )
    engine = build_engine(muxly_url, schema or None)
    upgrade(env["AIRFLOW__MUXLY__SQL_ALCHEMY_CONN"])
    seed(engine, fernet)
    log = open(home / "standalone.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [AIRFLOW, "standalone"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    live = Live(f"http://127.0.0.1:{api_port}", env, engine, api_port, process)
    live.out = out  # type: ignore[attr-defined]
    try:
        live.wait_for(what, lambda: ready(live), timeout=timeout)
        yield live
    except BaseException:
        log.flush()
        print((home / "standalone.log").read_text(errors="replace")[-6000:])
        raise
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        engine.dispose()
        log.close()


def signed_headers(secret: str, body: bytes) -> dict[str, str]:
    """Muxly's signature headers for ``body`` (HMAC-SHA256 of ``timestamp + "." + body``)."""
    stamp = str(int(time.time()))
    digest = hmac.new(secret.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {
        "X-Muxly-Timestamp": stamp,
        "X-Muxly-Signature": f"sha256={digest}",
        "Content-Type": "application/json",
    }


def deliver(base_url: str, secret: str, path: str, payload: Any) -> tuple[int, dict[str, Any]]:
    """A signed delivery of ``payload`` to ``POST /muxly/webhooks/{path}``: (status, JSON answer)."""
    body = json.dumps(payload).encode()
    request = urllib.request.Request(
        f"{base_url}/muxly/webhooks/{path}", method="POST", data=body, headers=signed_headers(secret, body)
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def token(base_url: str) -> str:
    """A JWT from ``/auth/token`` (simple auth manager, all admins)."""
    with urllib.request.urlopen(f"{base_url}/auth/token", timeout=30) as response:
        return str(json.loads(response.read())["access_token"])


def api_call(base_url: str, method: str, path: str, body: Any = None, bearer: str | None = None) -> Any:
    """Airflow's REST API (a fresh token unless ``bearer``); ``None`` while the api-server does not answer in
    time (the machine may be loaded: the caller's wait retries)."""
    try:
        request = urllib.request.Request(
            f"{base_url}{path}",
            method=method,
            data=None if body is None else json.dumps(body).encode(),
            headers={
                "Authorization": f"Bearer {bearer or token(base_url)}",
                "Content-Type": "application/json",
            },
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())
    except (OSError, http.client.HTTPException, ValueError):
        return None
