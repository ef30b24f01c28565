"""Webhook benchmarks, each against Airflow's own equivalent measured in the same run.

    .venv/bin/python benchmarks/bench_webhook.py [--runs 300] [--repeats 3] [--samples 6] [--deliveries 60]
        [--concurrency 4] [--only runs|sensor|assets ...]

``runs`` (issue 6): signed webhook deliveries per second until the run is created. Both go through the same
api-server app (``airflow.api_fastapi.app.create_app``, in process, SQLite): Muxly's ``POST
/muxly/webhooks/{path}`` with an HMAC-signed body (lookup, signature check, DAG run, queued ``job_executions``
row) and Airflow's ``POST /api/v2/dags/{dag_id}/dagRuns`` with a JWT. Runs per second, best of --repeats, and
the ratio (target: >= 1.0x).

``sensor`` and ``assets`` (issue 13) run under a real ``airflow standalone`` (api-server, scheduler,
dag-processor, triggerer with its default settings, LocalExecutor; SQLite), started once:

* ``sensor``: per sample, a run of a DAG with one ``MuxlyWebhookSensor`` is started, the sensor is awaited in
  ``deferred``, a signed delivery is POSTed and the time until the task instance is ``success`` (its
  ``end_date``) measured: median and p95 (target: median < 2 s), split into delivery -> claim by the trigger
  (``webhook_event_claims.claimed_at``) -> task ``scheduled`` (the triggerer's event reached Airflow's DB) ->
  ``queued`` (scheduler loop) -> ``running`` (LocalExecutor started the task process) -> ``success`` (the
  task process parsed the DAG file and ran ``execute_complete``); states are watched in Airflow's DB every 20 ms.
* ``assets``: --deliveries signed deliveries to a ``webhook_triggers`` row with ``asset_uri`` (each one an
  asset event) against as many ``POST /api/v2/assets/events`` for the same asset (one JWT from ``/auth/token``),
  sequentially and with --concurrency threads; deliveries per second and the ratio (target: >= 1.0x).
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

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


def bench_runs(runs: int, repeats: int) -> None:
    """Issue 6: runs per second through Muxly's webhook and Airflow's REST trigger (in process)."""
    with tempfile.TemporaryDirectory(prefix="muxly-bench-webhook-") as tmp:
        _setup(Path(tmp))
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
        for _ in range(repeats):
            for name, call in (("airflow REST", rest), ("muxly webhook", webhook)):
                start = time.perf_counter()
                for _ in range(runs):
                    call()
                best[name] = max(best[name], runs / (time.perf_counter() - start))
        print("== runs per second (issue 6, in process) ==")
        for name, rate in best.items():
            print(f"{name:>14}: {rate:8.1f} runs/s")
        print(f"{'ratio':>14}: {best['muxly webhook'] / best['airflow REST']:8.2f}x (target >= 1.0x)")


LIVE_SECRET = "whsec-bench-live-9c2b"
ASSET_URI = "x-muxly-webhook://bench/orders"
SENSOR_DAG = "bench_sensor_wait"
LIVE_DAGS = """
\"\"\"DAGs of bench_webhook.py: a webhook sensor alone; a producer that registers the benchmark's asset.\"\"\"
from airflow.sdk import DAG, Asset, task

from muxly_provider.sensors import MuxlyWebhookSensor

with DAG({sensor!r}, schedule=None, max_active_runs=1):
    MuxlyWebhookSensor(task_id="wait", endpoint_path="bench/wait", timeout=300{poke})


@task(outlets=[Asset({asset!r})])
def produce():
    return None


with DAG("bench_asset_producer", schedule=None):
    produce()
