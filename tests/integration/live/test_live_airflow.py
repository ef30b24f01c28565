"""Muxly under a real Airflow: ``airflow standalone`` (api-server, scheduler with LocalExecutor, dag-processor,
triggerer) on its own AIRFLOW_HOME. Every way to start a run is mirrored into ``job_executions`` with the right
``triggered_by``; a cleared run counts ``attempt`` up; a killed worker ends ``failed``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from examples.sample_api import make_server, start_in_thread
from tests.airflow_helpers import DAGS_DIR
from tests.db_helpers import insert_row as _insert

AIRFLOW = str(Path(sys.executable).with_name("airflow"))


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def standalone_env(home: Path, dags: Path, api_port: int, fernet: str) -> dict[str, str]:
    """The environment of an ``airflow standalone`` on ``home`` (SQLite for Airflow and Muxly)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__FERNET_KEY=fernet,
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{api_port}/execution/",
        AIRFLOW__API__PORT=str(api_port),
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{api_port}",
        AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(_free_port()),
        AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD="60",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__MUXLY__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'muxly.db'}",
        AIRFLOW__MUXLY__FILES_ROOT=str(home / "files"),
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL="5",
        AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="2",
    )
    return env


@dataclass
class Live:
    base_url: str
    env: dict[str, str]
    engine: Engine
    api_port: int
    process: subprocess.Popen[bytes]

    def call(self, method: str, path: str, body: Any = None) -> Any:
        token = json.loads(urllib.request.urlopen(f"{self.base_url}/auth/token", timeout=10).read())[
            "access_token"
        ]
        request = urllib.request.Request(
            f"{self.base_url}{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        return json.loads(urllib.request.urlopen(request, timeout=30).read() or b"null")

    def cli(self, *args: str) -> str:
        done = subprocess.run([AIRFLOW, *args], env=self.env, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr[-3000:]
        return done.stdout

    def cli_retrying_locks(self, *args: str, attempts: int = 4) -> str:
        """:meth:`cli` for a command that writes Airflow's SQLite file beside the scheduler: a 'database is
        locked' (the scheduler held the writer lock past SQLite's timeout, seen under heavy load) is tried again."""
        for _ in range(attempts - 1):
            done = subprocess.run([AIRFLOW, *args], env=self.env, capture_output=True, text=True, timeout=120)
            if done.returncode == 0:
                return done.stdout
            assert "database is locked" in done.stderr, done.stderr[-3000:]
            time.sleep(2)
        return self.cli(*args)

    def executions(self, job_id: str) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(
                text("SELECT * FROM job_executions WHERE job_id = :j ORDER BY start_time"), {"j": job_id}
            ).mappings()
            return [{**r, "result": json.loads(r["result"] or "{}")} for r in rows]

    def wait_for(self, what: str, check: Callable[[], Any], timeout: float = 120) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError("airflow standalone stopped")
            value = check()
            if value:
                return value
            time.sleep(1)
        raise AssertionError(f"timed out waiting for {what}")


def _seed(engine: Engine, api_url: str, out: Path) -> None:
    _insert(
        engine,
        "connectors",
        id="live_api",
        name="Live API",
        connector_type="api",
        auth_settings={"auth_type": "none"},
        connection_settings={"base_url": api_url, "metrics_path": "data.records"},
    )
    _insert(
        engine,
        "destinations",
        id="live_file",
        name="Live file",
        destination_type="file",
        config={"output_dir": out.name, "file_format": "jsonl"},
    )
    common = {"connector_id": "live_api", "action_type": "export", "max_retries": 0}
    _insert(
        engine,
        "scheduler_jobs",
        id="live_cron",
        name="Every minute",
        job_type="cron",
        schedule="* * * * *",
        action_params={"destination_ids": ["live_file"]},
        **common,
    )
    _insert(
        engine,
        "scheduler_jobs",
        id="live_manual",
        name="Manual",
        job_type="manual",
        action_params={"destination_ids": ["live_file"]},
        **common,
    )
    _insert(
        engine,
        "scheduler_jobs",
        id="live_hang",
        name="Hangs",
        job_type="manual",
        action_params={"destination_ids": ["live_file"], "data_spec": {"query_params": {"delay": "600"}}},
        **common,
    )
    _insert(
        engine,
        "scheduler_jobs",
        id="live_slow",
        name="Takes a few seconds",
        job_type="manual",
        action_params={"destination_ids": ["live_file"], "data_spec": {"query_params": {"delay": "6"}}},
        **common,
    )
    _insert(engine, "webhook_triggers", id="live_hook", job_id="live_manual", endpoint_path="live")
    # Pushed records: the job routes the records its delivery carries (the webhook connector).
    _insert(
        engine,
        "connectors",
        id="live_push",
        name="Pushed orders",
        connector_type="webhook",
        auth_settings={"auth_type": "none"},
        connection_settings={"records_path": "orders"},
    )
    _insert(
        engine,
        "scheduler_jobs",
        id="live_push",
        name="Routes pushed records",
        job_type="webhook",
        connector_id="live_push",
        action_type="export",
        max_retries=0,
        action_params={"destination_ids": ["live_file"]},
    )
    _insert(engine, "webhook_triggers", id="live_push_hook", job_id="live_push", endpoint_path="push")
    _insert(
        engine,
        "scheduler_jobs",
        id="live_after",
        name="After manual",
        job_type="manual",
        action_params={"destination_ids": ["live_file"], "depends_on": "live_manual"},
        **common,
    )


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    from cryptography.fernet import Fernet

    from muxly_provider.db.engine import build_engine
    from muxly_provider.db.migrate import upgrade

    home = tmp_path_factory.mktemp("live-airflow")
    api_port = _free_port()
    env = standalone_env(home, DAGS_DIR, api_port, Fernet.generate_key().decode())
    env.update(
        AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT="20",
        AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL="3",
    )
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    engine = build_engine(env["AIRFLOW__MUXLY__SQL_ALCHEMY_CONN"])
    upgrade(env["AIRFLOW__MUXLY__SQL_ALCHEMY_CONN"])
    server = make_server()
    start_in_thread(server)
    _seed(engine, f"http://127.0.0.1:{server.server_address[1]}/api/v1/sales", home / "files" / "out")
    log = open(home / "standalone.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [AIRFLOW, "standalone"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    live = Live(f"http://127.0.0.1:{api_port}", env, engine, api_port, process)
    try:

        def dags_ready() -> bool:
            try:
                dags = live.call("GET", "/api/v2/dags?dag_id_pattern=muxly__live")["dags"]
            except OSError:
                return False
            return len(dags) == 6

        live.wait_for("the api-server and the six DAGs", dags_ready, timeout=180)
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
        server.shutdown()
        engine.dispose()
        log.close()


def _final(live: Live, job_id: str, count: int, timeout: float = 120) -> list[dict[str, Any]]:
    def done() -> list[dict[str, Any]] | None:
        rows = live.executions(job_id)
        finished = [r for r in rows if r["status"] in ("success", "failed")]
        return rows if len(finished) >= count else None

    return live.wait_for(f"{count} finished runs of {job_id}", done, timeout)  # type: ignore[no-any-return]


def test_scheduled_run(live: Live) -> None:
    [row, *_] = _final(live, "live_cron", 1, timeout=150)
    assert row["status"] == "success"
    assert row["triggered_by"] == "schedule"
    assert row["result"]["records_in"] == 20
    assert row["result"]["destinations"]["live_file"]["delivered"] == 20


def test_every_trigger_is_mirrored(live: Live) -> None:
    live.call("POST", "/api/v2/dags/muxly__live_manual/dagRuns", {"logical_date": None, "conf": {}})
    live.cli("muxly", "jobs", "run", "live_manual")
    hook = urllib.request.Request(f"{live.base_url}/muxly/webhooks/live", method="POST", data=b'{"x": 1}')
    assert urllib.request.urlopen(hook, timeout=30).status == 202
    rows = _final(live, "live_manual", 3)
    assert sorted(r["triggered_by"] for r in rows) == ["api", "manual", "webhook"]
    assert all(r["status"] == "success" and r["attempt"] == 1 for r in rows)
    assert len({r["id"] for r in rows}) == 3
    after = live.wait_for(
        "a dependency run",
        lambda: [r for r in live.executions("live_after") if r["status"] == "success"],
        timeout=120,
    )
    assert {r["triggered_by"] for r in after} == {"dependency"}

    live.cli_retrying_locks(
        "backfill",
        "create",
        "--dag-id",
        "muxly__live_cron",
        "--from-date",
        "2026-01-01T00:00:00",
        "--to-date",
        "2026-01-01T00:01:00",
    )
    live.wait_for(
        "backfill runs",
        lambda: (
            len(
                [
                    r
                    for r in live.executions("live_cron")
                    if r["triggered_by"] == "backfill" and r["status"] == "success"
                ]
            )
            >= 2
        ),
        timeout=150,
    )


def test_webhook_delivery_records_are_routed(live: Live) -> None:
    """A delivery's records (the webhook connector) go through a real run to the file destination."""
    orders = [{"order_id": f"pushed-{i}", "amount": i} for i in range(3)]
    hook = urllib.request.Request(
        f"{live.base_url}/muxly/webhooks/push",
        method="POST",
        data=json.dumps({"orders": orders}).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert urllib.request.urlopen(hook, timeout=30).status == 202
    [row] = _final(live, "live_push", 1)
    assert row["status"] == "success", row
    assert row["triggered_by"] == "webhook"
    assert row["result"]["records_in"] == 3
    assert row["result"]["destinations"]["live_file"]["delivered"] == 3
    out = Path(live.env["AIRFLOW__MUXLY__FILES_ROOT"]) / "out"
    written = [json.loads(line) for path in out.glob("*.jsonl") for line in path.read_text().splitlines()]
    assert sorted(r["order_id"] for r in written if str(r.get("order_id", "")).startswith("pushed-")) == [
        "pushed-0",
        "pushed-1",
        "pushed-2",
    ]


def test_rest_triggered_run_reads_api_while_running(live: Live) -> None:
    """The operator's first write must not say ``manual`` for a run started through Airflow's REST API."""
    live.call("POST", "/api/v2/dags/muxly__live_slow/dagRuns", {"logical_date": None, "conf": {}})
    seen: list[tuple[str, str, float]] = []
    deadline = time.monotonic() + 150
    while time.monotonic() < deadline:
        rows = live.executions("live_slow")
        if rows:
            seen.append((rows[0]["status"], rows[0]["triggered_by"], time.monotonic()))
            if rows[0]["status"] in ("success", "failed"):
                break
        time.sleep(0.2)
    running = [moment for status, _, moment in seen if status == "running"]
    # The task spends >= 6 s in the connector's fetch, after its own first write.
    assert running and running[-1] - running[0] >= 4, seen
    assert {by for _, by, _ in seen} == {"api"}, seen  # from the first write to the listener's last
    assert seen[-1][0] == "success", seen


def test_cleared_run_counts_attempt_up(live: Live) -> None:
    [first, *_] = _final(live, "live_manual", 1)
    run_id = first["result"]["run_id"]
    live.call(
        "POST",
        "/api/v2/dags/muxly__live_manual/clearTaskInstances",
        {"dry_run": False, "dag_run_id": run_id, "only_failed": False, "reset_dag_runs": True},
    )
    live.wait_for(
        "attempt 2",
        lambda: [
            r
            for r in live.executions("live_manual")
            if r["id"] == first["id"] and r["attempt"] == 2 and r["status"] == "success"
        ],
        timeout=120,
    )


def test_killed_worker_ends_failed(live: Live) -> None:
    import psutil

    live.cli("muxly", "jobs", "run", "live_hang")

    def task_process() -> psutil.Process | None:
        for proc in psutil.process_iter(["cmdline"]):
            try:
                conns = proc.net_connections(kind="tcp")
            except (psutil.Error, OSError):
                continue
            if proc.pid != os.getpid() and any(
                c.raddr
                and c.raddr.port != live.api_port
                and c.status == "ESTABLISHED"
                and c.raddr.ip == "127.0.0.1"
                and c.raddr.port == _api_port_of(live)
                for c in conns
            ):
                return proc
        return None

    victim = live.wait_for("the task process talking to the hanging API", task_process, timeout=120)
    supervisor = victim.parent()
    for proc in (supervisor, victim):
        if proc is not None:
            proc.kill()
    [row] = _final(live, "live_hang", 1, timeout=180)
    assert row["status"] == "failed"
    assert row["end_time"] is not None


def _api_port_of(live: Live) -> int:
    with live.engine.connect() as conn:
        settings = conn.execute(
            text("SELECT connection_settings FROM connectors WHERE id = 'live_api'")
        ).scalar()
    return int(json.loads(settings)["base_url"].split(":")[2].split("/")[0])


def test_api_walkthrough_from_admin_to_execution(live: Live) -> None:
    """The README's curl flow: bootstrap an admin, log in, create everything, see the DAG, run it, read it."""
    done = subprocess.run(
        [
            AIRFLOW,
            "muxly",
            "users",
            "create",
            "--username",
            "admin",
            "--email",
            "admin@example.com",
            "--role",
            "admin",
            "--password-stdin",
        ],
        env=live.env,
        input="a long admin password\n",
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    muxly = f"{live.base_url}/muxly/api/v1"

    def call(method: str, path: str, body: Any = None, token: str | None = None) -> tuple[int, Any]:
        request = urllib.request.Request(
            f"{muxly}{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={
                "Content-Type": "application/json",
                **({"Authorization": f"Bearer {token}"} if token else {}),
            },
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    # This Airflow runs with simple_auth_manager_all_admins: its middleware gives every request an Airflow token,
    # which Muxly maps to [muxly] airflow_user_role (viewer): reading works, writing is forbidden.
    assert call("GET", "/connectors")[0] == 200
    assert call("POST", "/connectors", {"id": "x", "name": "x", "connector_type": "api"})[0] == 403
    status, login = call("POST", "/auth/login", {"username": "admin", "password": "a long admin password"})
    assert status == 200, login
    token = login["access_token"]
    with live.engine.connect() as conn:
        settings = conn.execute(
            text("SELECT connection_settings FROM connectors WHERE id = 'live_api'")
        ).scalar()
    api_url = json.loads(settings)["base_url"]
    steps = [
        (
            "/connectors",
            {
                "id": "api-orders",
                "name": "Orders",
                "connector_type": "api",
                "auth_settings": {"auth_type": "bearer", "params": {"token": "walkthrough-secret"}},
                "connection_settings": {"base_url": api_url, "metrics_path": "data.records"},
            },
        ),
        (
            "/destinations",
            {
                "id": "api-big",
                "name": "Big",
                "destination_type": "file",
                "config": {"output_dir": "api-big", "file_format": "jsonl"},
            },
        ),
        (
            "/rules",
            {
                "id": "api-big-rule",
                "name": "Big",
                "condition": "purchase_amount > 1000",
                "destination_ids": ["api-big"],
                "transformations": [
                    {
                        "transformation_type": "rename_field",
                        "config": {"from": "purchase_amount", "to": "revenue"},
                    }
                ],
            },
        ),
        (
            "/routes",
            {
                "id": "api-route",
                "name": "Orders",
                "connector_id": "api-orders",
                "rules": [{"rule_id": "api-big-rule"}],
            },
        ),
        (
            "/jobs",
            {
                "id": "api-sync",
                "name": "Orders sync",
                "job_type": "manual",
                "connector_id": "api-orders",
                "action_type": "sync",
                "max_retries": 0,
            },
        ),
    ]
    for path, body in steps:
        status, answer = call("POST", path, body, token)
        assert status == 201, (path, answer)
        assert "walkthrough-secret" not in json.dumps(answer)
    live.wait_for("the new DAG", lambda: _dag_exists(live, "muxly__api-sync"), timeout=120)
    status, run = call("POST", "/jobs/api-sync/run", {"payload": {"reason": "walkthrough"}}, token)
    assert status == 202, run

    def finished() -> Any:
        _, page = call("GET", "/jobs/api-sync/executions?limit=1", token=token)
        items = page.get("items", page) if isinstance(page, dict) else page
        return items if items and items[0]["status"] in ("success", "failed") else None

    [execution] = live.wait_for("the API run to finish", finished, timeout=120)
    assert execution["status"] == "success", execution
    assert execution["triggered_by"] == "api"
    assert execution["id"] == run["execution_id"]


def _dag_exists(live: Live, dag_id: str) -> bool:
    try:
        live.call("GET", f"/api/v2/dags/{dag_id}")
    except urllib.error.HTTPError:
        return False
    return True
