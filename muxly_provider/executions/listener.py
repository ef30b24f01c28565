"""Airflow listener that mirrors every Muxly DAG run into ``job_executions``, without ever stalling Airflow.

``on_dag_run_running`` fires in the scheduler; ``on_dag_run_success``/``on_dag_run_failed`` also fire when a
worker was killed (after the heartbeat timeout), on a manual state change in the api-server, and in
``dag.test()``. The hooks run inside the scheduler's loop and transaction, so a slow or stopped Muxly database
must not hold them. Design:

- The hook snapshots the run (:class:`~muxly_provider.executions.dag_runs.DagRunFacts`, attribute reads only) and
  hands the write to **one background daemon thread per process** through a bounded FIFO queue
  (:data:`QUEUE_SIZE`). One thread and one queue keep the writes of a run in order (``running`` before
  ``success``); the recorder's merge keeps a final status over a late ``running`` of the same attempt anyway.
- The hook then waits for its own write **at most** ``[muxly] listener_timeout_seconds`` (default 2 s): with a
  healthy database the row is written when the hook returns, as before. On timeout it returns; the write goes on
  in the background and lands (or fails) later. The wait also lets the scheduler commit when Muxly's SQLite file
  is locked by that very transaction: the write then lands right after the commit instead of being lost.
- **Outage mode**: after a write failed or outlived the bound, hooks enqueue and return at once (no wait)
  until a write succeeds again, so a scheduler loop that finishes many runs is not held ``bound x runs``. A full
  queue drops its **oldest** write (a later write of the same run supersedes it). Failures, timeouts and drops
  are logged **once per outage** (a warning), and when writes work again one line says how many were missed.
- A write stuck longer than :data:`STALL_SECONDS` (a connection that never answers, with no engine timeouts) is
  abandoned: a fresh thread takes over the queue (at most :data:`MAX_ABANDONED` stuck threads at once); the
  stuck write may still land late, and the recorder never lets it undo a final status.
- ``dag.test()`` runs (``triggered_by == test``) are not the scheduler: their hooks wait up to
  :data:`TEST_RUN_WAIT_SECONDS` so the row is final when ``dag.test()`` returns. At interpreter exit the queue
  is flushed for at most the bound. A forked child starts with an empty writer.

What a missed write costs and how it is filled in: the next write for the run (the operator's, or the listener's
next hook) upserts the same row, and ``airflow muxly executions reconcile`` rewrites every row that disagrees
with Airflow's run history (see ``docs/jobs.md``). The hooks never raise into Airflow.
"""

from __future__ import annotations

import atexit
import collections
import logging
import os
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from airflow.listeners import hookimpl

from muxly_provider.dag_factory.naming import DAG_ID_PREFIX
from muxly_provider.executions.dag_runs import DagRunFacts

log = logging.getLogger(__name__)

TIMEOUT_SETTING = "listener_timeout_seconds"
DEFAULT_TIMEOUT_SECONDS = 2.0
QUEUE_SIZE = 1000
"""Writes waiting at most; a full queue drops its oldest."""
STALL_SECONDS = 60.0
"""A write running longer than this (and at least ten times the bound) is abandoned to a fresh thread."""
MAX_ABANDONED = 3
"""Stuck writer threads kept at most; beyond that the queue waits for one of them."""
TEST_RUN_WAIT_SECONDS = 30.0
"""How long a ``dag.test()`` run's hook waits for its write (not the scheduler: the row must be final)."""


def listener_timeout() -> float:
    """The longest a hook holds its caller, in seconds (``[muxly] listener_timeout_seconds``, default 2).

    ``0`` never waits (every write is left to the background thread); a value that is not a number is the
    default (logged).
    """
    from muxly_provider.settings import SECTION, conf_get

    raw = conf_get(SECTION, TIMEOUT_SETTING, str(DEFAULT_TIMEOUT_SECONDS)).strip()
    try:
        value = float(raw or DEFAULT_TIMEOUT_SECONDS)
    except ValueError:
        log.warning(
            "[muxly] %s = %r is not a number of seconds; using %s",
            TIMEOUT_SETTING,
            raw,
            DEFAULT_TIMEOUT_SECONDS,
        )
        return DEFAULT_TIMEOUT_SECONDS
    return max(0.0, value)


