"""Benchmark: Muxly's destinations against hand-written writers, on the same data in the same run.

* PostgreSQL: 1,000,000 records through the ``database`` destination (plain insert, and upsert on a key) against
  a hand-written psycopg2 ``execute_values`` loop with the same batch size and a commit per batch;
* files: the same records through the ``file`` destination (csv, jsonl) against ``csv.DictWriter`` and a
  ``json.dumps`` line loop;
* webhook: ``--webhook-records`` records (5,000) through the ``webhook`` destination in ``record`` mode (one POST
  each, through Muxly's HTTP layer: the request guard and tenacity retries) against a hand-written
  ``requests.Session`` POST loop, both to a local server in another process.

Muxly's side runs through the per-destination batching of a delivery task (``Delivery``), as in a job run. Prints the
seconds of each side and the ratio (hand-written time / Muxly time: 1.0 is as fast, the target is >= 0.7).

Run: ``.venv/bin/python benchmarks/bench_destinations.py [--records N] [--pg-dsn URL] [--cases pg file webhook]``
(``--records 200000`` is a quick run).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="muxly-bench-"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
# The file destination writes only below [muxly] files_root; the benchmark writes into temporary folders.
os.environ.setdefault("AIRFLOW__MUXLY__FILES_ROOT", tempfile.gettempdir())

import airflow.sdk.log  # noqa: F401 - loaded in every task; not part of the timings
import psycopg2
from psycopg2.extras import execute_values

from muxly_provider.connectors.base import ConnectorContext
from muxly_provider.destinations.base import DestinationContext, RunInfo
from muxly_provider.runtime.delivery import Delivery
from muxly_provider.runtime.loading import JobRuntime

BATCH = 5000
FETCH = 1000
RUN = RunInfo(
    dag_id="muxly__bench",
    run_id="bench__1",
    job_id="bench",
    connector_id="bench",
    logical_date=datetime(2026, 11, 27, tzinfo=UTC),
)
COUNTRIES = ("US", "DE", "FR", "GB", "JP")


def records(count: int) -> list[dict[str, Any]]:
    return [
        {
            "order_id": i,
            "customer": f"Customer {i}",
            "email": f"c{i}@example.com",
            "country": COUNTRIES[i % 5],
            "amount": round(i * 0.37 % 1000, 2),
            "quantity": i % 17,
            "status": "completed" if i % 3 else "pending",
        }
        for i in range(count)
    ]


class NullStore:
    name = "none"

    def put(self, letter: Any) -> None:
        raise RuntimeError(f"unexpected dead letter: {letter.error}")

    def resolve(self, destination_id: str, failed_batches: Any) -> int:
        return 0


def muxly(destination_type: str, config: dict[str, Any], data: list[dict[str, Any]]) -> float:
    runtime = JobRuntime(
        job_id="bench",
        name="bench",
        action_type="export",
        action_params={},
        connector=ConnectorContext(id="bench", name="bench", connector_type="api"),
        destinations={
            "d": DestinationContext(id="d", name="d", destination_type=destination_type, config=config)
        },
        export_destination_ids=("d",),
    )
    started = time.perf_counter()
    delivery = Delivery(runtime.destinations, RUN, NullStore())
    for start in range(0, len(data), FETCH):
        delivery.send({"d": data[start : start + FETCH]})
    delivery.flush()
    delivery.commit()
    elapsed = time.perf_counter() - started
    counts = delivery.outcomes["d"]
    assert counts.delivered == len(data), counts
    assert not counts.error, counts
    return elapsed


def batches(data: list[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    for start in range(0, len(data), BATCH):
        yield data[start : start + BATCH]


def hand_pg(dsn: str, table: str, data: list[dict[str, Any]], upsert: bool) -> float:
    started = time.perf_counter()
    conn = psycopg2.connect(dsn)
    columns = list(data[0])
    with conn.cursor() as cur:
        cur.execute(
            f"CREATE TABLE {table} (order_id BIGINT {'PRIMARY KEY' if upsert else ''}, customer TEXT, email TEXT, "
            "country TEXT, amount DOUBLE PRECISION, quantity BIGINT, status TEXT)"
        )
    conn.commit()
    sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES %s"
    if upsert:
        sql += " ON CONFLICT (order_id) DO UPDATE SET " + ", ".join(
            f"{c} = EXCLUDED.{c}" for c in columns[1:]
        )
    for batch in batches(data):
        with conn.cursor() as cur:
            execute_values(cur, sql, [tuple(r[c] for c in columns) for r in batch], page_size=BATCH)
        conn.commit()
    conn.close()
    return time.perf_counter() - started


def hand_csv(path: Path, data: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(data[0]))
        writer.writeheader()
        for batch in batches(data):
            writer.writerows(batch)
    return time.perf_counter() - started


def hand_jsonl(path: Path, data: list[dict[str, Any]]) -> float:
    started = time.perf_counter()
    with open(path, "w", encoding="utf-8") as handle:
        for batch in batches(data):
            handle.writelines(json.dumps(r) + "\n" for r in batch)
    return time.perf_counter() - started


def _report(name: str, hand: float, ours: float, count: int) -> float:
    ratio = hand / ours
    print(
        f"{name:<22} hand-written {hand:7.2f} s   muxly {ours:7.2f} s   "
        f"({count / ours:,.0f} rec/s)   ratio {ratio:4.2f}x {'OK' if ratio >= 0.7 else 'BELOW TARGET'}"
    )
    return ratio


def serve_webhook(port_file: str) -> None:
    """Answer every POST with ``204`` on a free port (written to ``port_file``); runs in its own process."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("Content-Length") or 0))
            self.send_response(204)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    Path(port_file).write_text(str(server.server_address[1]))
    server.serve_forever()


