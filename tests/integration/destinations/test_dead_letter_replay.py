"""Re-driving dead letters through ``airflow muxly dead-letters`` on SQLite and PostgreSQL: real destinations
(a webhook on loopback, files), idempotence under concurrent replays, and failed replays that stay pending."""

from __future__ import annotations

import argparse
import json
import threading
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from muxly_provider.cli import dead_letters_command as cli
from muxly_provider.destinations.replay import replay_letter
from tests.integration.destinations import test_destinations_in_jobs as job_runs
from tests.integration.destinations.dead_letter_seed import (
    DOWN_RECORDS,
    HOOK_RECORDS,
    RUN,
    replayed_files,
    seed,
)
from tests.integration.destinations.destination_servers import Recorder, free_port, http_recorder

sales_api = job_runs.sales_api
"""The sample sales API on loopback (the fixture of the destination run tests)."""


@pytest.fixture
def recorder() -> Any:
    with http_recorder() as server:
        yield server


@pytest.fixture
def letters(muxly_engine: Engine, recorder: Recorder, files_root: Path) -> dict[str, str]:
    return seed(muxly_engine, recorder.url + "/in", f"http://127.0.0.1:{free_port()}/in")


def _args(**values: Any) -> argparse.Namespace:
    defaults: dict[str, Any] = {
        "job_id": None,
        "dag_id": None,
        "run_id": None,
        "destination_id": None,
        "replayed": None,
        "limit": 100,
        "to": None,
        "letter_ids": [],
        "output_format": "json",
    }
    return argparse.Namespace(**{**defaults, **values})


def _json_out(capsys: pytest.CaptureFixture[str], command: Any, **values: Any) -> tuple[Any, int]:
    capsys.readouterr()
    code = 0
    try:
        command(_args(**values))
    except SystemExit as exc:
        code = int(exc.code or 0)
    return json.loads(capsys.readouterr().out or "null"), code