@dataclass
class _Write:
    facts: DagRunFacts
    status: str
    msg: str | None
    done: threading.Event = field(default_factory=threading.Event)
    ok: bool = False


def _write(item: _Write) -> None:
    """Upsert one run's row through Muxly's engine (runs in the writer thread)."""
    from muxly_provider.dag_factory.naming import job_id_for_dag_id
    from muxly_provider.db.engine import get_engine
    from muxly_provider.executions.dag_runs import execution_update
    from muxly_provider.executions.recorder import upsert_execution

    engine = get_engine()
    job_id = job_id_for_dag_id(engine, item.facts.dag_id)
    if job_id is None:
        log.warning("Muxly: no job row for DAG %s; run %s not mirrored", item.facts.dag_id, item.facts.run_id)
        return
    upsert_execution(engine, execution_update(item.facts, job_id, item.status, item.msg))


class _Writer:
    """The process's background writer: a bounded FIFO queue drained by one daemon thread."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._queue: collections.deque[_Write] = collections.deque()
        self._generation = 0
        self._thread: threading.Thread | None = None
        self._abandoned: list[threading.Thread] = []
        self._busy_since: float | None = None
        self.outage_since: float | None = None
        self.missed = 0

    # -- called by the hooks (any thread) --------------------------------------------------------------------
    def submit(self, item: _Write) -> None:
        """Queue ``item`` (dropping the oldest write when full) and make sure a thread drains the queue."""
        with self._cond:
            if len(self._queue) >= QUEUE_SIZE:
                dropped = self._queue.popleft()
                self._missed(
                    "the queue of job_executions writes is full (%d)",
                    QUEUE_SIZE,
                    what=f"dropped the write '{dropped.status}' of run {dropped.facts.run_id}",
                )
                dropped.done.set()
            self._queue.append(item)
            self._ensure_thread()
            self._cond.notify()

    @property
    def degraded(self) -> bool:
        """Whether writes are failing or slow (hooks then do not wait)."""
        return self.outage_since is not None

    def timed_out(self, item: _Write, waited: float) -> None:
        """A hook stopped waiting for ``item`` after ``waited`` seconds."""
        with self._cond:
            if item.done.is_set():
                return  # finished right after the hook gave up: not slow
            self._missed(
                "writing run %s of %s took longer than %.1f s ([muxly] %s)",
                item.facts.run_id,
                item.facts.dag_id,
                waited,
                TIMEOUT_SETTING,
                what="the write goes on in the background",
                count=False,
            )

    def flush(self, timeout: float) -> bool:
        """Wait until every queued write is done, at most ``timeout`` seconds; whether the queue drained."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._queue or self._busy_since is not None:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(min(left, 0.05))
        return True

    # -- internals (self._cond held) -------------------------------------------------------------------------
    def _missed(self, reason: str, *args: Any, what: str, count: bool = True) -> None:
        if count:
            self.missed += 1
        if self.outage_since is None:
            self.outage_since = time.monotonic()
            log.warning(
                "Muxly: " + reason + "; %s. Until writes work again the listener does not wait for Muxly's "
                "database; missed rows are filled in by the run's next write or by "
                "'airflow muxly executions reconcile'",
                *args,
                what,
            )

    def _ensure_thread(self) -> None:
        self._abandoned = [t for t in self._abandoned if t.is_alive()]
        stuck = (
            self._busy_since is not None
            and time.monotonic() - self._busy_since > max(STALL_SECONDS, 10 * listener_timeout())
            and len(self._abandoned) < MAX_ABANDONED
        )
        if self._thread is not None and self._thread.is_alive() and not stuck:
            return
        if stuck and self._thread is not None:
            log.warning(
                "Muxly: a job_executions write has not returned for %.0f s; a new writer thread takes over",
                time.monotonic() - (self._busy_since or 0),
            )
            self._abandoned.append(self._thread)
        self._generation += 1
        self._busy_since = None
        self._thread = threading.Thread(
            target=self._run,
            args=(self._generation,),
            name=f"muxly-executions-writer-{self._generation}",
            daemon=True,
        )
        self._thread.start()

    # -- the writer thread -----------------------------------------------------------------------------------
    def _run(self, generation: int) -> None:
        while True:
            with self._cond:
                while not self._queue and generation == self._generation:
                    self._cond.wait()
                if generation != self._generation:
                    return
                item = self._queue.popleft()
                self._busy_since = time.monotonic()
            error: BaseException | None = None
            try:
                _write(item)
            except Exception as exc:
                error = exc
            with self._cond:
                current = generation == self._generation
                if current:
                    self._busy_since = None
                item.ok = error is None
                item.done.set()
                if error is not None:
                    self._missed(
                        "could not write run %s of %s into job_executions (%s: %s)",
                        item.facts.run_id,
                        item.facts.dag_id,
                        type(error).__name__,
                        str(error).splitlines()[0][:300] if str(error) else "",
                        what="the write is lost",
                    )
                elif self.outage_since is not None:
                    if self.missed:
                        log.warning(
                            "Muxly: job_executions writes work again after %.0f s; %d write(s) were missed: "
                            "run 'airflow muxly executions reconcile' to fill in the rows they left out of date",
                            time.monotonic() - self.outage_since,
                            self.missed,
                        )
                    else:
                        log.info(
                            "Muxly: job_executions writes are fast again after %.0f s; none was missed",
                            time.monotonic() - self.outage_since,
                        )
                    self.outage_since = None
                    self.missed = 0
                self._cond.notify_all()
                if not current:
                    return


