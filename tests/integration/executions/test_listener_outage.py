"""The listener holds its caller at most ``[muxly] listener_timeout_seconds`` when Muxly's database is slow or
down, and the rows it missed are filled in afterwards (the run's next write, ``executions reconcile``).

Muxly's database is a real PostgreSQL schema; the outages are real: a port that accepts TCP and never answers
(with no connect or statement timeout on the engine), a closed port, and a lock another connection holds on
``job_executions``. The hooks get DagRun-like objects; the same runs exist in Airflow's database for reconcile.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import Engine, create_engine, text

from muxly_provider.executions import listener
from muxly_provider.executions.reconcile import airflow_runs, reconcile
from muxly_provider.executions.recorder import execution_id
from tests.db_helpers import seed_api_job

pytestmark = [pytest.mark.usefixtures("airflow_db"), pytest.mark.postgres]

BOUND = 1.0
LIMIT = 3.0  # the bound plus a generous margin for a loaded machine


class SilentServer:
    """A TCP port that accepts connections and never says a word (a hung database server)."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(64)
        self.port = int(self.sock.getsockname()[1])
        self.accepted: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.accepted.append(conn)

    def close(self) -> None:
        """Stop listening and drop every connection (the server went away: blocked clients get an error)."""
        with contextlib.suppress(OSError):
            self.sock.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept() (close alone does not)
        self.sock.close()
        self._thread.join(5)
        for conn in self.accepted:
            conn.close()


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def muxly_pg(postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[str, Engine]]:
    """Muxly's tables in a fresh schema of the session's PostgreSQL database; the listener's writer reset."""
    from muxly_provider.db.engine import dispose_engines, get_engine
    from muxly_provider.db.migrate import upgrade

    schema = f"muxly_lt_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("AIRFLOW__MUXLY__DB_SCHEMA", schema)
    monkeypatch.setenv("AIRFLOW__MUXLY__SQL_ALCHEMY_CONN", postgres_url)
    # No engine timeouts: the bound must hold without them.
    monkeypatch.setenv("AIRFLOW__MUXLY__DB_CONNECT_TIMEOUT", "0")
    monkeypatch.setenv("AIRFLOW__MUXLY__DB_STATEMENT_TIMEOUT", "0")
    monkeypatch.setenv("AIRFLOW__MUXLY__LISTENER_TIMEOUT_SECONDS", str(BOUND))
    monkeypatch.setattr(listener, "_writer", None)
    upgrade(postgres_url)
    yield postgres_url, get_engine(postgres_url)
    listener.flush(10)
    dispose_engines()
    admin = create_engine(postgres_url)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


class Runs:
    """DAG runs of one job: rows in Airflow's database, and the DagRun-like objects the hooks get."""

    def __init__(self, job_id: str) -> None:
        self.dag_id = f"muxly__{job_id}"
        self.start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
        self.end = self.start + timedelta(seconds=42)

    def add(self, run_id: str) -> None:
        """Airflow's final state of the run: a REST-triggered run that succeeded."""
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session
        from airflow.utils.state import DagRunState
        from airflow.utils.types import DagRunTriggeredByType, DagRunType

        with create_session() as session:
            run = DagRun(
                dag_id=self.dag_id,
                run_id=run_id,
                run_after=self.start,
                start_date=self.start,
                state=DagRunState.SUCCESS,
                run_type=DagRunType.MANUAL,
                triggered_by=DagRunTriggeredByType.REST_API,
            )
            run.end_date = self.end
            session.add(run)

    def seen_by_hook(self, run_id: str, state: str) -> SimpleNamespace:
        return SimpleNamespace(
            dag_id=self.dag_id,
            run_id=run_id,
            state=state,
            start_date=self.start,
            end_date=self.end if state != "running" else None,
            clear_number=0,
            run_type="manual",
            triggered_by="rest_api",
            conf={},
        )


def _timed(hook: Callable[..., None], dag_run: Any) -> float:
    started = time.monotonic()
    hook(dag_run=dag_run, msg="")
    return time.monotonic() - started


