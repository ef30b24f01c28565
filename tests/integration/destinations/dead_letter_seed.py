"""Dead letters as a failed run leaves them, and the destinations to replay them to (for the replay tests).

Letters are written by the runner's own store (:class:`TableDeadLetterStore`); destinations are rows written with
plain SQL: a file destination, a webhook to a loopback recorder, and a webhook to a closed port (down).
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from sqlalchemy import Engine

from muxly_provider.destinations.base import RunInfo
from muxly_provider.destinations.dead_letter import DeadLetter, TableDeadLetterStore, letter_id
from tests.db_helpers import insert_row, seed_api_job

RUN = RunInfo(
    dag_id="muxly__orders",
    run_id="scheduled__2026-12-01T00:00:00+00:00",
    job_id="orders",
    connector_id="shop",
    logical_date=datetime(2026, 12, 1, tzinfo=UTC),
)
OTHER_RUN = RunInfo(
    dag_id="muxly__orders",
    run_id="manual__2026-12-02",
    job_id="orders",
    connector_id="shop",
    logical_date=datetime(2026, 12, 2, tzinfo=UTC),
)
HOOK_RECORDS = [{"order": 1, "total": 10.5}, {"order": 2, "total": 3}]
DOWN_RECORDS = [{"order": 3, "total": 99}]


def seed(engine: Engine, hook_url: str, down_url: str) -> dict[str, str]:
    """Write the destinations ``hook``, ``down`` and ``files``, and three letters; return their ids by name."""
    seed_api_job(engine, "orders", "shop", base_url="http://127.0.0.1:9/orders")
    webhook: dict[str, Any] = {"retry_count": 0, "timeout_seconds": 5}
    insert_row(
        engine,
        "destinations",
        id="hook",
        name="Hook",
        destination_type="webhook",
        config={**webhook, "url": hook_url},
    )
    insert_row(
        engine,
        "destinations",
        id="down",
        name="Down",
        destination_type="webhook",
        config={**webhook, "url": down_url},
    )
    insert_row(
        engine,
        "destinations",
        id="files",
        name="Files",
        destination_type="file",
        config={"output_dir": "replayed", "file_format": "jsonl", "file_prefix": "replay"},
    )
    store = TableDeadLetterStore(RUN, engine)
    store.put(DeadLetter("hook", 0, HOOK_RECORDS, "destination 'hook' (webhook): HTTP 503"))
    store.put(DeadLetter("down", 0, DOWN_RECORDS, "destination 'down' (webhook): connection refused"))
    TableDeadLetterStore(OTHER_RUN, engine).put(
        DeadLetter("hook", 0, [{"order": 4}], "destination 'hook' (webhook): HTTP 500")
    )
    return {
        "hook": letter_id(RUN, "hook", 0),
        "down": letter_id(RUN, "down", 0),
        "other": letter_id(OTHER_RUN, "hook", 0),
    }


def replayed_files(files_root: Path) -> list[Path]:
    """The files the ``files`` destination wrote."""
    return sorted((files_root / "replayed").glob("replay_*.jsonl"))
