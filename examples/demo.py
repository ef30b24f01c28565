"""End-to-end demo: migrate, import the sample config, serve the sample API, run the job through Airflow.

Run it with ``make demo`` (which creates the virtual environment first). Everything lives under ``.demo/`` in
the project: Airflow's home on SQLite, Muxly's SQLite database, and the files the job writes.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / ".demo"
HOME = DEMO / "airflow"
PORT = 18765
JOB_ID = "daily_sales_sync"


def _env() -> dict[str, str]:
    DEMO.mkdir(exist_ok=True)
    key_file = DEMO / "fernet.key"
    if not key_file.exists():
        from cryptography.fernet import Fernet

        key_file.write_text(Fernet.generate_key().decode())
    env = dict(os.environ)
    for name in list(env):
        if name.startswith("AIRFLOW__MUXLY__"):
            del env[name]
    env.update(
        AIRFLOW_HOME=str(HOME),
        AIRFLOW__CORE__DAGS_FOLDER=str(ROOT / "dags"),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__FERNET_KEY=key_file.read_text().strip(),
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{HOME / 'airflow.db'}",
    )
    return env


def _airflow(env: dict[str, str], *args: str) -> None:
    command = [str(Path(sys.executable).with_name("airflow")), *args]
    print(f"\n$ airflow {' '.join(args)}", flush=True)
    subprocess.run(command, env=env, check=True)


def _wait_for_api() -> None:
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{PORT}/api/v1/sales", timeout=1)
        except urllib.error.HTTPError:
            return  # 401 without the token: the server is up
        except OSError:
            time.sleep(0.2)
        else:
            return
    raise SystemExit(f"the sample API did not start on port {PORT}")


def _show_results(env: dict[str, str]) -> None:
    os.environ.update(env)
    from sqlalchemy import text

    from muxly_provider.db.engine import get_engine

    with get_engine().connect() as conn:
        rows = (
            conn.execute(
                text(
                    "SELECT id, job_id, status, attempt, triggered_by, start_time, end_time, result "
                    "FROM job_executions WHERE job_id = :job ORDER BY created_at DESC"
                ),
                {"job": JOB_ID},
            )
            .mappings()
            .all()
        )
    if not rows:
        raise SystemExit("no job_executions row was written")
    row = dict(rows[0])
    row["result"] = json.loads(row["result"] or "{}")
    print("\njob_executions row of the run:")
    print(json.dumps(row, indent=2, default=str))
    print("\nfiles written:")
    for destination in row["result"].get("destinations", {}).values():
        for path in destination.get("outputs", []):
            print(f"  {path}")
    if row["status"] != "success":
        raise SystemExit(f"the run ended {row['status']}")


def main() -> None:
    env = _env()
    _airflow(env, "db", "migrate")
    api = subprocess.Popen(
        [
            sys.executable,
            str(ROOT / "examples" / "sample_api.py"),
            "--port",
            str(PORT),
            "--token",
            "demo-token",
        ],
        env=env,
    )
    try:
        _wait_for_api()
        _airflow(env, "muxly", "config", "import", str(ROOT / "examples" / "sample_config.yaml"))
        _airflow(env, "muxly", "jobs", "validate")
        _airflow(env, "dags", "test", f"muxly__{JOB_ID}")
        _show_results(env)
    finally:
        api.terminate()
        api.wait(timeout=10)


if __name__ == "__main__":
    main()