"""


def _live_seed(engine: Any, fernet: str) -> None:
    from tests.db_helpers import insert_row
    from tests.integration.live.webhook_live import encrypt_with

    secret = encrypt_with(fernet, LIVE_SECRET)
    insert_row(engine, "webhook_triggers", id="bench_wait", endpoint_path="bench/wait", secret_key=secret)
    insert_row(
        engine,
        "webhook_triggers",
        id="bench_asset",
        endpoint_path="bench/asset",
        asset_uri=ASSET_URI,
        secret_key=secret,
    )


def _epoch(value: Any) -> float:
    """A naive-UTC (or aware) datetime, or its text as SQLite returns it, as epoch seconds."""
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def bench_sensor(live: Any, airflow_db: Any, samples: int) -> None:
    """Issue 13: delivery to sensor completion under airflow standalone, with its split."""
    from sqlalchemy import text

    from tests.integration.live.webhook_live import api_call, deliver

    def ti() -> tuple[str | None, Any]:
        with airflow_db.connect() as conn:
            row = conn.execute(
                text(
                    "SELECT state, end_date FROM task_instance WHERE dag_id = :d AND run_id = :r "
                    "AND task_id = 'wait'"
                ),
                {"d": SENSOR_DAG, "r": run_id},
            ).first()
        return (None, None) if row is None else (row[0], row[1])

    phases = ("claimed", "scheduled", "queued", "running", "success")
    rows: list[dict[str, float]] = []
    rng = random.Random(13)
    for sample in range(-1, samples):  # sample -1 warms the api-server and the triggerer up: not counted
        answer = live.wait_for(
            "a run",
            lambda: api_call(
                live.base_url, "POST", f"/api/v2/dags/{SENSOR_DAG}/dagRuns", {"logical_date": None}
            ),
            60,
        )
        run_id = answer["dag_run_id"]
        deadline = time.monotonic() + 120
        while ti()[0] != "deferred":
            assert time.monotonic() < deadline, f"sensor of {run_id} never deferred"
            time.sleep(0.05)
        # A deferred task's trigger starts in the triggerer up to ~2 s later (assignment and creation each wait
        # for one of its 1 s loops): a delivery before that would measure the start, not the wait. Then a
        # random phase against the triggerer's loop and the poll interval.
        time.sleep(2.5 + rng.uniform(0.0, 1.0))
        seen: dict[str, float] = {}
        posted = time.time()
        status, body = deliver(live.base_url, LIVE_SECRET, "bench/wait", {"sample": sample})
        acked = time.time()
        assert status == 202, body
        deadline = time.monotonic() + 120
        while True:
            state, end_date = ti()
            if state and state not in seen and state in phases:
                seen[state] = time.time()
            if state == "success":
                break
            if state in ("failed", "up_for_retry", "skipped"):
                home = Path(live.env["AIRFLOW_HOME"])
                logs = sorted(home.glob(f"logs/dag_id={SENSOR_DAG}/run_id={run_id}/task_id=wait/*.log"))
                tail = logs[-1].read_text(errors="replace")[-4000:] if logs else "(no task log)"
                raise AssertionError(f"the sensor of {run_id} ended {state}:\n{tail}")
            assert time.monotonic() < deadline, f"sensor of {run_id} still {state}"
            time.sleep(0.02)
        with live.engine.connect() as conn:
            received, claimed = conn.execute(
                text(
                    "SELECT e.received_at, c.claimed_at FROM webhook_events e JOIN webhook_event_claims c "
                    "ON c.event_id = e.id WHERE e.id = :id"
                ),
                {"id": body["event_id"]},
            ).one()
        times = {"posted": posted, "received": _epoch(received), "claimed": _epoch(claimed), **seen}
        times["success"] = _epoch(end_date)
        times["acked"] = acked
        if sample >= 0:
            rows.append(times)
        print(
            f"  sample {sample}: {times['success'] - posted:5.2f} s (claim {times['claimed'] - posted:4.2f} s, "
            + ", ".join(f"{p} +{times[p] - posted:4.2f}" for p in phases[1:-1] if p in times)
            + ")",
            flush=True,
        )
    total = [r["success"] - r["posted"] for r in rows]
    print(f"== delivery to sensor success, {samples} samples (issue 13) ==")
    print(
        f"  total: median {statistics.median(total):.2f} s, p95 {_pct(total, 0.95):.2f} s (target median < 2 s)"
    )
    steps = [
        ("posted", "acked", "delivery answered (202)"),
        ("posted", "claimed", "delivery -> trigger claim"),
        ("claimed", "success", "claim -> TI success"),
    ]
    previous = "claimed"
    for phase in phases[1:]:
        steps.append((previous, phase, f"  {previous} -> {phase}"))
        previous = phase
    for a, b, label in steps:
        values = [r[b] - r[a] for r in rows if a in r and b in r]
        if values:
            print(f"  {label:<28} median {statistics.median(values):5.2f} s, p95 {_pct(values, 0.95):5.2f} s")


def bench_assets(live: Any, deliveries: int, concurrency: int) -> None:
    """Issue 13: signed deliveries into asset events against Airflow's POST /api/v2/assets/events."""
    from tests.integration.live.webhook_live import api_call, deliver, token

    assets = live.wait_for(
        "the benchmark's asset",
        lambda: (api_call(live.base_url, "GET", "/api/v2/assets?uri_pattern=bench/orders") or {}).get(
            "assets"
        ),
        120,
    )
    [asset_id] = [a["id"] for a in assets if a["uri"] == ASSET_URI]
    bearer = token(live.base_url)
    counter = iter(range(10**9))

    def muxly(_: int) -> None:
        status, body = deliver(live.base_url, LIVE_SECRET, "bench/asset", {"n": next(counter)})
        assert status == 202, (status, body)
        assert "asset_event_id" in body, body

    def airflow(_: int) -> None:
        body = {"asset_id": asset_id, "extra": {"payload": {"n": next(counter)}}}
        answer = api_call(live.base_url, "POST", "/api/v2/assets/events", body, bearer=bearer)
        assert answer is not None, "POST /api/v2/assets/events did not answer"
        assert answer.get("asset_id") == asset_id, answer

    muxly(0)
    airflow(0)
    print(f"== deliveries into asset events, {deliveries} each (issue 13) ==")
    for threads in sorted({1, concurrency}):
        rates: dict[str, float] = {}
        for name, call in (("airflow assets/events", airflow), ("muxly webhook", muxly)):
            start = time.perf_counter()
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(call, range(deliveries)))
            rates[name] = deliveries / (time.perf_counter() - start)
        label = "sequential" if threads == 1 else f"{threads} threads"
        print(
            f"  {label:<11} muxly {rates['muxly webhook']:6.1f}/s, airflow {rates['airflow assets/events']:6.1f}/s,"
            f" ratio {rates['muxly webhook'] / rates['airflow assets/events']:.2f}x (target >= 1.0x)",
            flush=True,
        )


