"""How long Muxly's listener holds a real Airflow scheduler while Muxly's database is healthy, stopped, blackholed
or locked, and whether ``airflow muxly executions reconcile`` restores every row missed meanwhile.

One command::

    .venv/bin/python benchmarks/bench_listener.py [--runs 10] [--bound 2]

What runs: ``airflow standalone`` (scheduler, dag-processor, api-server, triggerer; LocalExecutor, Airflow's
metadata on SQLite) in a temporary ``AIRFLOW_HOME``, with Muxly's database a fresh PostgreSQL database
(127.0.0.1:5432) reached through a TCP proxy of this script that can refuse connections (database stopped),
blackhole them (accept, never answer; open connections freeze: a network partition), or forward them. The DAG
folder holds ``--runs`` DAGs named like Muxly's jobs (``muxly__lb_<i>``, a job row each) whose only task is an
``EmptyOperator``: the scheduler finishes it itself, so what is timed is the scheduler's own path through the
listener, not the tasks (a Muxly task writes to Muxly's database itself, bounded by the engine's timeouts).
A plugin's pluggy hook wrapper times every ``on_dag_run_*`` call in the scheduler (all listeners, i.e. Muxly's).
Engine timeouts are off (``db_connect_timeout = db_statement_timeout = 0``) unless ``--engine-timeouts``: the
bound must hold without them.

Phases, each triggering one run of every DAG at once through the REST API and waiting until Airflow finished
them all: ``healthy``, ``stopped`` (connections refused), ``blackhole``, ``locked`` (another connection holds
``LOCK TABLE job_executions IN ACCESS EXCLUSIVE MODE``; released at the phase end), each outage followed by a
healthy phase (so the next outage meets a writer that is not already in outage mode). Printed
per phase: hook calls, max and p95 time in the hooks, the phase's wall time, and the runs whose row is right in
``job_executions`` (status final and equal to Airflow's). Then reconcile runs and the same count is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
PG_ADMIN = os.environ.get("MUXLY_TEST_PG_DSN", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
PG_HOST, PG_PORT = "127.0.0.1", 5432

DAG_FILE = '''"""Airflow DAG file of bench_listener: DAGs named like Muxly's jobs whose only task is a no-op."""
from datetime import datetime

from airflow.providers.standard.operators.empty import EmptyOperator
from airflow.sdk import DAG

for i in range({runs}):
    with DAG(f"muxly__lb_{{i}}", schedule=None, start_date=datetime(2026, 1, 1), catchup=False) as dag:
        EmptyOperator(task_id="noop")
    globals()[dag.dag_id] = dag
'''

TIMER_PLUGIN = '''"""Airflow plugin of bench_listener: times every on_dag_run_* hook call (all listeners) into hooks.jsonl."""
import json
import os
import sys
import time

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin

OUT = os.path.join(os.environ["AIRFLOW_HOME"], "hooks.jsonl")


def _timed(hook, dag_run):
    started = time.perf_counter()
    yield
    seconds = time.perf_counter() - started
    with open(OUT, "a") as out:
        out.write(json.dumps({{"hook": hook, "dag_id": dag_run.dag_id, "run_id": dag_run.run_id,
                              "seconds": seconds, "pid": os.getpid()}}) + "\\n")


@hookimpl(hookwrapper=True)
def on_dag_run_running(dag_run, msg):
    yield from _timed("running", dag_run)


@hookimpl(hookwrapper=True)
def on_dag_run_success(dag_run, msg):
    yield from _timed("success", dag_run)


@hookimpl(hookwrapper=True)
def on_dag_run_failed(dag_run, msg):
    yield from _timed("failed", dag_run)


class BenchTimer(AirflowPlugin):
    name = "bench_listener_timer"
    listeners = [sys.modules[__name__]]