def hand_webhook(url: str, data: list[dict[str, Any]]) -> float:
    import requests

    started = time.perf_counter()
    with requests.Session() as session:
        for record in data:
            response = session.post(
                url,
                data=json.dumps(record).encode(),
                headers={"Content-Type": "application/json"},
                timeout=30,
            )
            response.raise_for_status()
    return time.perf_counter() - started


def _timed(func: Callable[[], float]) -> tuple[float, float]:
    """Wall seconds (as ``func`` measures them) and this process's CPU seconds of one call."""
    cpu = time.process_time()
    wall = func()
    return wall, time.process_time() - cpu


def webhook_cases(runs: int, count: int, data: list[dict[str, Any]]) -> list[float]:
    """Interleaved runs (a busy moment of the machine hits both sides); the server is another process, so the
    CPU seconds are the client's own: the cost of Muxly's HTTP layer per request."""
    import multiprocessing

    port_file = Path(tempfile.mkdtemp(prefix="muxly-bench-hook-")) / "port"
    server = multiprocessing.Process(target=serve_webhook, args=(str(port_file),), daemon=True)
    server.start()
    try:
        for _ in range(100):
            if port_file.exists() and port_file.read_text():
                break
            time.sleep(0.05)
        url = f"http://127.0.0.1:{port_file.read_text()}/hook"
        sample = data[:count]
        config = {"url": url, "send_mode": "record", "batch_size": BATCH}
        hand: list[tuple[float, float]] = []
        ours: list[tuple[float, float]] = []
        for _ in range(max(runs, 3)):
            hand.append(_timed(lambda: hand_webhook(url, sample)))
            ours.append(_timed(lambda: muxly("webhook", config, sample)))
        hand_cpu, ours_cpu = min(c for _, c in hand), min(c for _, c in ours)
        print(
            f"webhook CPU per request: hand-written {hand_cpu / count * 1e6:.0f} us, "
            f"muxly {ours_cpu / count * 1e6:.0f} us (ratio {hand_cpu / ours_cpu:.2f}x)"
        )
        return [_report("webhook record mode", min(w for w, _ in hand), min(w for w, _ in ours), count)]
    finally:
        server.terminate()
        server.join()


def _best(runs: int, func: Callable[[int], float]) -> float:
    return min(func(i) for i in range(runs))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument(
        "--pg-dsn",
        default=os.environ.get("MUXLY_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    parser.add_argument("--runs", type=int, default=1, help="runs of each side (the best counts)")
    parser.add_argument(
        "--webhook-records", type=int, default=5000, help="records (requests) of the webhook case"
    )
    parser.add_argument(
        "--cases", nargs="+", choices=("pg", "file", "webhook"), default=["pg", "file", "webhook"]
    )
    args = parser.parse_args()
    data = records(max(args.records, args.webhook_records))
    print(f"{args.records:,} records, batches of {BATCH}, fetched {FETCH} at a time")
    ratios: list[float] = []
    if "pg" in args.cases:
        ratios += pg_cases(args, data[: args.records])
    if "file" in args.cases:
        ratios += file_cases(args.runs, data[: args.records])
    if "webhook" in args.cases:
        ratios += webhook_cases(args.runs, args.webhook_records, data)
    print(f"lowest ratio {min(ratios):.2f}x (target >= 0.70x)")


def pg_cases(args: argparse.Namespace, data: list[dict[str, Any]]) -> list[float]:
    admin = psycopg2.connect(args.pg_dsn)
    admin.autocommit = True
    name = f"muxly_bench_{uuid.uuid4().hex[:8]}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    dsn = args.pg_dsn.rsplit("/", 1)[0] + f"/{name}"
    ratios: list[float] = []
    try:
        for upsert in (False, True):
            label = "postgresql upsert" if upsert else "postgresql insert"
            config: dict[str, Any] = {"connection_string": dsn, "create_table": True, "batch_size": BATCH}
            if upsert:
                config["upsert_key"] = "order_id"
            hand = _best(args.runs, lambda i, u=upsert: hand_pg(dsn, f"hand_{int(u)}_{i}", data, u))
            ours = _best(
                args.runs,
                lambda i, c=config, u=upsert: muxly("database", {**c, "table": f"mux_{int(u)}_{i}"}, data),
            )
            ratios.append(_report(label, hand, ours, len(data)))
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
    return ratios


def file_cases(runs: int, data: list[dict[str, Any]]) -> list[float]:
    ratios: list[float] = []
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder)
        for fmt, hand_writer in (("csv", hand_csv), ("jsonl", hand_jsonl)):
            config = {"output_dir": str(out / fmt), "file_format": fmt, "batch_size": BATCH}
            hand = _best(runs, lambda i, w=hand_writer, f=fmt: w(out / f"hand_{i}.{f}", data))
            ours = _best(runs, lambda i, c=config: muxly("file", {**c, "file_prefix": f"mux{i}"}, data))
            ratios.append(_report(f"file {fmt}", hand, ours, len(data)))
    return ratios


if __name__ == "__main__":
    main()