def _row(engine: Engine, dag_id: str, run_id: str) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = (
            conn.execute(
                text("SELECT status, start_time, end_time, triggered_by FROM job_executions WHERE id = :id"),
                {"id": execution_id(dag_id, run_id)},
            )
            .mappings()
            .first()
        )
    return dict(row) if row else None


@contextmanager
def _outage(kind: str, url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Muxly's database slow or down for the block; healthy after it."""
    if kind == "locked":
        locker = create_engine(url).connect()
        schema = os.environ["AIRFLOW__MUXLY__DB_SCHEMA"]
        locker.execute(text(f'LOCK TABLE "{schema}".job_executions IN ACCESS EXCLUSIVE MODE'))
        try:
            yield
        finally:
            locker.rollback()
            locker.close()
        return
    base = url.rsplit("/", 1)
    if kind == "silent":
        server = SilentServer()
        port = server.port
    else:
        server = None
        port = _closed_port()
    monkeypatch.setenv(
        "AIRFLOW__MUXLY__SQL_ALCHEMY_CONN", f"postgresql+psycopg2://postgres@127.0.0.1:{port}/x"
    )
    try:
        yield
    finally:
        if server is not None:
            server.close()  # the hung connection attempt now fails; the writer goes on
        assert listener.flush(10), "the writer did not drain its queue after the outage"
        monkeypatch.setenv("AIRFLOW__MUXLY__SQL_ALCHEMY_CONN", base[0] + "/" + base[1])


@pytest.mark.parametrize("kind", ["silent", "refused", "locked"])
def test_hooks_return_within_the_bound_and_missed_rows_are_filled_in(
    kind: str,
    muxly_pg: tuple[str, Engine],
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    url, engine = muxly_pg
    job_id = f"lt_{kind}_{uuid.uuid4().hex[:6]}"
    seed_api_job(engine, job_id, f"{job_id}_conn")
    runs = Runs(job_id)
    for run_id in ("a", "c"):
        runs.add(run_id)
    caplog.set_level(logging.INFO, logger=listener.log.name)

    with _outage(kind, url, monkeypatch):
        first = _timed(listener.on_dag_run_running, runs.seen_by_hook("a", "running"))
        later = [
            _timed(listener.on_dag_run_success, runs.seen_by_hook("a", "success")),
            _timed(listener.on_dag_run_running, runs.seen_by_hook("c", "running")),
        ]
        assert first < LIMIT, f"{kind}: the first hook held its caller {first:.2f} s"
        # Once a write failed or outlived the bound, hooks do not wait for Muxly's database at all.
        assert max(later) < 0.5, f"{kind}: later hooks held their caller {later}"
        outage_warnings = [
            r
            for r in caplog.records
            if r.levelno == logging.WARNING and "Until writes work again" in r.message
        ]
        assert len(outage_warnings) == 1, [r.message for r in caplog.records]

    # The run's next write fills in its row: the 'running' write was missed (or is late), 'success' lands.
    assert _timed(listener.on_dag_run_success, runs.seen_by_hook("c", "success")) < LIMIT
    assert listener.flush(10)
    row_c = _row(engine, runs.dag_id, "c")
    assert row_c is not None
    assert (row_c["status"], row_c["triggered_by"]) == ("success", "api")
    assert (row_c["start_time"], row_c["end_time"]) == (
        runs.start.replace(tzinfo=None),
        runs.end.replace(tzinfo=None),
    )

    if kind == "locked":
        # Nothing was lost: the writes waited for the lock in the background, in order.
        assert _row(engine, runs.dag_id, "a") == {**row_c}
        assert any("fast again" in r.message for r in caplog.records)
    else:
        assert _row(engine, runs.dag_id, "a") is None  # run a's two writes were lost in the outage
        assert any("were missed" in r.message for r in caplog.records)

    # Reconcile fills in what is still missing from Airflow's run history, then finds nothing to do.
    since = runs.start - timedelta(minutes=1)
    changes = reconcile(engine, airflow_runs(since, job_id))
    expected = [] if kind == "locked" else [("create", "a", "success")]
    assert [(c.action, c.run_id, c.status_after) for c in changes] == expected
    assert _row(engine, runs.dag_id, "a") == {**row_c}
    assert reconcile(engine, airflow_runs(since, job_id)) == []
