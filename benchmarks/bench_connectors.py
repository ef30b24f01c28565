"""Benchmark: Muxly's ``api`` and ``database`` connectors against hand-written loops, in the same run.

* api: a paged JSON API served by a separate local process (``{"data": [...], "next": ...}``, 1,000 records a
  page, cursor paging), read by :class:`~muxly_provider.connectors.api.ApiConnector` and by a hand-written
  ``requests.Session`` loop that follows the same cursor;
* database: a PostgreSQL table read by :class:`~muxly_provider.connectors.database.DatabaseConnector` and by a
  hand-written SQLAlchemy loop (``stream_results`` + ``yield_per`` + ``partitions``, a dict per row).

Both sides build one dict per record and consume batches of 1,000. Every measurement runs in a fresh worker
process so that its peak RSS (``ru_maxrss``) is its own: the figures for 100,000 and 1,000,000 records show
whether memory grows with the data. Ratio = Muxly's throughput / the hand-written one (target >= 0.7).

Run: ``.venv/bin/python benchmarks/bench_connectors.py [--records 100000 1000000] [--repeats 3] [--pg-dsn URL]``
(best of ``--repeats`` interleaved runs per side).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

PAGE = 1000
BATCH = 1000
PG_ADMIN = "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"


def serve_pages(total: int, port_file: str) -> None:
    """Serve ``total`` records in pages of ``PAGE`` on a free port (written to ``port_file``)."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            return

        def do_GET(self) -> None:
            start = int(parse_qs(urlsplit(self.path).query).get("cursor", ["0"])[0])
            end = min(start + PAGE, total)
            data = [
                {
                    "id": i,
                    "name": f"customer {i}",
                    "country": "US" if i % 3 else "DE",
                    "amount": i * 0.25,
                    "active": i % 2 == 0,
                }
                for i in range(start, end)
            ]
            body = json.dumps({"data": data, "next": str(end) if end < total else None}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    with open(port_file, "w") as handle:
        handle.write(str(server.server_address[1]))
    server.serve_forever()


def _api_muxly(url: str) -> int:
    from muxly_provider.connectors.api import ApiConnector
    from muxly_provider.connectors.base import ConnectorContext

    ctx = ConnectorContext(
        id="bench",
        name="bench",
        connector_type="api",
        settings={
            "base_url": url,
            "metrics_path": "data",
            "pagination": {"type": "cursor", "cursor_path": "next"},
        },
    )
    return sum(len(batch) for batch in ApiConnector(ctx, batch_size=BATCH).fetch({}))


def _api_hand(url: str) -> int:
    import requests

    count = 0
    cursor: str | None = None
    with requests.Session() as session:
        while True:
            response = session.get(url, params={"cursor": cursor} if cursor else {}, timeout=30)
            response.raise_for_status()
            payload = response.json()
            records = payload["data"]
            count += len(records)
            cursor = payload.get("next")
            if not cursor:
                return count


def _db_muxly(url: str, table: str) -> int:
    from muxly_provider.connectors.base import ConnectorContext
    from muxly_provider.connectors.database import DatabaseConnector

    ctx = ConnectorContext(
        id="bench", name="bench", connector_type="database", settings={"connection_string": url}
    )
    connector = DatabaseConnector(ctx, batch_size=BATCH)
    try:
        return sum(
            len(b)
            for b in connector.fetch({"query": f"SELECT id, name, country, amount, active FROM {table}"})
        )
    finally:
        connector.close()


def _db_hand(url: str, table: str) -> int:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    count = 0
    with engine.connect() as conn:
        result = conn.execution_options(stream_results=True, yield_per=BATCH).execute(
            text(f"SELECT id, name, country, amount, active FROM {table}")
        )
        keys = list(result.keys())
        for part in result.partitions(BATCH):
            batch = [dict(zip(keys, row, strict=True)) for row in part]
            count += len(batch)
    engine.dispose()
    return count


def worker(case: str, target: str, table: str) -> None:
    """Run one case and print ``{"records", "seconds", "peak_rss_mb"}`` (a fresh process per case).

    Modules are imported before the clock starts, on both sides, Airflow's configuration included: a task
    process has it loaded before the connector runs (the database connector reads ``[database]`` and
    ``[muxly]`` settings to refuse Airflow's and Muxly's own databases). That includes the modules the
    connectors import at their first use (the template engine, the database guard): without bytecode files
    (``PYTHONDONTWRITEBYTECODE``, as on this machine) compiling them took 0.1 s, a third of the 100,000-record
    case, where the hand-written side compiles nothing of its own.
    """
    import airflow.configuration  # noqa: F401
    import requests  # noqa: F401
    import sqlalchemy  # noqa: F401

    import muxly_provider.connectors.api
    import muxly_provider.connectors.database
    import muxly_provider.hooks.providers
    import muxly_provider.security.databases
    import muxly_provider.templating  # noqa: F401

    cases = {
        "api_muxly": lambda: _api_muxly(target),
        "api_hand": lambda: _api_hand(target),
        "db_muxly": lambda: _db_muxly(target, table),
        "db_hand": lambda: _db_hand(target, table),
    }
    started = time.perf_counter()
    count = cases[case]()
    seconds = time.perf_counter() - started
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(json.dumps({"records": count, "seconds": seconds, "peak_rss_mb": round(peak, 1)}))


def _run(case: str, target: str, table: str = "") -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", case, target, table],
        check=True,
        capture_output=True,
        text=True,
        env=os.environ.copy(),
    )
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _pair(
    name: str, muxly_case: str, hand_case: str, target: str, table: str, expected: int, repeats: int
) -> dict[str, Any]:
    runs: dict[str, list[dict[str, Any]]] = {muxly_case: [], hand_case: []}
    for _ in range(repeats):  # interleaved, so that a busy moment of the machine hits both sides
        for case in (muxly_case, hand_case):
            runs[case].append(_run(case, target, table))
    muxly = min(runs[muxly_case], key=lambda r: r["seconds"])
    hand = min(runs[hand_case], key=lambda r: r["seconds"])
    assert muxly["records"] == hand["records"] == expected, (muxly, hand)
    ratio = hand["seconds"] / muxly["seconds"]
    print(
        f"{name:9} {expected:>9,}  muxly {expected / muxly['seconds'] / 1000:7.1f} k rec/s "
        f"{muxly['peak_rss_mb']:6.1f} MB | hand {expected / hand['seconds'] / 1000:7.1f} k rec/s "
        f"{hand['peak_rss_mb']:6.1f} MB | ratio {ratio:.2f}x"
    )
    return {"muxly": muxly, "hand": hand, "ratio": ratio}


