"""The runner: per-destination batches, retries, failure isolation and dead letters (delivered + dead-lettered
== routed), with in-memory destinations and store."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any, ClassVar

import pytest

from muxly_provider.connectors.base import ConnectorContext, MuxlyConnector
from muxly_provider.destinations import batch_retries
from muxly_provider.destinations.base import (
    DestinationContext,
    MuxlyDestination,
    Record,
    RunInfo,
)
from muxly_provider.destinations.dead_letter import DeadLetter
from muxly_provider.routing.route_specs import ErrorHandlingSpec, RouteSpec, RuleSpec
from muxly_provider.runtime import delivery, runner
from muxly_provider.runtime.loading import JobRuntime

RUN = RunInfo(
    dag_id="muxly__j",
    run_id="manual__1",
    job_id="j",
    connector_id="c",
    logical_date=datetime(2026, 11, 26, tzinfo=UTC),
)
RECORDS = [{"id": i} for i in range(10)]


class ListConnector(MuxlyConnector):
    connector_type = "list"

    def fetch(self, data_spec: Mapping[str, Any]) -> Iterator[list[Record]]:
        for start in range(0, len(RECORDS), 4):
            yield RECORDS[start : start + 4]


class MemoryDestination(MuxlyDestination):
    """Fails the calls listed in its config ``fail_calls`` (1-based) with the configured error."""

    destination_type = "memory"
    written: ClassVar[dict[str, list[list[Record]]]] = {}

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls = 0
        self.written[self.context.id] = []

    def write_batch(self, records: list[Record]) -> None:
        self.calls += 1
        config = self.context.config
        if self.calls in config.get("fail_calls", ()) or config.get("always_fail"):
            if config.get("raw"):
                raise RuntimeError(f"boom with {config['password']}")
            raise self.fail("target refused", retryable=bool(config.get("retryable", True)))
        self.written[self.context.id].append(list(records))

    def commit(self) -> list[str]:
        return [f"memory:{self.context.id}"]


class MemoryStore:
    name = "memory"

    def __init__(self, fail: bool = False) -> None:
        self.letters: list[DeadLetter] = []
        self.resolved: list[tuple[str, set[int]]] = []
        self.fail = fail

    def put(self, letter: DeadLetter) -> None:
        if self.fail:
            raise ConnectionError("store down")
        self.letters.append(letter)

    def resolve(self, destination_id: str, failed_batches: Collection[int]) -> int:
        self.resolved.append((destination_id, set(failed_batches)))
        return 0


@pytest.fixture(autouse=True)
def _fakes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(runner, "get_connector_class", lambda _type: ListConnector)
    monkeypatch.setattr(delivery, "get_destination_class", lambda _type: MemoryDestination)
    monkeypatch.setattr(batch_retries.time, "sleep", lambda _seconds: None)


def _runtime(configs: dict[str, dict[str, Any]], routes: tuple[RouteSpec, ...] = ()) -> JobRuntime:
    return JobRuntime(
        job_id="j",
        name="J",
        action_type="pipeline" if routes else "export",
        action_params={},
        connector=ConnectorContext(id="c", name="C", connector_type="list"),
        routes=routes,
        destinations={
            d: DestinationContext(id=d, name=d, destination_type="memory", config=c)
            for d, c in configs.items()
        },
        export_destination_ids=tuple(d for d in configs if not routes),
    )


def _check_invariant(outcome: runner.RunOutcome) -> None:
    for counts in outcome.destinations.values():
        assert counts.routed == counts.delivered + counts.dead_lettered + counts.lost


def test_each_destination_gets_batches_of_its_own_size() -> None:
    store = MemoryStore()
    outcome = runner.run_job(
        _runtime({"a": {"batch_size": 3}, "b": {"batch_size": 100}}), RUN, {}, dead_letters=store
    )
    assert [len(b) for b in MemoryDestination.written["a"]] == [3, 3, 3, 1]
    assert [len(b) for b in MemoryDestination.written["b"]] == [10]
    assert [r for b in MemoryDestination.written["a"] for r in b] == RECORDS
    result = outcome.as_result()
    assert result["destinations"]["a"] == {
        "routed": 10,
        "delivered": 10,
        "failed": 0,
        "dead_lettered": 0,
        "lost": 0,
        "batches": 4,
        "outputs": ["memory:a"],
    }
    assert outcome.failed_destinations == []
    assert store.resolved == [("a", set()), ("b", set())]


def test_a_failed_batch_is_retried() -> None:
    outcome = runner.run_job(
        _runtime({"a": {"batch_size": 5, "fail_calls": [1, 2]}}), RUN, {}, dead_letters=MemoryStore()
    )
    counts = outcome.destinations["a"]
    assert (counts.delivered, counts.retries, counts.error) == (10, 2, None)


def test_a_permanent_failure_dead_letters_that_batch_only() -> None:
    store = MemoryStore()
    config = {"batch_size": 4, "fail_calls": [2], "retryable": False}
    outcome = runner.run_job(_runtime({"a": config, "b": {}}), RUN, {}, dead_letters=store)
    a = outcome.destinations["a"]
    assert (a.delivered, a.dead_lettered, a.retries) == (6, 4, 0)
    [letter] = store.letters
    assert (letter.destination_id, letter.batch_index, letter.records) == ("a", 1, RECORDS[4:8])
    assert "destination 'a' (memory): target refused" in letter.error
    assert outcome.failed_destinations == ["a"] and outcome.destinations["b"].delivered == 10
    assert ("a", {1}) in store.resolved
    _check_invariant(outcome)


def test_a_down_destination_stops_being_tried_and_loses_nothing() -> None:
    store = MemoryStore()
    config = {"batch_size": 3, "always_fail": True, "retry_count": 1}
    outcome = runner.run_job(_runtime({"down": config, "up": {"batch_size": 3}}), RUN, {}, dead_letters=store)
    down = outcome.destinations["down"]
    assert (down.delivered, down.dead_lettered, down.batches, down.retries) == (0, 10, 4, 1)
    assert [r for letter in store.letters for r in letter.records] == RECORDS
    assert "not attempted" in store.letters[1].error
    assert outcome.destinations["up"].delivered == 10
    result = outcome.as_result()
    assert result["dead_lettered"] == 10 and result["dead_letters"]["delivery"] == 10
    assert result["routed"] == result["delivered"] + result["dead_lettered"]
    _check_invariant(outcome)


def test_a_failing_store_counts_lost_records_and_says_so() -> None:
    outcome = runner.run_job(
        _runtime({"a": {"always_fail": True, "retry_count": 0}}), RUN, {}, dead_letters=MemoryStore(fail=True)
    )
    counts = outcome.destinations["a"]
    assert counts.lost == 10 and "dead-letter store failed too" in str(counts.error)
    assert outcome.as_result()["lost"] == 10
    _check_invariant(outcome)


def test_library_errors_are_redacted() -> None:
    secret = "hunter2-very-secret"
    outcome = runner.run_job(
        _runtime({"a": {"always_fail": True, "raw": True, "password": secret, "retry_count": 0}}),
        RUN,
        {},
        dead_letters=MemoryStore(),
    )
    error = str(outcome.destinations["a"].error)
    assert "RuntimeError: boom with ***" in error and secret not in error


def test_route_dead_letter_destination_receives_delivery_failures() -> None:
    route = RouteSpec(
        id="r",
        name="R",
        rules=(RuleSpec(id="all", name="all", condition=None, destination_ids=("a",)),),
        error_handling=ErrorHandlingSpec(mode="dead_letter", dead_letter_destination_id="dlq"),
    )
    store = MemoryStore()
    outcome = runner.run_job(
        _runtime({"a": {"always_fail": True, "retry_count": 0}, "dlq": {}}, routes=(route,)),
        RUN,
        {},
        dead_letters=store,
    )
    letters = [r for b in MemoryDestination.written["dlq"] for r in b]
    assert [letter["record"] for letter in letters] == RECORDS
    assert letters[0]["destination_id"] == "a" and "target refused" in letters[0]["error"]
    assert store.letters == []
    assert "dlq" not in outcome.destinations
    assert outcome.dead_letter_destinations["dlq"].delivered == 10
    assert outcome.destinations["a"].dead_lettered == 10
    _check_invariant(outcome)


def _dead_letter_route(targets: tuple[str, ...] = ("a",)) -> RouteSpec:
    return RouteSpec(
        id="r",
        name="R",
        rules=(RuleSpec(id="all", name="all", condition=None, destination_ids=targets),),
        error_handling=ErrorHandlingSpec(mode="dead_letter", dead_letter_destination_id="dlq"),
    )


def test_a_failing_dead_letter_destination_leaves_the_letters_in_the_table() -> None:
    store = MemoryStore()
    configs = {"a": {"always_fail": True, "retry_count": 0}, "dlq": {"always_fail": True, "retry_count": 0}}
    outcome = runner.run_job(_runtime(configs, routes=(_dead_letter_route(),)), RUN, {}, dead_letters=store)
    assert outcome.destinations["a"].dead_lettered == 10
    dlq = outcome.dead_letter_destinations["dlq"]
    assert (dlq.routed, dlq.delivered, dlq.dead_lettered, dlq.lost) == (10, 0, 10, 0)
    assert {letter.destination_id for letter in store.letters} == {"dlq"}
    stored = [r for letter in store.letters for r in letter.records]
    assert [r["record"] for r in stored] == RECORDS and all("target refused" in r["error"] for r in stored)
    assert outcome.failed_destinations == ["a", "dlq"]
    assert outcome.as_result()["lost"] == 0


def test_disabled_destinations_are_counted_and_skipped_not_failed() -> None:
    runtime = _runtime({"a": {}}, routes=(_dead_letter_route(("a", "off")),))
    runtime = replace(runtime, disabled_destinations=frozenset({"off"}))
    outcome = runner.run_job(runtime, RUN, {}, dead_letters=MemoryStore())
    result = outcome.as_result()
    assert result["skipped_disabled"] == {"off": 10}
    assert "off" not in result["destinations"] and outcome.failed_destinations == []


def test_a_delivery_that_never_finished_has_its_share_dead_lettered() -> None:
    """The ``dead_letters`` task finds no result of ``a``'s delivery task (killed): nothing routed is lost."""
    runtime = _runtime({"a": {}, "dlq": {}}, routes=(_dead_letter_route(),))
    manifest, routing = runner.route_and_stage(runtime, RUN, ListConnector(runtime.connector).fetch({}))
    assert routing.routed == {"a": 10} and manifest["dead_letter_targets"] == {"a": "dlq"}
    letters, unfinished = runner.deliver_dead_letters(runtime, RUN, manifest, MemoryStore())
    assert unfinished["a"].dead_lettered == 10 and "did not finish" in str(unfinished["a"].error)
    written = [r for b in MemoryDestination.written["dlq"] for r in b]
    assert [r["record"] for r in written] == RECORDS and letters["dlq"].delivered == 10


