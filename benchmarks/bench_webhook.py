"""Signed webhook deliveries per second until the run is created, against Airflow's own REST trigger.

    .venv/bin/python benchmarks/bench_webhook.py [--runs 300] [--repeats 3]

Both go through the same api-server app (``airflow.api_fastapi.app.create_app``, in process, SQLite) in the same
run: Muxly's ``POST /muxly/webhooks/{path}`` with an HMAC-signed body (lookup, signature check, DAG run, queued
``job_executions`` row) and Airflow's ``POST /api/v2/dags/{dag_id}/dagRuns`` with a JWT (the same run created by
Airflow's endpoint). Prints runs per second for each, best of --repeats, and the ratio (target: >= 1.0x).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECRET = "bench-secret"


def _setup(home: Path) -> None:
    os.environ.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__MUXLY__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'muxly.db'}",
        AIRFLOW__CORE__FERNET_KEY="Yp4wW0n2qBvF3b2xJx0u6gFqzM7n0rZkWvJc5aQy8sM=",
        AIRFLOW__LOGGING__LOGGING_LEVEL="WARNING",
    )
    airflow = str(Path(sys.executable).with_name("airflow"))
    subprocess.run([airflow, "db", "migrate"], check=True, capture_output=True, env=dict(os.environ))


def _seed() -> None:
    from sqlalchemy import text

    from muxly_provider.crypto import encrypt_secret
    from muxly_provider.db.engine import get_engine

    with get_engine().begin() as conn:
        conn.execute(
            text(
                "INSERT INTO connectors (id, name, connector_type, auth_settings, connection_settings) "
                "VALUES ('c1', 'API', 'api', '{\"auth_type\": \"none\"}', "
                '\'{"base_url": "http://127.0.0.1:9/x"}\')'
            )
        )
        conn.execute(
            text(
                "INSERT INTO destinations (id, name, destination_type, config) "
                "VALUES ('d1', 'Files', 'file', '{\"output_dir\": \"out\"}')"
            )
        )
        conn.execute(
            text(
                "INSERT INTO scheduler_jobs (id, name, job_type, connector_id, action_type, action_params)"
                " VALUES ('hooked', 'Hooked', 'webhook', 'c1', 'export', "
                '\'{"destination_ids": ["d1"]}\')'
            )
        )
        conn.execute(
            text(
                "INSERT INTO webhook_triggers (id, job_id, endpoint_path, secret_key) "
                "VALUES ('t1', 'hooked', 'bench', :secret)"
            ),
            {"secret": encrypt_secret(SECRET)},
        )


def _signed(body: bytes) -> dict[str, str]:
    stamp = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {
        "X-Muxly-Timestamp": stamp,
        "X-Muxly-Signature": f"sha256={digest}",
        "Content-Type": "application/json",
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="muxly-bench-webhook-") as tmp:
        _setup(Path(tmp))
        sys.path.insert(0, str(ROOT))
        _seed()
        from airflow.api_fastapi.app import create_app
        from fastapi.testclient import TestClient

        from tests.airflow_helpers import sync_muxly_dags

        assert "muxly__hooked" in sync_muxly_dags()
        client = TestClient(create_app())
        token = client.get("/auth/token").json()["access_token"]
        airflow_headers = {"Authorization": f"Bearer {token}"}
        counter = iter(range(10**9))

        def webhook() -> None:
            body = json.dumps({"n": next(counter)}).encode()
            response = client.post("/muxly/webhooks/bench", content=body, headers=_signed(body))
            assert response.status_code == 202, response.text

        def rest() -> None:
            body = {"logical_date": None, "conf": {"payload": {"n": next(counter)}}}
            response = client.post("/api/v2/dags/muxly__hooked/dagRuns", json=body, headers=airflow_headers)
            assert response.status_code == 200, response.text

        webhook()
        rest()
        best = {"muxly webhook": 0.0, "airflow REST": 0.0}
        for _ in range(args.repeats):
            for name, call in (("airflow REST", rest), ("muxly webhook", webhook)):
                start = time.perf_counter()
                for _ in range(args.runs):
                    call()
                best[name] = max(best[name], args.runs / (time.perf_counter() - start))
        for name, rate in best.items():
            print(f"{name:>14}: {rate:8.1f} runs/s")
        print(f"{'ratio':>14}: {best['muxly webhook'] / best['airflow REST']:8.2f}x (target >= 1.0x)")


if __name__ == "__main__":
    main()
