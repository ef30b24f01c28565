"""Work of the api-server that reaches other systems, bounded in time: a connector sample, a destination test.

The work runs in a daemon thread; the request waits for it at most a given number of seconds. A library call
that hangs past the bound keeps its thread until its own timeout (every connector and destination sets one)
but no longer holds the request. A sample is told to stop through an event and keeps the records already read.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

T = TypeVar("T")


class Overtime(Exception):
    """The work did not finish within its bound."""


def call_within(seconds: float, work: Callable[[], T]) -> T:
    """``work()``, or :class:`Overtime` after ``seconds`` (its exception is raised here).

    :raises Overtime: when ``work`` is still running after ``seconds``
    """
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # handed to the waiting request
            outcome["error"] = exc

    thread = threading.Thread(target=run, name="muxly-api-bounded", daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        raise Overtime
    if "error" in outcome:
        raise outcome["error"]
    value: T = outcome["value"]
    return value


@dataclass
class Sample:
    """Records read by :func:`read_sample`: at most ``limit``; ``truncated`` when more were there or time ran out."""

    records: list[dict[str, Any]] = field(default_factory=list)
    truncated: bool = False
    timed_out: bool = False


def _plain(record: Mapping[str, Any]) -> dict[str, Any]:
    """``record`` as JSON types (dates, decimals and bytes as text), as the run would hand it on."""
    plain = json.loads(json.dumps(dict(record), default=str))
    assert isinstance(plain, dict)
    return plain


def read_sample(connector: Any, data_spec: Mapping[str, Any], *, limit: int, seconds: float) -> Sample:
    """The first ``limit`` records of ``connector.fetch(data_spec)``, within ``seconds``.

    The connector is built with a batch size of ``limit + 1``, so one more record tells that there were more.
    Its generator and connections are closed by the reading thread, also after a timeout.

    :raises MuxlyError: what the connector raised (its messages never quote the remote server)
    """
    stop = threading.Event()
    read: list[Mapping[str, Any]] = []

    def work() -> None:
        batches = connector.fetch(dict(data_spec))
        try:
            for batch in batches:
                read.extend(batch)
                if len(read) > limit or stop.is_set():
                    break
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()
            connector.close()

    sample = Sample()
    try:
        call_within(seconds, work)
    except Overtime:
        stop.set()
        sample.timed_out = True
    taken = list(read[: limit + 1])
    sample.truncated = sample.timed_out or len(taken) > limit
    sample.records = [_plain(record) for record in taken[:limit]]
    return sample
