"""Delivery tasks finishing together: 200 concurrent merges into one run's ``result`` lose nothing.

Four processes of 50 threads each (different destinations, the same run) start together on a barrier, on SQLite
(where ``SELECT ... FOR UPDATE`` locks nothing) and on PostgreSQL (where the first writers also race on the insert).
"""

from __future__ import annotations

import json
import multiprocessing
import threading
from typing import Any

from sqlalchemy import Engine, text

from muxly_provider.executions.recorder import ExecutionUpdate, execution_id, upsert_execution
from tests.db_helpers import seed_api_job

PROCESSES = 4
THREADS = 50


def _merge_many(url: str, process: int, start: Any) -> None:
    """One process: ``THREADS`` threads each merge the counts of their own destination."""
    from muxly_provider.db.engine import get_engine

    engine = get_engine(url)
    ready = threading.Barrier(THREADS)
    errors: list[BaseException] = []

    def merge(thread: int) -> None:
        ready.wait()
        name = f"dest_{process}_{thread}"
        try:
            upsert_execution(
                engine,
                ExecutionUpdate(
                    job_id="j",
                    dag_id="muxly__j",
                    run_id="r1",
                    result={"destinations": {name: {"routed": 1, "delivered": 1}}, "delivered": 1},
                ),
            )
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=merge, args=(n,)) for n in range(THREADS)]
    start.wait()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    if errors:
        raise errors[0]


def test_concurrent_merges_lose_no_destination(muxly_engine: Engine, db_url: str) -> None:
    seed_api_job(muxly_engine, "j", "c")
    context = multiprocessing.get_context("spawn")
    start = context.Barrier(PROCESSES)
    workers = [context.Process(target=_merge_many, args=(db_url, n, start)) for n in range(PROCESSES)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=180)
    assert [worker.exitcode for worker in workers] == [0] * PROCESSES

    with muxly_engine.connect() as conn:
        rows = conn.execute(text("SELECT id, result FROM job_executions")).all()
    assert [row.id for row in rows] == [execution_id("muxly__j", "r1")]
    result = json.loads(rows[0].result)
    expected = {f"dest_{p}_{t}" for p in range(PROCESSES) for t in range(THREADS)}
    assert set(result["destinations"]) == expected
    assert result["delivered"] == len(expected)
