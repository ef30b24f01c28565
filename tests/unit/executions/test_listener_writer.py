"""The listener's background writer: order, the bound, outage mode, a full queue, a stuck write, dag.test() runs.

The database write itself is replaced by a recording function (the real writes are covered by
``tests/integration/executions/test_listener_outage.py``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

import pytest

from muxly_provider.executions import listener


@pytest.fixture
def writes(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, str]]]:
    """Every write the writer thread makes, as ``(run_id, status)``; ``block`` holds writes while set."""
    done: list[tuple[str, str]] = []
    monkeypatch.setattr(listener, "_writer", None)
    monkeypatch.setenv("AIRFLOW__MUXLY__LISTENER_TIMEOUT_SECONDS", "0.5")
    yield done
    listener.flush(5)


def _fake(write: Callable[[Any], None], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(listener, "_write", write)


def _run(run_id: str, triggered_by: str = "rest_api") -> SimpleNamespace:
    return SimpleNamespace(
        dag_id="muxly__j",
        run_id=run_id,
        state="running",
        start_date=datetime(2026, 12, 1, tzinfo=UTC),
        end_date=None,
        clear_number=0,
        run_type="manual",
        triggered_by=triggered_by,
        conf={},
    )


def _timed(hook: Callable[..., None], run: Any) -> float:
    started = time.monotonic()
    hook(dag_run=run, msg="")
    return time.monotonic() - started


def test_writes_keep_their_order_and_a_healthy_write_is_done_when_the_hook_returns(
    writes: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    def write(item: Any) -> None:
        time.sleep(0.01)
        writes.append((item.facts.run_id, item.status))

    _fake(write, monkeypatch)
    for i in range(5):
        listener.on_dag_run_running(dag_run=_run(f"r{i}"), msg="")
        assert writes[-1] == (f"r{i}", "running")  # waited for its own write
        listener.on_dag_run_success(dag_run=_run(f"r{i}"), msg="")
        assert writes[-1] == (f"r{i}", "success")
    assert [s for _, s in writes] == ["running", "success"] * 5
    listener.on_dag_run_running(dag_run=SimpleNamespace(dag_id="other_dag", run_id="x"), msg="")
    assert len(writes) == 10  # not a Muxly DAG


def test_slow_writes_hold_the_hook_at_most_the_bound_then_not_at_all(
    writes: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()

    def write(item: Any) -> None:
        release.wait(10)
        writes.append((item.facts.run_id, item.status))

    _fake(write, monkeypatch)
    first = _timed(listener.on_dag_run_running, _run("a"))
    assert 0.4 < first < 1.5
    later = [_timed(listener.on_dag_run_success, _run("a")), _timed(listener.on_dag_run_running, _run("b"))]
    assert max(later) < 0.1
    assert sum("Until writes work again" in r.message for r in caplog.records) == 1
    release.set()
    assert listener.flush(5)
    assert writes == [("a", "running"), ("a", "success"), ("b", "running")]  # late, but all and in order
    assert any("fast again" in r.message for r in caplog.records)
    assert _timed(listener.on_dag_run_success, _run("c")) < 0.4  # healthy again: waits, briefly
    assert writes[-1] == ("c", "success")


def test_failures_are_logged_once_per_outage(
    writes: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    healthy = threading.Event()

    def write(item: Any) -> None:
        if not healthy.is_set():
            raise ConnectionRefusedError("connection refused")
        writes.append((item.facts.run_id, item.status))

    _fake(write, monkeypatch)
    for i in range(5):
        assert _timed(listener.on_dag_run_running, _run(f"r{i}")) < 0.5
    assert listener.flush(5)
    warnings = [r.message for r in caplog.records if "Until writes work again" in r.message]
    assert len(warnings) == 1 and "ConnectionRefusedError: connection refused" in warnings[0]
    healthy.set()
    listener.on_dag_run_success(dag_run=_run("r4"), msg="")
    assert listener.flush(5)
    assert writes == [("r4", "success")]
    assert any("5 write(s) were missed" in r.message for r in caplog.records)


def test_a_full_queue_drops_its_oldest_write(
    writes: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    release = threading.Event()

    def write(item: Any) -> None:
        release.wait(10)
        writes.append((item.facts.run_id, item.status))

    _fake(write, monkeypatch)
    monkeypatch.setattr(listener, "QUEUE_SIZE", 2)
    for i in range(5):  # r0 is being written; r1..r4 queue, two fit
        listener.on_dag_run_running(dag_run=_run(f"r{i}"), msg="")
    release.set()
    assert listener.flush(5)
    assert writes == [("r0", "running"), ("r3", "running"), ("r4", "running")]


def test_a_stuck_write_is_left_to_its_thread_and_a_fresh_one_takes_over(
    writes: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    stuck = threading.Event()

    def write(item: Any) -> None:
        if item.facts.run_id == "stuck":
            stuck.wait(30)
        writes.append((item.facts.run_id, item.status))

    _fake(write, monkeypatch)
    monkeypatch.setenv("AIRFLOW__MUXLY__LISTENER_TIMEOUT_SECONDS", "0.05")
    monkeypatch.setattr(listener, "STALL_SECONDS", 0.3)
    listener.on_dag_run_running(dag_run=_run("stuck"), msg="")
    listener.on_dag_run_running(dag_run=_run("waits"), msg="")
    time.sleep(0.6)
    listener.on_dag_run_running(dag_run=_run("next"), msg="")  # finds the write stuck: a new thread
    deadline = time.monotonic() + 5
    while len(writes) < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert writes == [("waits", "running"), ("next", "running")]
    stuck.set()  # the abandoned write still lands (the recorder keeps a final status over a late 'running')
    deadline = time.monotonic() + 5
    while len(writes) < 3 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert writes[-1] == ("stuck", "running")


def test_a_dag_test_run_waits_for_its_row(
    writes: list[tuple[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    def write(item: Any) -> None:
        time.sleep(1.0)
        writes.append((item.facts.run_id, item.status))

    _fake(write, monkeypatch)
    listener.on_dag_run_success(dag_run=_run("t", triggered_by="test"), msg="")
    assert writes == [("t", "success")]  # the bound (0.5 s) does not apply: dag.test() is not the scheduler


def test_the_bound_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__MUXLY__LISTENER_TIMEOUT_SECONDS", "0.25")
    assert listener.listener_timeout() == 0.25
    monkeypatch.setenv("AIRFLOW__MUXLY__LISTENER_TIMEOUT_SECONDS", "-3")
    assert listener.listener_timeout() == 0.0
    monkeypatch.setenv("AIRFLOW__MUXLY__LISTENER_TIMEOUT_SECONDS", "soon")
    assert listener.listener_timeout() == listener.DEFAULT_TIMEOUT_SECONDS
    monkeypatch.delenv("AIRFLOW__MUXLY__LISTENER_TIMEOUT_SECONDS")
    assert listener.listener_timeout() == 2.0
