"""Run one delivery task's work (``deliver_share``) in this process, as a worker would; used by
``test_exactly_once_retries.py``, which SIGKILLs it in the middle of the share and then runs it again.

Usage: ``python -m tests.integration.destinations.killed_delivery <args.json> <hang>`` where ``args.json`` holds
``job_id``, ``dag_id``, ``run_id``, ``connector_id``, ``logical_date``, ``manifest`` and ``dest_id``, and
``hang`` is ``none``, ``database`` (stop inside the second batch's savepoint: two batches written, none
committed) or ``upload`` (stop after the first object of the file destination was uploaded). On a hang the
process prints ``READY`` and sleeps until it is killed; otherwise it prints the counts as JSON.
"""

from __future__ import annotations

import json
import sys
import time
from datetime import datetime
from typing import Any


def _hang() -> None:
    print("READY", flush=True)
    time.sleep(3600)


def _hang_in_database() -> None:
    from muxly_provider.destinations import database_sql

    original = database_sql.Statements.run
    calls = [0]

    def run(self: Any, cursor: Any, rows: list[tuple[Any, ...]]) -> None:
        original(self, cursor, rows)
        calls[0] += 1
        if calls[0] == 2:
            _hang()

    database_sql.Statements.run = run  # type: ignore[method-assign]


def _hang_in_upload() -> None:
    import s3fs

    original = s3fs.S3FileSystem._put_file
    calls = [0]

    async def put_file(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = await original(self, *args, **kwargs)
        calls[0] += 1
        if calls[0] == 1:
            _hang()
        return result

    s3fs.S3FileSystem._put_file = put_file


def main(path: str, hang: str) -> None:
    """Deliver one share (see the module docstring)."""
    {"none": lambda: None, "database": _hang_in_database, "upload": _hang_in_upload}[hang]()
    from muxly_provider.destinations.base import RunInfo
    from muxly_provider.runtime.loading import load_job_runtime
    from muxly_provider.runtime.runner import deliver_share

    with open(path) as handle:
        args = json.load(handle)
    run = RunInfo(
        args["dag_id"],
        args["run_id"],
        args["job_id"],
        args["connector_id"],
        datetime.fromisoformat(args["logical_date"]),
    )
    counts = deliver_share(load_job_runtime(args["job_id"]), run, args["manifest"], args["dest_id"])
    print(json.dumps(counts.as_dict()), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
