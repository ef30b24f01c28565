"""Muxly on a distributed Airflow: CeleryExecutor, PostgreSQL, Redis, two workers without a shared disk.

The deployment of ``docker-compose.celery.yaml`` (same settings, from :func:`tests.celery_cluster.deployment_env`)
on one machine: a fresh PostgreSQL database holds Airflow's tables and Muxly's schema; Redis (db
:data:`REDIS_DB`, a queue of this run's own) is the broker; ``scheduler``, ``dag-processor``, ``api-server`` and
``triggerer`` share one ``AIRFLOW_HOME``; two ``airflow celery worker`` processes each have their own
``AIRFLOW_HOME`` (and host name, log-server port, ``files_root``), read the DAGs from the repository's ``dags/``
folder (read-only code, as in a baked image) and see nothing of the other machines' disks. Staging and the file
destinations use moto's S3 server on loopback through Airflow connections; the database destinations write to a
second PostgreSQL database. Records come from ``examples/sample_api`` on loopback.

Shown here (each against ``job_executions`` and the destinations):

- extract and a delivery of one run on different workers: every record arrives;
- a worker SIGKILLed in the middle of a database delivery: the task is retried on the other worker, each record
  is in the file and the table exactly once, and the execution row ends ``success`` with the right counts;
- 20 webhook-triggered runs at once spread over both workers: 20 successful execution rows.

Skipped when PostgreSQL or Redis cannot be reached, unless ``MUXLY_REQUIRE_POSTGRES=1`` (CI), which makes it a
failure. Both workers run ``--concurrency 1`` with Airflow's Celery defaults (``task_acks_late``, prefetch
multiplier 1): a busy worker takes no second task, so the deliveries a finished extract queues at once go to
both workers, and 20 runs cannot all land on one.
"""

from __future__ import annotations

import gzip
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, make_url, text

from examples.sample_api import make_server, sample_sales, start_in_thread
from tests.airflow_helpers import DAGS_DIR
from tests.celery_cluster import (
    AIRFLOW,
    FILES_CONN_ID,
    SPEED_SETTINGS,
    Addresses,
    Cluster,
    deployment_env,
    hostname_module,
    secret_env,
    wait_until,
)
from tests.db_helpers import insert_row
from tests.s3_helpers import ACCESS_KEY_ID, SECRET_ACCESS_KEY, MotoServer, free_port, start_moto_server