@contextmanager
def _postgres_databases(dsn: str) -> Iterator[dict[str, str]]:
    """Two fresh PostgreSQL databases (Airflow's, Muxly's) on the server of ``dsn``, dropped on exit."""
    from sqlalchemy import create_engine, text
    from sqlalchemy.engine import make_url

    admin = create_engine(dsn, isolation_level="AUTOCOMMIT")
    names = {"airflow": f"bench_webhook_af_{os.getpid()}", "muxly": f"bench_webhook_mx_{os.getpid()}"}
    try:
        with admin.connect() as conn:
            for name in names.values():
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
                conn.execute(text(f'CREATE DATABASE "{name}"'))
        url = make_url(dsn)
        yield {
            "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": url.set(database=names["airflow"]).render_as_string(False),
            "AIRFLOW__MUXLY__SQL_ALCHEMY_CONN": url.set(database=names["muxly"]).render_as_string(False),
        }
    finally:
        with admin.connect() as conn:
            for name in names.values():
                conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def bench_live(
    samples: int,
    deliveries: int,
    concurrency: int,
    parts: set[str],
    pg_dsn: str | None,
    poke_interval: float | None,
) -> None:
    """Start airflow standalone once (PostgreSQL, or SQLite when ``pg_dsn`` is empty) and run the sensor and
    asset benchmarks on it."""
    from sqlalchemy import create_engine

    from tests.integration.live.webhook_live import api_call, standalone

    def ready(live: Any) -> bool:
        dags = api_call(live.base_url, "GET", "/api/v2/dags?dag_id_pattern=bench_")
        return dags is not None and len(dags["dags"]) == 2

    poke = "" if poke_interval is None else f", poke_interval={poke_interval!r}"
    source = textwrap.dedent(LIVE_DAGS).format(sensor=SENSOR_DAG, asset=ASSET_URI, poke=poke)
    with ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory(prefix="muxly-bench-live-"))
        databases = stack.enter_context(_postgres_databases(pg_dsn)) if pg_dsn else {}
        kind = "PostgreSQL" if pg_dsn else "SQLite"
        print(f"(live: {kind}, sensor poke_interval {poke_interval or 'default'})", flush=True)
        started = time.perf_counter()
        live = stack.enter_context(
            standalone(
                Path(tmp),
                {"bench_webhook_dags.py": source},
                _live_seed,
                ready,
                "the bench DAGs",
                extra_env=databases,
            )
        )
        print(f"(airflow standalone ready in {time.perf_counter() - started:.0f} s)", flush=True)
        airflow_db = create_engine(live.env["AIRFLOW__DATABASE__SQL_ALCHEMY_CONN"])
        stack.callback(airflow_db.dispose)
        if "sensor" in parts:
            bench_sensor(live, airflow_db, samples)
        if "assets" in parts:
            # SQLite has one writer: Airflow's own endpoint fails under concurrent posts, so only sequential.
            bench_assets(live, deliveries, concurrency if pg_dsn else 1)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=6, help="sensor latency samples")
    parser.add_argument("--deliveries", type=int, default=60, help="asset deliveries per side and mode")
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--only", action="append", choices=["runs", "sensor", "assets"])
    parser.add_argument(
        "--pg-dsn",
        default=os.environ.get("MUXLY_TEST_PG_DSN", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"),
        help="PostgreSQL server for the live part (two databases made and dropped); '' for SQLite",
    )
    parser.add_argument(
        "--poke-interval", type=float, help="the sensor's poke_interval (default: its default)"
    )
    args = parser.parse_args()
    parts = set(args.only or ["runs", "sensor", "assets"])
    sys.path.insert(0, str(ROOT))
    # In process first: it configures Airflow in this process (the live part only starts processes).
    if "runs" in parts:
        bench_runs(args.runs, args.repeats)
    if parts & {"sensor", "assets"}:
        bench_live(args.samples, args.deliveries, args.concurrency, parts, args.pg_dsn, args.poke_interval)


if __name__ == "__main__":
    main()
