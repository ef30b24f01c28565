"""The dead-letter table store on SQLite and PostgreSQL (real migrations): put, replace, resolve, read."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine

from muxly_provider.destinations.base import RunInfo
from muxly_provider.destinations.dead_letter import (
    DeadLetter,
    TableDeadLetterStore,
    letter_id,
    read_dead_letters,
)

RUN = RunInfo(
    dag_id="muxly__j",
    run_id="manual__1",
    job_id="j",
    connector_id="c",
    logical_date=datetime(2026, 11, 26, tzinfo=UTC),
)
OTHER_RUN = RunInfo(
    dag_id="muxly__j",
    run_id="manual__2",
    job_id="j",
    connector_id="c",
    logical_date=datetime(2026, 11, 26, tzinfo=UTC),
)


def _letter(dest: str, batch: int, error: str = "down") -> DeadLetter:
    return DeadLetter(
        destination_id=dest, batch_index=batch, records=[{"id": batch, "nested": {"a": [1]}}], error=error
    )


def test_put_replace_resolve_and_read(muxly_engine: Engine) -> None:
    store = TableDeadLetterStore(RUN, muxly_engine)
    for batch in range(3):
        store.put(_letter("hook", batch))
    store.put(_letter("mail", 0))
    TableDeadLetterStore(OTHER_RUN, muxly_engine).put(_letter("hook", 0))
    store.put(_letter("hook", 1, error="still down"))  # a retry of the run replaces its own letter

    letters = read_dead_letters(muxly_engine, RUN.dag_id, RUN.run_id)
    assert [(x["destination_id"], x["batch_index"]) for x in letters] == [
        ("hook", 0),
        ("hook", 1),
        ("hook", 2),
        ("mail", 0),
    ]
    assert letters[1]["error"] == "still down" and letters[1]["records"] == [{"id": 1, "nested": {"a": [1]}}]
    assert letters[0]["id"] == letter_id(RUN, "hook", 0) and letters[0]["record_count"] == 1
    assert letters[0]["job_id"] == "j"

    # A retry delivered batches 0 and 2 of "hook" but not 1: only its letter stays; other runs are untouched.
    assert store.resolve("hook", {1}) == 2
    assert store.resolve("mail", set()) == 1
    assert [
        (x["destination_id"], x["batch_index"])
        for x in read_dead_letters(muxly_engine, RUN.dag_id, RUN.run_id)
    ] == [("hook", 1)]
    assert len(read_dead_letters(muxly_engine, OTHER_RUN.dag_id, OTHER_RUN.run_id)) == 1
