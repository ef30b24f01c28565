"""The router: fan-out, priority order, default destination, unmatched, error modes, no mutation."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from muxly_provider.exceptions import MuxlyConfigError, MuxlyTransformError
from muxly_provider.routing import ErrorHandlingSpec, Router, RouteSpec, RuleSpec, TransformationSpec


def rule(
    rule_id: str,
    condition: str | None,
    dests: tuple[str, ...],
    priority: int = 100,
    order: int = 0,
    steps: tuple[TransformationSpec, ...] = (),
) -> RuleSpec:
    return RuleSpec(
        id=rule_id,
        name=rule_id,
        condition=condition,
        destination_ids=dests,
        transformations=steps,
        priority=priority,
        sequence_order=order,
    )


def route(*rules: RuleSpec, **handling: Any) -> RouteSpec:
    return RouteSpec(id="r1", name="route", rules=rules, error_handling=ErrorHandlingSpec(**handling))


BREAK_A = TransformationSpec(id="t1", transformation_type="set_field", config={"field": "a.b", "value": 1})


def test_every_matching_rule_gets_its_own_copy_in_priority_order() -> None:
    router = Router(
        [
            route(
                rule("low", "x > 0", ("d3",), priority=200),
                rule(
                    "high",
                    "x > 0",
                    ("d1", "d2"),
                    priority=10,
                    steps=(TransformationSpec("s", "set_field", {"field": "tag", "value": "high"}),),
                ),
                rule("mid-b", None, ("d4",), priority=50, order=1),
                rule("mid-a", "x > 5", ("d5",), priority=50, order=1),
            )
        ]
    )
    record = {"x": 1, "nested": {"k": 1}}
    before = copy.deepcopy(record)
    out = router.route_record(record)
    assert [d for d, _ in out] == ["d1", "d2", "d4", "d3"]
    assert out[0][1] == {"x": 1, "nested": {"k": 1}, "tag": "high"}
    assert out[0][1] is not out[1][1]
    assert out[2][1] == record
    assert out[2][1] is not record
    assert record == before
    stats = router.stats.as_dict()
    assert stats["matched_per_rule"] == {"high": 1, "mid-a": 0, "mid-b": 1, "low": 1}
    assert stats["delivered_per_destination"] == {"d1": 1, "d2": 1, "d3": 1, "d4": 1, "d5": 0}


def test_unmatched_and_default_destination() -> None:
    router = Router([route(rule("us", "country == 'US'", ("us",)))])
    assert router.route_batch([{"country": "US"}, {"country": "FR"}, {}]) == {"us": [{"country": "US"}]}
    assert router.stats.unmatched == 2
    assert router.stats.records_in == 3

    router = Router([route(rule("us", "country == 'US'", ("us",)), default_destination_id="rest")])
    batches = router.route_batch([{"country": "FR", "i": 1}, {"country": "US"}, {"i": 2}])
    assert batches == {"rest": [{"country": "FR", "i": 1}, {"i": 2}], "us": [{"country": "US"}]}
    assert router.stats.unmatched == 0
    assert router.stats.defaulted == 2
    assert router.destination_ids() == {"us", "rest"}


def test_filtered_is_not_failed_and_still_matched() -> None:
    flt = TransformationSpec("f", "filter", {"field": "n", "operator": ">", "value": 5})
    router = Router([route(rule("r", None, ("d",), steps=(flt,)), default_destination_id="rest")])
    assert router.route_batch([{"n": 1}, {"n": 9}]) == {"d": [{"n": 9}]}
    stats = router.stats
    assert (stats.filtered, stats.failed, stats.defaulted) == (1, 0, 0)


def test_continue_mode_counts_failures_per_rule() -> None:
    router = Router([route(rule("bad", None, ("d",), steps=(BREAK_A,)), rule("ok", None, ("e",)))])
    batches = router.route_batch([{"a": "x"}, {"a": {}}])
    assert batches == {"e": [{"a": "x"}, {"a": {}}], "d": [{"a": {"b": 1}}]}
    assert router.stats.failed == 1
    assert router.stats.failed_per_rule == {"bad": 1, "ok": 0}


def test_dead_letter_mode() -> None:
    router = Router(
        [
            route(
                rule("bad", None, ("d",), steps=(BREAK_A,)),
                mode="dead_letter",
                dead_letter_destination_id="dlq",
            )
        ]
    )
    out = router.route_record({"a": "x"})
    assert len(out) == 1
    assert out[0][0] == "dlq"
    letter = out[0][1]
    assert letter["record"] == {"a": "x"}
    assert letter["rule_id"] == "bad"
    assert letter["route_id"] == "r1"
    assert letter["transformation_id"] == "t1"
    assert "'a.b'" in letter["error"]
    assert router.stats.dead_lettered == 1
    assert router.stats.failed == 0
    assert router.destination_ids() == {"d", "dlq"}


def test_fail_mode_raises() -> None:
    router = Router([route(rule("bad", None, ("d",), steps=(BREAK_A,)), mode="fail")])
    with pytest.raises(MuxlyTransformError, match="rule 'bad'"):
        router.route_record({"a": "x"})


@pytest.mark.parametrize("mode", ["continue", "dead_letter"])
def test_max_failed_records(mode: str) -> None:
    router = Router(
        [
            route(
                rule("bad", None, ("d",), steps=(BREAK_A,)),
                mode=mode,
                dead_letter_destination_id="dlq",
                max_failed_records=2,
            )
        ]
    )
    router.route_batch([{"a": "x"}, {"a": "y"}])
    with pytest.raises(MuxlyTransformError, match="max_failed_records=2"):
        router.route_record({"a": "z"})


def test_non_object_record_is_a_failure_not_a_crash() -> None:
    router = Router([route(rule("r", None, ("d",)))])
    assert router.route_record(["not", "a", "dict"]) == []  # type: ignore[arg-type]
    assert router.stats.failed == 1


def test_finish_flushes_aggregates_to_destinations() -> None:
    agg = TransformationSpec(
        "g", "aggregate", {"group_by": ["k"], "aggregations": [{"function": "count", "field": "*"}]}
    )
    router = Router([route(rule("sum", None, ("d1", "d2"), steps=(agg,)), rule("all", None, ("raw",)))])
    assert router.route_batch([{"k": 1}, {"k": 1}, {"k": 2}]) == {"raw": [{"k": 1}, {"k": 1}, {"k": 2}]}
    flushed = router.finish()
    assert flushed["d1"] == [{"k": 1, "count": 2}, {"k": 2, "count": 1}] == flushed["d2"]
    assert router.stats.delivered_per_destination["d1"] == 2


def test_several_routes_each_see_every_record() -> None:
    r2 = RouteSpec(id="r2", name="second", rules=(rule("b", "x == 1", ("b",)),))
    router = Router([route(rule("a", None, ("a",))), r2])
    assert router.route_batch([{"x": 1}, {"x": 2}]) == {"a": [{"x": 1}, {"x": 2}], "b": [{"x": 1}]}
    assert router.stats.unmatched == 1


def test_bad_configuration_is_a_config_error() -> None:
    with pytest.raises(MuxlyConfigError) as info:
        Router([route(rule("r", "x >", ("d",)))])
    assert (info.value.table, info.value.row_id, info.value.field) == ("routing_rules", "r", "condition")
    with pytest.raises(MuxlyConfigError, match="dead_letter_destination_id"):
        Router([route(rule("r", None, ("d",)), mode="dead_letter")])