def _pg_table(dsn: str, total: int) -> Iterator[tuple[str, str]]:
    from sqlalchemy import create_engine, text

    admin = create_engine(dsn, isolation_level="AUTOCOMMIT")
    name = f"muxly_bench_{uuid.uuid4().hex[:8]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = dsn.rsplit("/", 1)[0] + f"/{name}"
    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(
            text(
                "CREATE TABLE bench AS SELECT g AS id, 'customer ' || g AS name, "
                "CASE WHEN g % 3 = 0 THEN 'DE' ELSE 'US' END AS country, g * 0.25::float8 AS amount, "
                f"g % 2 = 0 AS active FROM generate_series(0, {total - 1}) g"
            )
        )
    engine.dispose()
    try:
        yield url, "bench"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--pg-dsn", default=os.environ.get("MUXLY_TEST_PG_DSN", PG_ADMIN))
    parser.add_argument("--repeats", type=int, default=3, help="runs per side (best one kept)")
    parser.add_argument("--worker", nargs=3, metavar=("CASE", "TARGET", "TABLE"))
    args = parser.parse_args()
    if args.worker:
        worker(*args.worker)
        return
    print(f"Python {sys.version.split()[0]}, {os.cpu_count()} cores, batches of {BATCH}, pages of {PAGE}")
    for total in args.records:
        with tempfile.TemporaryDirectory() as tmp:
            port_file = os.path.join(tmp, "port")
            here = os.path.dirname(os.path.abspath(__file__))
            server = subprocess.Popen(
                [
                    sys.executable,
                    "-c",
                    f"import sys; sys.path.insert(0, {here!r}); "
                    f"import bench_connectors as b; b.serve_pages({total}, {port_file!r})",
                ]
            )
            try:
                while not os.path.exists(port_file) or not Path(port_file).read_text():
                    time.sleep(0.05)
                url = f"http://127.0.0.1:{Path(port_file).read_text()}/orders"
                _pair("api", "api_muxly", "api_hand", url, "", total, args.repeats)
            finally:
                server.terminate()
                server.wait()
        for url, table in _pg_table(args.pg_dsn, total):
            _pair("database", "db_muxly", "db_hand", url, table, total, args.repeats)


if __name__ == "__main__":
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="muxly-bench-"))
    sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    main()