def test_each_share_is_staged_once_and_read_alone() -> None:
    routes = (
        RouteSpec(
            id="r",
            name="R",
            rules=(
                RuleSpec(id="even", name="even", condition="id IN (0, 2, 4, 6, 8)", destination_ids=("a",)),
                RuleSpec(id="all", name="all", condition=None, destination_ids=("b",)),
            ),
        ),
    )
    runtime = _runtime({"a": {}, "b": {}}, routes=routes)
    manifest, _ = runner.route_and_stage(runtime, RUN, ListConnector(runtime.connector).fetch({}))
    assert {d: m["records"] for d, m in manifest["shares"].items()} == {"a": 5, "b": 10}
    assert len(json.dumps(manifest)) < 1000  # XCom carries the manifest only
    counts = runner.deliver_share(runtime, RUN, manifest, "a", MemoryStore())
    assert counts.delivered == 5 and [r for b in MemoryDestination.written["a"] for r in b] == RECORDS[::2]


def test_an_export_to_a_disabled_destination_counts_it_as_skipped() -> None:
    runtime = replace(
        _runtime({"a": {}}), export_destination_ids=("a", "off"), disabled_destinations=frozenset({"off"})
    )
    result = runner.run_job(runtime, RUN, {}, dead_letters=MemoryStore()).as_result()
    assert result["skipped_disabled"] == {"off": 10}
    assert result["routed"] == result["delivered"] == 10 and list(result["destinations"]) == ["a"]