PG = os.environ.get("MUXLY_TEST_PG_DSN", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
REDIS = os.environ.get("MUXLY_TEST_REDIS", "127.0.0.1:6379")
REDIS_DB = 5
RECORDS = 200
WORKERS = ("worker-a", "worker-b")
OUT_CONN_ID = "live_out"


def _services_or_skip() -> None:
    """Skip (or fail under ``MUXLY_REQUIRE_POSTGRES=1``) when PostgreSQL or Redis is unreachable."""
    import redis

    problems = []
    try:
        engine = create_engine(PG)
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
        engine.dispose()
    except Exception as exc:
        problems.append(f"PostgreSQL at {PG}: {type(exc).__name__}: {str(exc).splitlines()[0]}")
    host, port = REDIS.rsplit(":", 1)
    try:
        redis.Redis(host=host, port=int(port), db=REDIS_DB, socket_connect_timeout=3).ping()
    except Exception as exc:
        problems.append(f"Redis at {REDIS}: {type(exc).__name__}: {exc}")
    if problems:
        message = "the live Celery test needs " + "; ".join(problems)
        if os.environ.get("MUXLY_REQUIRE_POSTGRES") == "1":
            pytest.fail(message + " (MUXLY_REQUIRE_POSTGRES=1)")
        pytest.skip(message)


@dataclass
class Deployment:
    """The running deployment and what the tests read."""

    cluster: Cluster
    env: dict[str, str]
    api_url: str
    muxly: Engine
    airflow: Engine
    out: Engine
    s3: MotoServer
    bucket: str
    api_port: int
    control: dict[str, str]
    workers: dict[str, dict[str, str]]

    def call(self, method: str, path: str, body: Any = None, headers: dict[str, str] | None = None) -> Any:
        token = json.loads(urllib.request.urlopen(f"{self.api_url}/auth/token", timeout=30).read())
        request = urllib.request.Request(
            f"{self.api_url}{path}",
            method=method,
            data=json.dumps(body).encode() if body is not None else None,
            headers={
                "Authorization": f"Bearer {token['access_token']}",
                "Content-Type": "application/json",
                **(headers or {}),
            },
        )
        return json.loads(urllib.request.urlopen(request, timeout=60).read() or b"null")

    def trigger(self, job_id: str) -> str:
        """Start a run through Airflow's REST API; its run id."""
        run = self.call("POST", f"/api/v2/dags/muxly__{job_id}/dagRuns", {"logical_date": None, "conf": {}})
        return str(run["dag_run_id"])

    def executions(self, job_id: str) -> list[dict[str, Any]]:
        with self.muxly.connect() as conn:
            rows = conn.execute(
                text("SELECT * FROM job_executions WHERE job_id = :j ORDER BY start_time"), {"j": job_id}
            ).mappings()
            return [{**r, "result": json.loads(r["result"] or "{}")} for r in rows]

    def finished(self, job_id: str, run_id: str, timeout: float) -> dict[str, Any]:
        """The execution row of ``run_id`` once it is ``success`` or ``failed``."""

        def done() -> dict[str, Any] | None:
            for row in self.executions(job_id):
                if row["result"].get("run_id") == run_id and row["status"] in ("success", "failed"):
                    return row
            return None

        return wait_until(f"run {run_id} of {job_id} to finish", done, timeout, self.cluster)  # type: ignore[no-any-return]

    def tries(self, job_id: str, run_id: str) -> list[dict[str, Any]]:
        """Every try of every task of a run (current and earlier ones) from Airflow's database."""
        query = """
            SELECT task_id, try_number, hostname, state FROM task_instance WHERE dag_id = :d AND run_id = :r
            UNION ALL
            SELECT task_id, try_number, hostname, state FROM task_instance_history
             WHERE dag_id = :d AND run_id = :r
            ORDER BY task_id, try_number
        """
        with self.airflow.connect() as conn:
            rows = conn.execute(text(query), {"d": f"muxly__{job_id}", "r": run_id}).mappings()
            return [dict(r) for r in rows]

    def s3_records(self, prefix: str) -> list[dict[str, Any]]:
        """Every record of the JSONL objects under ``s3://<bucket>/<prefix>``."""
        from tests.s3_helpers import list_keys, read_object

        records = []
        for key in list_keys(self.s3.endpoint_url, self.bucket, prefix):
            data = read_object(self.s3.endpoint_url, self.bucket, key)
            if key.endswith(".gz"):
                data = gzip.decompress(data)
            records += [json.loads(line) for line in data.decode().splitlines() if line]
        return records

    def table(self, sql: str) -> list[Any]:
        with self.out.connect() as conn:
            return list(conn.execute(text(sql)).all())


def _seed(engine: Engine, api_url: str, bucket: str) -> None:
    insert_row(
        engine,
        "connectors",
        id="celery_api",
        name="Sample sales",
        connector_type="api",
        auth_settings={"auth_type": "none"},
        connection_settings={"base_url": api_url, "metrics_path": "data.records"},
    )

    def s3_file(dest_id: str) -> None:
        insert_row(
            engine,
            "destinations",
            id=dest_id,
            name=dest_id,
            destination_type="file",
            config={
                "output_dir": f"s3://{bucket}/out/{dest_id}",
                "conn_id": FILES_CONN_ID,
                "file_format": "jsonl",
            },
        )

    def table(dest_id: str, **config: Any) -> None:
        insert_row(
            engine,
            "destinations",
            id=dest_id,
            name=dest_id,
            destination_type="database",
            config={"conn_id": OUT_CONN_ID, **config},
        )

    for dest_id in ("split_file", "crash_file"):
        s3_file(dest_id)
    table("split_db", table="split_rows", create_table=True, batch_size=50)
    # A table whose inserts take a while (a trigger sleeps per row): 20 batches of 10 rows, ~0.4 s each.
    table(
        "crash_db",
        table="crash_rows",
        batch_size=10,
        column_mapping={"order_id": "order_id", "purchase_amount": "purchase_amount"},
    )
    common = {"connector_id": "celery_api", "action_type": "export", "backoff_strategy": "fixed"}
    insert_row(
        engine,
        "scheduler_jobs",
        id="split",
        name="Two destinations",
        job_type="manual",
        max_retries=0,
        action_params={"destination_ids": ["split_file", "split_db"]},
        **common,
    )
    insert_row(
        engine,
        "scheduler_jobs",
        id="crash",
        name="Survives a lost worker",
        job_type="manual",
        max_retries=1,
        action_params={"destination_ids": ["crash_file", "crash_db"]},
        **common,
    )
    # The webhook job: one task a run (``run_job``: its connector's route has a rule without destinations), so
    # that 20 runs fit the module's time budget; staging between workers is what the other two tests show.
    insert_row(
        engine,
        "connectors",
        id="celery_hook_api",
        name="Sample sales for webhooks",
        connector_type="api",
        auth_settings={"auth_type": "none"},
        connection_settings={"base_url": api_url, "metrics_path": "data.records"},
    )
    insert_row(engine, "routing_rules", id="hook_all", name="Every record")
    insert_row(engine, "routes", id="hook_route", name="Webhook route", connector_id="celery_hook_api")
    insert_row(engine, "route_rules", route_id="hook_route", rule_id="hook_all")
    insert_row(
        engine,
        "scheduler_jobs",
        id="hook",
        name="Webhook",
        job_type="webhook",
        connector_id="celery_hook_api",
        action_type="sync",
        max_retries=0,
        action_params={},
    )
    insert_row(engine, "webhook_triggers", id="celery_hook", job_id="hook", endpoint_path="celery-live")


SLOW_TABLE = """
CREATE TABLE crash_rows (order_id TEXT NOT NULL, purchase_amount DOUBLE PRECISION);
CREATE SEQUENCE crash_rows_written;
CREATE FUNCTION crash_rows_slowly() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(0.04); PERFORM nextval('crash_rows_written'); RETURN NEW; END $$;
CREATE TRIGGER crash_rows_slowly BEFORE INSERT ON crash_rows FOR EACH ROW EXECUTE FUNCTION crash_rows_slowly();
"""
"""The killed delivery's table: each row takes 40 ms, and a sequence (never rolled back) counts the rows
written, also those of a transaction that is not committed yet."""


def _redis_cleanup(queue: str) -> None:
    """Remove this run's queue, its bindings and its unacknowledged messages (the killed worker's)."""
    import redis

    host, port = REDIS.rsplit(":", 1)
    client = redis.Redis(host=host, port=int(port), db=REDIS_DB)
    client.delete(queue, f"_kombu.binding.{queue}", f"_kombu.binding_permanent.{queue}")
    for tag, value in client.hgetall("unacked").items():
        try:
            if json.loads(value)[-1] == queue:
                client.hdel("unacked", tag)
                client.zrem("unacked_index", tag)
        except (ValueError, IndexError, TypeError):
            continue


@pytest.fixture(scope="module")
def deployment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployment]:
    from cryptography.fernet import Fernet

    from muxly_provider.db.engine import build_engine
    from tests.s3_helpers import create_bucket

    _services_or_skip()
    started = time.monotonic()
    root = tmp_path_factory.mktemp("live-celery")
    name = f"live_celery_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    admin = create_engine(PG, isolation_level="AUTOCOMMIT")
    pg = make_url(PG)
    cluster = Cluster(root / "logs")
    api_server = make_server(records=sample_sales(RECORDS))
    start_in_thread(api_server)
    queue = f"muxly_live_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    engines: list[Engine] = []
    s3: MotoServer | None = None
    try:
        with admin.connect() as conn:
            conn.execute(text(f'CREATE DATABASE "{name}"'))
            conn.execute(text(f'CREATE DATABASE "{name}_out"'))
        s3 = start_moto_server(log_path=root / "moto.log")
        bucket = create_bucket(s3.endpoint_url)
        api_port = free_port()
        api_url = f"http://127.0.0.1:{api_port}"
        credentials = pg.username + (f":{pg.password}" if pg.password else "") + "@" if pg.username else ""
        addresses = Addresses(
            postgres=f"{credentials}{pg.host}:{pg.port or 5432}",
            database=name,
            redis=REDIS,
            redis_db=REDIS_DB,
            api_server=api_url,
            public_api=api_url,
            bucket=bucket,
            s3_endpoint=s3.endpoint_url,
        )
        out_conn = {
            "conn_type": "postgres",
            "host": pg.host,
            "port": pg.port or 5432,
            "login": pg.username,
            "password": pg.password,
            "schema": f"{name}_out",
        }
        env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
        env.update(
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
            AIRFLOW__CORE__DAGS_FOLDER=str(DAGS_DIR),
            AIRFLOW__OPERATORS__DEFAULT_QUEUE=queue,
            **deployment_env(addresses, s3_access_key=ACCESS_KEY_ID, s3_secret_key=SECRET_ACCESS_KEY),
            **secret_env(Fernet.generate_key().decode(), uuid.uuid4().hex * 2, uuid.uuid4().hex),
            **SPEED_SETTINGS,
        )
        env[f"AIRFLOW_CONN_{OUT_CONN_ID.upper()}"] = json.dumps(out_conn)

        def machine(home: Path, **extra: str) -> dict[str, str]:
            home.mkdir(parents=True, exist_ok=True)
            return {
                **env,
                "AIRFLOW_HOME": str(home),
                "AIRFLOW__MUXLY__FILES_ROOT": str(home / "files"),
                "AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT": str(free_port()),
                "AIRFLOW__LOGGING__TRIGGER_LOG_SERVER_PORT": str(free_port()),
                **extra,
            }

        control = machine(
            root / "control",
            AIRFLOW__API__HOST="127.0.0.1",
            AIRFLOW__API__PORT=str(api_port),
            AIRFLOW__MUXLY__MACHINE_ROLE="control",
        )
        cluster.run("db-migrate", [AIRFLOW, "db", "migrate"], control)
        muxly = build_engine(
            env["AIRFLOW__MUXLY__SQL_ALCHEMY_CONN"], "muxly", connect_timeout=10, statement_timeout=0
        )
        airflow = create_engine(env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        out = create_engine(pg.set(database=f"{name}_out"))
        engines += [muxly, airflow, out]
        with out.begin() as conn:
            conn.exec_driver_sql(SLOW_TABLE)
        _seed(muxly, f"http://127.0.0.1:{api_server.server_address[1]}/api/v1/sales", bucket)

        for command in ("scheduler", "dag-processor", "triggerer", "api-server"):
            cluster.start(command, [AIRFLOW, *command.split()], control)
        workers = {}
        for worker in WORKERS:
            home = root / worker
            workers[worker] = machine(
                home, AIRFLOW__MUXLY__MACHINE_ROLE=worker, **hostname_module(home, worker)
            )
            cluster.start(worker, _worker_argv(worker, queue), workers[worker])
        deployment = Deployment(
            cluster, env, api_url, muxly, airflow, out, s3, bucket, api_port, control, workers
        )

        def ready() -> bool:
            try:
                dags = deployment.call("GET", "/api/v2/dags?dag_id_pattern=muxly__")["dags"]
            except OSError:
                return False
            online = all(
                "ready." in cluster.processes[w].log_path.read_text(errors="replace") for w in WORKERS
            )
            return online and {d["dag_id"] for d in dags} >= {"muxly__split", "muxly__crash", "muxly__hook"}

        wait_until("the api-server, the three DAGs and both workers", ready, 180, cluster, every=2)
        print(f"live Celery deployment ready in {time.monotonic() - started:.0f} s")
        yield deployment
    except BaseException:
        print(cluster.tails())
        raise
    finally:
        cluster.stop()
        api_server.shutdown()
        if s3 is not None:
            s3.stop()
        for engine in engines:
            engine.dispose()
        _redis_cleanup(queue)
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}_out" WITH (FORCE)'))
        admin.dispose()


