"""Benchmark: the ``database`` destination by ``conn_id`` (the engine of the connection type's common-sql hook)
against the same destination by ``connection_string`` and against a hand-written psycopg2 writer, same run.

The records, batching and hand-written writer are those of ``bench_destinations.py``. ``conn_id`` names an
Airflow ``postgres`` connection (``AIRFLOW_CONN_*``); its ``PostgresHook`` builds the engine with the driver it
prefers (psycopg 3 when installed). Prints seconds and ratios (hand-written or inline time / conn_id time; 1.0
is as fast, the target is >= 0.9x of the inline path).

Run: ``.venv/bin/python benchmarks/bench_conn_id.py [--records N] [--runs R] [--pg-dsn URL]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import psycopg2
from bench_destinations import _best, _report, hand_pg, muxly, records
from sqlalchemy.engine import make_url


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=200_000)
    parser.add_argument("--runs", type=int, default=2, help="runs of each side (the best counts)")
    parser.add_argument(
        "--pg-dsn",
        default=os.environ.get("MUXLY_BENCH_PG_DSN", "postgresql://postgres@127.0.0.1:5432/postgres"),
    )
    args = parser.parse_args()
    data = records(args.records)
    admin = psycopg2.connect(args.pg_dsn)
    admin.autocommit = True
    name = f"muxly_bench_{uuid.uuid4().hex[:8]}"
    with admin.cursor() as cur:
        cur.execute(f'CREATE DATABASE "{name}"')
    dsn = args.pg_dsn.rsplit("/", 1)[0] + f"/{name}"
    url = make_url(dsn)
    os.environ["AIRFLOW_CONN_MUXLY_BENCH_PG"] = json.dumps(
        {
            "conn_type": "postgres",
            "host": url.host,
            "port": url.port,
            "login": url.username,
            "password": url.password,
            "schema": url.database,
        }
    )
    print(f"{args.records:,} records, best of {args.runs}")
    ratios: list[float] = []
    try:
        for upsert in (False, True):
            base: dict[str, Any] = {"create_table": True, "batch_size": 5000}
            if upsert:
                base["upsert_key"] = "order_id"
            kind = "upsert" if upsert else "insert"
            hand = _best(args.runs, lambda i, u=upsert: hand_pg(dsn, f"hand_{int(u)}_{i}", data, u))
            inline = _best(
                args.runs,
                lambda i, c=base, u=upsert: muxly(
                    "database", {**c, "connection_string": dsn, "table": f"url_{int(u)}_{i}"}, data
                ),
            )
            by_conn = _best(
                args.runs,
                lambda i, c=base, u=upsert: muxly(
                    "database", {**c, "conn_id": "muxly_bench_pg", "table": f"conn_{int(u)}_{i}"}, data
                ),
            )
            _report(f"{kind}: hand vs url", hand, inline, len(data))
            _report(f"{kind}: hand vs conn_id", hand, by_conn, len(data))
            ratios.append(_report(f"{kind}: url vs conn_id", inline, by_conn, len(data)))
    finally:
        with admin.cursor() as cur:
            cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.close()
    print(f"lowest conn_id / connection_string ratio {min(ratios):.2f}x (target >= 0.90x)")


if __name__ == "__main__":
    main()