def test_transformation_failures_for_a_disabled_dead_letter_destination_stay_in_the_table() -> None:
    from muxly_provider.routing.route_specs import TransformationSpec

    step = TransformationSpec("t", "formula", {"output_field": "y", "formula": "missing * 2"}, 1)
    route = RouteSpec(
        id="r",
        name="R",
        rules=(
            RuleSpec(id="all", name="all", condition=None, destination_ids=("a",), transformations=(step,)),
        ),
        error_handling=ErrorHandlingSpec(mode="dead_letter", dead_letter_destination_id="dlq"),
    )
    runtime = replace(_runtime({"a": {}}, routes=(route,)), disabled_destinations=frozenset({"dlq"}))
    store = MemoryStore()
    result = runner.run_job(runtime, RUN, {}, dead_letters=store).as_result()
    assert result["dead_letters"]["transform"] == 10 and result["dead_lettered"] == 10
    assert {letter.destination_id for letter in store.letters} == {"dlq"}
    assert [letter.batch_index for letter in store.letters] == [0, 1, 2]  # distinct rows in the table
    assert all("disabled" in letter.error for letter in store.letters)
    stored = [r for letter in store.letters for r in letter.records]
    assert [r["record"] for r in stored] == RECORDS and stored[0]["transformation_id"] == "t"
    assert result["routed"] == result["dead_lettered"] == 10 and result["delivered"] == 0
    assert result["destinations"]["a"]["routed"] == 0


@pytest.mark.parametrize("mode", ["continue", "fail"])
def test_unmatched_and_failed_records_are_counted_once_or_fail_the_extract(mode: str) -> None:
    from muxly_provider.exceptions import MuxlyTransformError
    from muxly_provider.routing.route_specs import TransformationSpec

    step = TransformationSpec("t", "formula", {"output_field": "y", "formula": "missing * 2"}, 1)
    route = RouteSpec(
        id="r",
        name="R",
        rules=(
            RuleSpec(id="low", name="low", condition="id < 3", destination_ids=("a",)),
            RuleSpec(
                id="odd",
                name="odd",
                condition="id IN (5, 7)",
                destination_ids=("a",),
                transformations=(step,),
            ),
        ),
        error_handling=ErrorHandlingSpec(mode=mode),
    )
    runtime = _runtime({"a": {}}, routes=(route,))
    if mode == "fail":
        with pytest.raises(MuxlyTransformError, match="rule 'odd'"):
            runner.run_job(runtime, RUN, {}, dead_letters=MemoryStore())
        return
    result = runner.run_job(runtime, RUN, {}, dead_letters=MemoryStore()).as_result()
    assert (result["routed"], result["unmatched"], result["failed_records"]) == (3, 5, 2)