def _worker_argv(worker: str, queue: str) -> list[str]:
    return [
        AIRFLOW,
        "celery",
        "worker",
        "--celery-hostname",
        f"{worker}-{os.getpid()}",
        "--concurrency",
        "1",
        "--queues",
        queue,
    ]


@pytest.fixture
def report(deployment: Deployment) -> Iterator[None]:
    """Print the end of every process log when a test fails."""
    try:
        yield
    except BaseException:
        print(deployment.cluster.tails())
        raise


def _hosts(tries: list[dict[str, Any]], task_id: str) -> list[str]:
    return [t["hostname"] for t in tries if t["task_id"] == task_id]


def _doctor(env: dict[str, str]) -> tuple[int, dict[str, Any]]:
    done = subprocess.run(
        [AIRFLOW, "muxly", "doctor", "--output-format", "json"],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
    )
    start = done.stdout.find("{")
    assert start >= 0, (done.returncode, done.stdout[-2000:], done.stderr[-2000:])
    return done.returncode, json.loads(done.stdout[start:])


def test_doctor_on_the_control_machine_and_a_worker(deployment: Deployment) -> None:
    """``airflow muxly doctor`` passes its checks on both kinds of machine, and finds they share every setting
    that must agree except ``files_root``, which this test keeps per machine (no file uses it: they go to S3)."""
    _, control = _doctor(deployment.control)
    code, worker = _doctor(deployment.workers["worker-a"])
    for report in (control, worker):
        checks = {c["name"]: c for c in report["checks"]}
        for name in ("database_url", "database_reachable", "database_migrated", "fernet_key", "staging"):
            assert checks[name]["status"] == "ok", checks[name]
        assert checks["local_paths"]["status"] == "warning", checks["local_paths"]  # files_root is local
    checks = {c["name"]: c for c in worker["checks"]}
    assert code == 1 and checks["settings_agree"]["status"] == "failed", checks["settings_agree"]
    [other] = [m for m in worker["machines"] if m["role"] == "control"]
    assert set(other["differ"]) == {"files_root"}, other