def test_cli_list_show_replay_and_replay_again(
    letters: dict[str, str], recorder: Recorder, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    listed, code = _json_out(capsys, cli.list_dead_letters, run_id=RUN.run_id, replayed="false")
    assert code == 0
    assert listed["total"] == 2
    assert {x["destination_id"] for x in listed["items"]} == {"hook", "down"}
    assert "records" not in listed["items"][0]

    shown, code = _json_out(capsys, cli.show_dead_letter, letter_id=letters["hook"])
    assert (code, shown["records"], shown["replayed_at"]) == (0, HOOK_RECORDS, None)

    results, code = _json_out(capsys, cli.replay_dead_letters, letter_ids=[letters["hook"]])
    assert code == 0
    assert results == [
        {"id": letters["hook"], "status": "replayed", "destination_id": "hook", "delivered": 2, "error": None}
    ]
    assert [r.json() for r in recorder.requests] == [HOOK_RECORDS]

    again, code = _json_out(capsys, cli.replay_dead_letters, letter_ids=[letters["hook"]])
    assert (code, again[0]["status"]) == (0, "already_replayed")
    assert len(recorder.requests) == 1  # delivered once

    replayed, _ = _json_out(capsys, cli.list_dead_letters, replayed="true")
    assert [(x["id"], x["replayed_to"], x["replay_attempts"]) for x in replayed["items"]] == [
        (letters["hook"], "hook", 1)
    ]


def test_a_failed_replay_stays_pending_with_its_error_then_goes_elsewhere(
    letters: dict[str, str], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results, code = _json_out(capsys, cli.replay_dead_letters, destination_id="down")
    assert code == 1
    [failed] = results
    assert (failed["id"], failed["status"], failed["delivered"]) == (letters["down"], "failed", 0)
    assert "destination 'down'" in failed["error"]

    shown, _ = _json_out(capsys, cli.show_dead_letter, letter_id=letters["down"])
    assert shown["replayed_at"] is None
    assert shown["replay_error"] == failed["error"]
    assert shown["replay_attempts"] == 1
    assert shown["error"] == "destination 'down' (webhook): connection refused"  # the original error stays

    # The same letter to another destination (files): delivered, and a second replay writes nothing new.
    results, code = _json_out(capsys, cli.replay_dead_letters, letter_ids=[letters["down"]], to="files")
    assert (code, results[0]["status"], results[0]["destination_id"]) == (0, "replayed", "files")
    [written] = replayed_files(tmp_path)
    assert [json.loads(line) for line in written.read_text().splitlines()] == DOWN_RECORDS
    shown, _ = _json_out(capsys, cli.show_dead_letter, letter_id=letters["down"])
    assert (shown["replayed_to"], shown["replay_error"], shown["replay_attempts"]) == ("files", None, 2)


def test_replay_to_an_unknown_destination_or_without_a_selection_is_refused(
    letters: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    capsys.readouterr()
    with pytest.raises(SystemExit) as info:
        cli.replay_dead_letters(_args(letter_ids=[letters["hook"]], to="nowhere"))
    assert info.value.code == 1
    assert "destinations row 'nowhere': field 'id': an existing destination" in capsys.readouterr().err
    with pytest.raises(SystemExit) as info:
        cli.replay_dead_letters(_args())
    assert info.value.code == 2
    shown, _ = _json_out(capsys, cli.show_dead_letter, letter_id=letters["hook"])
    assert (shown["replayed_at"], shown["replay_attempts"]) == (None, 0)


def test_concurrent_replays_of_one_letter_deliver_it_once(
    muxly_engine: Engine, letters: dict[str, str], recorder: Recorder
) -> None:
    start = threading.Barrier(4)
    statuses: list[str] = []

    def replay() -> None:
        start.wait()
        statuses.append(replay_letter(muxly_engine, letters["hook"]).status)

    threads = [threading.Thread(target=replay) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses).count("replayed") == 1
    assert set(statuses) <= {"replayed", "in_progress", "already_replayed"}
    assert [r.json() for r in recorder.requests] == [HOOK_RECORDS]


def test_migration_b2d5f9a3c8e4_downgrades_and_upgrades_with_letters_in_place(
    muxly_engine: Engine, letters: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from sqlalchemy import inspect

    from muxly_provider import settings
    from muxly_provider.db import migrate

    url = muxly_engine.url.render_as_string(hide_password=False)
    schema = settings.db_schema(url)
    assert replay_letter(muxly_engine, letters["hook"]).status == "replayed"

    migrate.downgrade(url, "a1c4e8f2b7d3")
    columns = {c["name"] for c in inspect(muxly_engine).get_columns("dead_letters", schema=schema)}
    assert not {c for c in columns if c.startswith("replay")}
    migrate.upgrade(url)

    # The letters stay; their replay history is gone (a downgrade forgets it), so they are pending again.
    listed, _ = _json_out(capsys, cli.list_dead_letters, replayed="false")
    assert listed["total"] == 3
    assert {x["replay_attempts"] for x in listed["items"]} == {0}


@pytest.mark.usefixtures("airflow_db", "files_root")
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
def test_letters_of_a_real_run_are_replayed_once_when_the_destination_is_back(
    muxly_engine: Engine, sales_api: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A ``dag.test()`` run while the webhook is down leaves letters; replayed once it is up, each record arrives
    exactly once, and replaying the run's letters again sends nothing."""
    port = free_port()
    hook = {"url": f"http://127.0.0.1:{port}/hook", "batch_size": 6, "retry_count": 0, "timeout_seconds": 2}
    dag = job_runs._job(muxly_engine, sales_api, "replayed", {"hook": ("webhook", hook)})
    run = dag.test()
    assert run.state == "failed"

    pending, _ = _json_out(capsys, cli.list_dead_letters, run_id=run.run_id, replayed="false")
    assert pending["total"] == 4  # 20 records in batches of 6

    with http_recorder(port=port) as server:
        results, code = _json_out(capsys, cli.replay_dead_letters, dag_id=dag.dag_id, run_id=run.run_id)
        assert code == 0 and {r["status"] for r in results} == {"replayed"}
        again, code = _json_out(capsys, cli.replay_dead_letters, dag_id=dag.dag_id, run_id=run.run_id)
        assert (code, again) == (0, [])  # nothing left to replay
    assert sorted((r for req in server.requests for r in req.json()), key=lambda r: r["order_id"]) == sorted(
        job_runs.RECORDS, key=lambda r: r["order_id"]
    )