_writer_lock = threading.Lock()
_writer: _Writer | None = None


def _get_writer() -> _Writer:
    global _writer
    with _writer_lock:
        if _writer is None:
            _writer = _Writer()
            atexit.register(_flush_at_exit)
        return _writer


def _flush_at_exit() -> None:
    writer = _writer
    if writer is not None and not writer.flush(listener_timeout()):
        log.warning(
            "Muxly: job_executions writes still queued at exit are lost (see muxly executions reconcile)"
        )


def _after_fork_in_child() -> None:
    # The writer thread does not survive a fork, and its lock may have been held: start afresh.
    global _writer, _writer_lock
    _writer = None
    _writer_lock = threading.Lock()


os.register_at_fork(after_in_child=_after_fork_in_child)


def flush(timeout: float | None = None) -> bool:
    """Wait until the queued writes are done (at most ``timeout``, default the bound); whether they are.

    :param timeout: seconds to wait at most
    """
    writer = _writer
    return True if writer is None else writer.flush(listener_timeout() if timeout is None else timeout)


def _record(dag_run: Any, status: str, msg: str | None) -> None:
    started = time.monotonic()
    try:
        dag_id = str(getattr(dag_run, "dag_id", ""))
        if not dag_id.startswith(DAG_ID_PREFIX):
            return
        facts = DagRunFacts.of(dag_run)
        bound = listener_timeout()
        writer = _get_writer()
        item = _Write(facts, status, msg)
        wait = 0.0 if writer.degraded else bound
        if facts.is_test:
            wait = max(bound, TEST_RUN_WAIT_SECONDS)
        writer.submit(item)
        if wait > 0 and not item.done.wait(max(0.0, wait - (time.monotonic() - started))):
            writer.timed_out(item, time.monotonic() - started)
    except Exception:
        log.exception(
            "Muxly: could not mirror DAG run %s of %s into job_executions",
            getattr(dag_run, "run_id", "?"),
            getattr(dag_run, "dag_id", "?"),
        )


@hookimpl
def on_dag_run_running(dag_run: Any, msg: str) -> None:
    """A Muxly DAG run started (or started again after a clear)."""
    _record(dag_run, "running", msg)


@hookimpl
def on_dag_run_success(dag_run: Any, msg: str) -> None:
    """A Muxly DAG run succeeded."""
    _record(dag_run, "success", msg)


@hookimpl
def on_dag_run_failed(dag_run: Any, msg: str) -> None:
    """A Muxly DAG run failed (including a run whose worker was killed)."""
    _record(dag_run, "failed", msg)