def test_extract_and_delivery_on_different_workers(
    deployment: Deployment, request: pytest.FixtureRequest
) -> None:
    """One run whose extract ran on one worker and a delivery on the other: every record arrives."""
    try:
        run_id = deployment.trigger("split")
        row = deployment.finished("split", run_id, timeout=120)
        assert row["status"] == "success", row
        result = row["result"]
        assert result["records_in"] == RECORDS
        assert {d: result["destinations"][d]["delivered"] for d in ("split_file", "split_db")} == {
            "split_file": RECORDS,
            "split_db": RECORDS,
        }
        tries = deployment.tries("split", run_id)
        [extract_host] = _hosts(tries, "extract")
        delivery_hosts = _hosts(tries, "deliver__split_file") + _hosts(tries, "deliver__split_db")
        assert set(delivery_hosts) <= set(WORKERS), tries
        assert any(host != extract_host for host in delivery_hosts), tries
        expected = sorted(r["order_id"] for r in sample_sales(RECORDS))
        assert sorted(r["order_id"] for r in deployment.s3_records("out/split_file/")) == expected
        assert sorted(r[0] for r in deployment.table("SELECT order_id FROM split_rows")) == expected
    except BaseException:
        print(deployment.cluster.tails())
        raise


def test_twenty_webhook_runs_at_once(deployment: Deployment) -> None:
    """20 concurrent webhook deliveries: 20 runs spread over both workers, 20 successful execution rows."""
    url = f"{deployment.api_url}/muxly/webhooks/celery-live"

    def post(index: int) -> tuple[int, Any]:
        body = json.dumps({"delivery": index}).encode()
        request = urllib.request.Request(
            url, method="POST", data=body, headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as error:
            return error.code, error.read().decode(errors="replace")

    try:
        with ThreadPoolExecutor(max_workers=20) as pool:
            answers = list(pool.map(post, range(20)))
        assert [status for status, _ in answers] == [202] * 20, answers
        run_ids = {str(answer["run_id"]) for _, answer in answers}
        assert len(run_ids) == 20, answers

        def all_finished() -> list[dict[str, Any]] | None:
            rows = [r for r in deployment.executions("hook") if r["result"].get("run_id") in run_ids]
            done = [r for r in rows if r["status"] in ("success", "failed")]
            return rows if len(done) == 20 else None

        rows = wait_until("20 webhook runs to finish", all_finished, 240, deployment.cluster, every=2)
        assert len({r["id"] for r in rows}) == 20
        assert {r["triggered_by"] for r in rows} == {"webhook"}
        assert [r["status"] for r in rows] == ["success"] * 20, [r["result"] for r in rows]
        assert {r["result"]["records_in"] for r in rows} == {RECORDS}
        tries = [t for run_id in run_ids for t in deployment.tries("hook", run_id)]
        assert {t["task_id"] for t in tries} == {"run_job"}
        assert {t["hostname"] for t in tries} == set(WORKERS), tries
    except BaseException:
        print(deployment.cluster.tails())
        raise


def test_worker_killed_mid_delivery(deployment: Deployment) -> None:
    """SIGKILL the worker of a database delivery half-way: the retry on the other worker delivers the rest.

    Every record ends in the table and in the file exactly once; the execution row ends ``success`` with the
    full counts. The killed worker is started again afterwards (a replaced machine).
    """
    from muxly_provider.dag_factory.naming import delivery_task_id

    db_task = delivery_task_id("crash_db")
    cluster = deployment.cluster
    try:
        run_id = deployment.trigger("crash")

        def half_way() -> tuple[str, int] | None:
            running = [
                t["hostname"]
                for t in deployment.tries("crash", run_id)
                if t["task_id"] == db_task and t["state"] == "running" and t["hostname"]
            ]
            written = _rows_written(deployment)
            return (running[0], written) if running and 30 <= written <= RECORDS - 60 else None

        victim, written_before = wait_until(
            "the database delivery half-way", half_way, 150, cluster, every=0.2
        )
        cluster.kill(victim)
        written_at_kill = _rows_written(deployment)
        assert written_before <= written_at_kill < RECORDS, (written_before, written_at_kill)

        row = deployment.finished("crash", run_id, timeout=180)
        tries = deployment.tries("crash", run_id)
        assert row["status"] == "success", (row, tries)
        hosts = [t["hostname"] for t in tries if t["task_id"] == db_task]
        [survivor] = [w for w in WORKERS if w != victim]
        assert hosts == [victim, survivor], tries  # try 1 on the killed worker, try 2 on the other one
        result = row["result"]
        assert result["records_in"] == RECORDS
        assert result["destinations"]["crash_db"]["delivered"] == RECORDS, result
        assert result["destinations"]["crash_file"]["delivered"] == RECORDS, result

        # The first try's rows were written, then rolled back with its connection; the retry wrote all again.
        assert _rows_written(deployment) >= RECORDS + written_at_kill
        expected = sorted(r["order_id"] for r in sample_sales(RECORDS))
        assert sorted(r[0] for r in deployment.table("SELECT order_id FROM crash_rows")) == expected
        assert sorted(r["order_id"] for r in deployment.s3_records("out/crash_file/")) == expected
    except BaseException:
        print(cluster.tails())
        raise
    finally:
        worker = [w for w in WORKERS if w not in cluster.processes]
        for name in worker:
            cluster.start(
                name,
                _worker_argv(name, deployment.env["AIRFLOW__OPERATORS__DEFAULT_QUEUE"]),
                deployment.workers[name],
            )


def _rows_written(deployment: Deployment) -> int:
    """Rows the killed delivery's table received so far, committed or not (its sequence)."""
    [(written, called)] = deployment.table("SELECT last_value, is_called FROM crash_rows_written")
    return int(written) if called else 0