'''


PHASES = (
    ("healthy", "forward"),
    ("stopped", "refuse"),
    ("healthy after stopped", "forward"),
    ("blackhole", "blackhole"),
    ("healthy after blackhole", "forward"),
    ("locked", "locked"),
    ("healthy after locked", "forward"),
)
"""Each outage starts with a writer that a healthy phase left healthy (the first hook waits up to the bound)."""
SETTLE_SECONDS = 5.0


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Proxy:
    """A TCP proxy to PostgreSQL that can forward, refuse (database stopped) or blackhole (partition)."""

    def __init__(self, upstream: tuple[str, int]) -> None:
        self.upstream = upstream
        self.port = free_port()
        self.mode = "forward"
        self._flowing = threading.Event()
        self._flowing.set()
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._held: list[socket.socket] = []
        self._listener: socket.socket | None = None
        self._listen()

    def _listen(self) -> None:
        sock = socket.socket()
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(("127.0.0.1", self.port))
        sock.listen(128)
        self._listener = sock
        threading.Thread(target=self._accept, args=(sock,), daemon=True).start()

    def _accept(self, sock: socket.socket) -> None:
        while True:
            try:
                client, _ = sock.accept()
            except OSError:
                return
            with self._lock:
                if self.mode == "blackhole":
                    self._held.append(client)  # accepted, never answered (until the partition heals)
                    continue
            self._connect(client)

    def _connect(self, client: socket.socket) -> None:
        try:
            server = socket.create_connection(self.upstream, timeout=5)
            server.settimeout(None)
        except OSError:
            client.close()
            return
        with self._lock:
            self._sockets += [client, server]
        for src, dst in ((client, server), (server, client)):
            threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                self._flowing.wait()  # a blackhole holds the bytes: both ends wait, as in a partition
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)

    def set_mode(self, mode: str) -> None:
        """``forward``, ``refuse`` (stop listening, reset every connection) or ``blackhole``."""
        with self._lock:
            previous, self.mode = self.mode, mode
            held, self._held = self._held, []
            sockets = self._sockets
            if mode == "refuse":
                self._sockets = []
        if mode == "refuse":
            self._flowing.set()
            if self._listener is not None:
                with contextlib.suppress(OSError):
                    self._listener.shutdown(socket.SHUT_RDWR)
                self._listener.close()
                self._listener = None
            for s in [*sockets, *held]:
                with contextlib.suppress(OSError):
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                    s.close()
            return
        if self._listener is None:
            self._listen()
        if mode == "blackhole":
            self._flowing.clear()
            return
        self._flowing.set()
        if previous == "blackhole":
            for client in held:  # the partition heals: the waiting connection attempts go through
                self._connect(client)


def percentile(values: list[float], q: float) -> float:
    if not values:
        return 0.0
    if len(values) == 1:
        return values[0]
    return statistics.quantiles(values, n=100, method="inclusive")[int(q) - 1]


class Bench:
    def __init__(self, args: argparse.Namespace) -> None:
        from cryptography.fernet import Fernet
        from sqlalchemy import create_engine, text

        self.args = args
        self.home = Path(tempfile.mkdtemp(prefix="muxly-bench-listener-"))
        (self.home / "dags").mkdir()
        (self.home / "plugins").mkdir()
        (self.home / "dags" / "bench_listener_dags.py").write_text(DAG_FILE.format(runs=args.runs))
        (self.home / "plugins" / "bench_listener_timer.py").write_text(TIMER_PLUGIN.format())
        self.db = f"muxly_bench_listener_{uuid.uuid4().hex[:8]}"
        self.admin = create_engine(PG_ADMIN, isolation_level="AUTOCOMMIT")
        with self.admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{self.db}"'))
        base = PG_ADMIN.rsplit("/", 1)[0]
        self.direct_url = f"{base}/{self.db}"
        self.proxy = Proxy((PG_HOST, PG_PORT))
        self.proxied_url = f"postgresql+psycopg2://postgres@127.0.0.1:{self.proxy.port}/{self.db}"
        self.api_port = free_port()
        timeouts = "10" if args.engine_timeouts else "0"
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        self.env.update(
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            AIRFLOW_HOME=str(self.home),
            AIRFLOW__CORE__DAGS_FOLDER=str(self.home / "dags"),
            AIRFLOW__CORE__PLUGINS_FOLDER=str(self.home / "plugins"),
            AIRFLOW__CORE__LOAD_EXAMPLES="False",
            AIRFLOW__CORE__EXECUTOR="LocalExecutor",
            AIRFLOW__CORE__FERNET_KEY=Fernet.generate_key().decode(),
            AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
            AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
            AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{self.api_port}/execution/",
            AIRFLOW__API__PORT=str(self.api_port),
            AIRFLOW__API__HOST="127.0.0.1",
            AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{self.api_port}",
            AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(free_port()),
            AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{self.home / 'airflow.db'}",
            AIRFLOW__MUXLY__SQL_ALCHEMY_CONN=self.proxied_url,
            AIRFLOW__MUXLY__DB_CONNECT_TIMEOUT=timeouts,
            AIRFLOW__MUXLY__DB_STATEMENT_TIMEOUT="60" if args.engine_timeouts else "0",
            AIRFLOW__MUXLY__LISTENER_TIMEOUT_SECONDS=str(args.bound),
            AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
            AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="2",
        )
        self.process: subprocess.Popen[bytes] | None = None
        self.token: str | None = None
        self.run_ids: dict[str, list[tuple[str, str]]] = {}

    # -- setup -----------------------------------------------------------------------------------------------
    def start(self) -> None:
        from sqlalchemy import text

        from muxly_provider.db.engine import build_engine
        from muxly_provider.db.migrate import upgrade

        os.environ["AIRFLOW__MUXLY__DB_SCHEMA"] = "muxly"
        upgrade(self.direct_url)
        self.engine = build_engine(self.direct_url, "muxly", connect_timeout=10, statement_timeout=0)
        with self.engine.begin() as conn:
            conn.execute(
                text(
                    "INSERT INTO connectors (id, name, connector_type, auth_settings, connection_settings) "
                    "VALUES ('lb', 'lb', 'api', '{\"auth_type\": \"none\"}', '{\"base_url\": \"http://127.0.0.1:9\"}')"
                )
            )
            for i in range(self.args.runs):
                conn.execute(
                    text(
                        "INSERT INTO scheduler_jobs (id, name, job_type, connector_id, action_type, action_params) "
                        "VALUES (:id, :id, 'manual', 'lb', 'sync', '{}')"
                    ),
                    {"id": f"lb_{i}"},
                )
        subprocess.run([AIRFLOW, "db", "migrate"], env=self.env, check=True, capture_output=True, timeout=600)
        self.log = open(self.home / "standalone.log", "wb")  # noqa: SIM115
        self.process = subprocess.Popen(
            [AIRFLOW, "standalone"],
            env=self.env,
            stdout=self.log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.wait_for("the api-server and the DAGs", self._dags_ready, 300)

    def _dags_ready(self) -> bool:
        try:
            dags = self.call("GET", "/api/v2/dags?dag_id_pattern=muxly__lb&limit=1000")["dags"]
        except OSError:
            return False
        return bool(len(dags) == self.args.runs)

    def stop(self) -> None:
        from sqlalchemy import text

        if self.process is not None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
            self.log.close()
        with contextlib.suppress(Exception):
            self.engine.dispose()
        with self.admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{self.db}" WITH (FORCE)'))
        self.admin.dispose()

    # -- Airflow ---------------------------------------------------------------------------------------------
    def call(self, method: str, path: str, body: Any = None) -> Any:
        base = f"http://127.0.0.1:{self.api_port}"
        if self.token is None:
            self.token = json.loads(urllib.request.urlopen(f"{base}/auth/token", timeout=10).read())[
                "access_token"
            ]
        token = self.token
        request = urllib.request.Request(
            f"{base}{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        return json.loads(urllib.request.urlopen(request, timeout=30).read() or b"null")

    def wait_for(self, what: str, check: Any, timeout: float) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self.process is not None
            if self.process.poll() is not None:
                raise RuntimeError(f"airflow standalone stopped; see {self.home / 'standalone.log'}")
            value = check()
            if value:
                return value
            time.sleep(0.5)
        raise RuntimeError(f"timed out waiting for {what}; see {self.home / 'standalone.log'}")

    def airflow_states(self, runs: list[tuple[str, str]]) -> dict[tuple[str, str], str]:
        states = {}
        for dag_id, run_id in runs:
            states[(dag_id, run_id)] = self.call("GET", f"/api/v2/dags/{dag_id}/dagRuns/{run_id}")["state"]
        return states

    # -- measuring -------------------------------------------------------------------------------------------
    def phase(self, name: str) -> dict[str, Any]:
        runs: list[tuple[str, str]] = []
        started = time.monotonic()
        for i in range(self.args.runs):
            dag_id = f"muxly__lb_{i}"
            run = self.call("POST", f"/api/v2/dags/{dag_id}/dagRuns", {"logical_date": None, "conf": {}})
            runs.append((dag_id, run["dag_run_id"]))
        self.run_ids[name] = runs

        def finished() -> bool:
            return all(s in ("success", "failed") for s in self.airflow_states(runs).values())

        self.wait_for(f"the {name} runs", finished, 300)
        wall = time.monotonic() - started
        time.sleep(
            self.args.bound + 0.5
        )  # the last hook's wait is over; its write is done or in the background
        ids = {r for _, r in runs}
        calls = [c for c in self.hook_calls() if c["run_id"] in ids]
        seconds = sorted(c["seconds"] for c in calls)
        return {
            "phase": name,
            "runs": len(runs),
            "hook_calls": len(calls),
            "max_ms": round(1000 * max(seconds, default=0.0), 1),
            "p95_ms": round(1000 * percentile(seconds, 95), 1),
            "median_ms": round(1000 * (statistics.median(seconds) if seconds else 0.0), 1),
            "phase_seconds": round(wall, 1),
        }

    def hook_calls(self) -> list[dict[str, Any]]:
        path = self.home / "hooks.jsonl"
        if not path.exists():
            return []
        return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]

    def rows_right(self, runs: list[tuple[str, str]]) -> int:
        from sqlalchemy import text

        from muxly_provider.executions.recorder import execution_id

        states = self.airflow_states(runs)
        with self.engine.connect() as conn:
            found = {
                str(r.id): str(r.status)
                for r in conn.execute(
                    text("SELECT id, status FROM job_executions WHERE id = ANY(:ids)"),
                    {"ids": [execution_id(d, r) for d, r in runs]},
                )
            }
        return sum(1 for (d, r), s in states.items() if found.get(execution_id(d, r)) == s)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="DAGs, and runs per phase (one per DAG)")
    parser.add_argument("--bound", type=float, default=2.0, help="[muxly] listener_timeout_seconds")
    parser.add_argument("--engine-timeouts", action="store_true", help="db_connect_timeout 10, statement 60")
    args = parser.parse_args()
    from sqlalchemy import text

    bench = Bench(args)
    results: list[dict[str, Any]] = []
    try:
        bench.start()
        print(
            f"airflow standalone up ({bench.home}); Muxly's database {bench.db} through proxy :{bench.proxy.port}"
        )
        for name, mode in PHASES:
            if mode == "locked":
                locker = bench.engine.connect()
                locker.execute(text("LOCK TABLE job_executions IN ACCESS EXCLUSIVE MODE"))
            else:
                bench.proxy.set_mode(mode)
            try:
                results.append(bench.phase(name))
            finally:
                if mode == "locked":
                    locker.rollback()
                    locker.close()
                bench.proxy.set_mode("forward")
            print(json.dumps(results[-1]), flush=True)
            if mode != "forward":
                # Late writes (the partition healed, the lock released) land before the next phase.
                time.sleep(SETTLE_SECONDS)
        time.sleep(max(5.0, 3 * args.bound))  # let late writes (the partition healed, the lock released) land
        for result in results:
            result["rows_right_before_reconcile"] = bench.rows_right(bench.run_ids[result["phase"]])
        reconcile = subprocess.run(
            [AIRFLOW, "muxly", "executions", "reconcile", "--since", "2000-01-01", "--output-format", "json"],
            env={**bench.env, "AIRFLOW__MUXLY__SQL_ALCHEMY_CONN": bench.proxied_url},
            capture_output=True,
            text=True,
            timeout=300,
        )
        if reconcile.returncode != 0:
            raise RuntimeError(f"reconcile failed: {reconcile.stderr[-3000:]}")
        report = json.loads(reconcile.stdout[reconcile.stdout.index("{") :])
        for result in results:
            result["rows_right_after_reconcile"] = bench.rows_right(bench.run_ids[result["phase"]])
        print()
        print(
            f"bound ([muxly] listener_timeout_seconds) = {args.bound} s; engine timeouts: "
            f"{'on' if args.engine_timeouts else 'off'}; {args.runs} runs per phase, triggered at once"
        )
        header = (
            "phase",
            "hook calls",
            "max ms",
            "p95 ms",
            "median ms",
            "phase s",
            "rows right",
            "after reconcile",
        )
        print(" | ".join(header))
        for r in results:
            print(
                " | ".join(
                    str(v)
                    for v in (
                        r["phase"],
                        r["hook_calls"],
                        r["max_ms"],
                        r["p95_ms"],
                        r["median_ms"],
                        r["phase_seconds"],
                        f"{r['rows_right_before_reconcile']}/{r['runs']}",
                        f"{r['rows_right_after_reconcile']}/{r['runs']}",
                    )
                )
            )
        print(
            f"reconcile: {report['runs_checked']} runs checked, {report['created']} created, "
            f"{report['updated']} updated, {report['skipped']} skipped"
        )
        missing = sum(r["runs"] - r["rows_right_after_reconcile"] for r in results)
        if missing:
            raise SystemExit(f"{missing} run(s) still without a right row after reconcile")
        kept = False
    except BaseException:
        kept = True
        print(f"AIRFLOW_HOME kept for its logs: {bench.home}", file=sys.stderr)
        raise
    finally:
        bench.stop()
        if not kept:
            shutil.rmtree(bench.home, ignore_errors=True)


if __name__ == "__main__":
    main()
