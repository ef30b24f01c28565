"""The preview of a run (:func:`muxly_provider.preview.preview_job`): routed and rendered per destination like a
run, every failure with its error, bounded in records and time, secrets replaced, and nothing written."""

from __future__ import annotations

import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from muxly_provider.connectors.base import ConnectorContext
from muxly_provider.destinations.base import DestinationContext
from muxly_provider.preview import MAX_RECORDS, MuxlyPreviewError, preview_job
from muxly_provider.routing.route_specs import ErrorHandlingSpec, RouteSpec, RuleSpec, TransformationSpec
from muxly_provider.runtime.loading import JobRuntime
from tests.unit.connectors.fake_servers import LocalServer, Reply, Request

WHEN = datetime(2026, 11, 26, 8, 30, tzinfo=UTC)
TOKEN = "tok-0123456789-secret"


def _step(step_id: str, kind: str, **config: Any) -> TransformationSpec:
    return TransformationSpec(id=step_id, transformation_type=kind, config=config)


def _dest(dest_id: str, kind: str, **config: Any) -> DestinationContext:
    return DestinationContext(id=dest_id, name=dest_id.title(), destination_type=kind, config=config)


def _runtime(
    tmp_path: Path,
    *,
    mode: str = "continue",
    max_failed: int | None = None,
    connector: ConnectorContext | None = None,
    routes: tuple[RouteSpec, ...] | None = None,
    action: str = "sync",
    export_ids: tuple[str, ...] = (),
    secrets: tuple[str, ...] = (),
) -> JobRuntime:
    big = RuleSpec(
        id="big",
        name="Big",
        condition="total > 100",
        destination_ids=("rows", "files"),
        transformations=(_step("ratio", "formula", output_field="half", formula="total / 2"),),
        priority=1,
    )
    fragile = RuleSpec(
        id="fragile",
        name="Fragile",
        condition="EXISTS note",
        destination_ids=("hook",),
        transformations=(_step("nest", "set_field", field="note.x", value=1),),
        priority=2,
    )
    handling = ErrorHandlingSpec(
        mode=mode,  # type: ignore[arg-type]
        default_destination_id=None,
        dead_letter_destination_id="letters" if mode == "dead_letter" else None,
        max_failed_records=max_failed,
    )
    default_routes = (RouteSpec(id="main", name="Main", rules=(big, fragile), error_handling=handling),)
    destinations = {
        "rows": _dest(
            "rows",
            "database",
            conn_id="warehouse",
            table="orders",
            column_mapping={"id": "order_id", "half": "half"},
        ),
        "files": _dest("files", "file", output_dir=str(tmp_path / "out"), file_format="jsonl"),
        "hook": _dest(
            "hook",
            "webhook",
            url=f"https://hooks.example.com/in?key={TOKEN}",
            headers={"Authorization": f"Bearer {TOKEN}"},
            body_template={"n": "{{count}}", "first": "{{record.id}}"},
        ),
        "letters": _dest("letters", "file", output_dir=str(tmp_path / "letters")),
    }
    return JobRuntime(
        job_id="orders",
        name="Orders",
        action_type=action,
        action_params={"data_spec": {"query_params": {"day": "${DATE}"}}},
        connector=connector or ConnectorContext(id="src", name="Src", connector_type="api"),
        routes=default_routes if routes is None else routes,
        destinations=destinations,
        disabled_destinations=frozenset({"off"}),
        export_destination_ids=export_ids,
        secrets=(TOKEN, *secrets),
    )


RECORDS = [
    {"id": 1, "total": 300},
    {"id": 2, "total": 5},
    {"id": 3, "total": 500, "note": "fragile"},
    {"id": 4, "total": 7, "note": "also"},
]


def _by_id(answer: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {d["id"]: d for d in answer["destinations"]}


def test_routes_renders_per_destination_and_keeps_failures(tmp_path: Path) -> None:
    answer = preview_job(_runtime(tmp_path), records=RECORDS, when=WHEN)
    assert answer["source"] == "records" and answer["records_in"] == 4 and answer["error"] is None
    assert answer["unmatched"] == 1 and answer["unmatched_records"] == [{"id": 2, "total": 5}]
    assert answer["matched_per_rule"] == {"big": 2, "fragile": 2}
    dests = _by_id(answer)
    assert set(dests) == {"rows", "files", "hook", "letters", "off"}
    rows = dests["rows"]
    assert rows["routed"] == 2 and rows["rendered_as"] == "row"
    assert rows["rendered"] == [{"order_id": 1, "half": 150.0}, {"order_id": 3, "half": 250.0}]
    assert rows["target"] == "table orders, insert"
    files = dests["files"]
    assert files["rendered"] == ['{"id": 1, "total": 300, "half": 150.0}', files["rendered"][1]]
    assert files["records"][1] == {"id": 3, "total": 500, "note": "fragile", "half": 250.0}
    # Both fragile records fail their step ("note" is text): kept with the error, nothing for the webhook.
    assert dests["hook"]["routed"] == 0 and dests["hook"]["rendered"] == []
    assert answer["failures_total"] == 2
    failure = answer["failures"][0]
    assert failure["route_id"] == "main" and failure["rule_id"] == "fragile" and failure["mode"] == "continue"
    assert failure["transformation_id"] == "nest" and "note" in failure["error"]
    assert failure["record"] == {"id": 3, "total": 500, "note": "fragile"}
    assert dests["off"]["enabled"] is False and dests["letters"]["routed"] == 0
    assert not (tmp_path / "out").exists() and not (tmp_path / "letters").exists()


def test_dead_letter_mode_sends_failures_to_the_dead_letter_destination(tmp_path: Path) -> None:
    answer = preview_job(_runtime(tmp_path, mode="dead_letter"), records=RECORDS, when=WHEN)
    letters = _by_id(answer)["letters"]
    assert letters["routed"] == 2
    first = letters["records"][0]
    assert first["record"] == {"id": 3, "total": 500, "note": "fragile"}
    assert first["rule_id"] == "fragile" and first["run_id"] == "preview__20261126T083000"
    assert first["dag_id"] == "muxly__orders" and "note" in first["error"]
    assert {f["dead_letter_destination_id"] for f in answer["failures"]} == {"letters"}
    # What each destination refuses at delivery goes there too.
    assert _by_id(answer)["hook"]["dead_letter_destination_id"] == "letters"


def test_fail_mode_and_max_failed_records_say_the_run_would_fail(tmp_path: Path) -> None:
    failed = preview_job(_runtime(tmp_path, mode="fail"), records=RECORDS, when=WHEN)
    assert failed["error"].startswith("the run would fail: route 'main', rule 'fragile'")
    assert failed["failures_total"] == 1  # stopped at the first failure, as a run would
    assert _by_id(failed)["rows"]["routed"] == 2  # record 3 matched "big" before its "fragile" step failed
    too_many = preview_job(_runtime(tmp_path, max_failed=0), records=RECORDS, when=WHEN)
    assert "more than max_failed_records=0" in too_many["error"]


def test_export_sends_every_record_to_each_destination(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path, routes=(), action="export", export_ids=("files", "off"))
    answer = preview_job(runtime, records=RECORDS[:2], when=WHEN)
    dests = _by_id(answer)
    assert dests["files"]["routed"] == 2 and dests["off"]["routed"] == 2
    assert dests["off"]["rendered"] == [] and dests["rows"]["routed"] == 0


def test_secrets_never_appear_in_the_answer(tmp_path: Path) -> None:
    leaky = RuleSpec(id="all", name="All", condition=None, destination_ids=("hook",))
    routes = (RouteSpec(id="r", name="R", rules=(leaky,)),)
    answer = preview_job(
        _runtime(tmp_path, routes=routes), records=[{"id": 7, "echo": f"x{TOKEN}y"}], when=WHEN
    )
    [request] = _by_id(answer)["hook"]["rendered"]
    assert request["url"] == "https://hooks.example.com/in?key=***"
    assert request["headers"] == {"Authorization": "***"}
    assert request["body"] == {"n": 1, "first": 7}
    assert TOKEN not in repr(answer)
    assert _by_id(answer)["hook"]["records"] == [{"id": 7, "echo": "x***y"}]


def test_a_template_that_fails_is_that_destination_s_error(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path)
    broken = _dest("files", "webhook", url="http://127.0.0.1:9/{{ record.id.nope() }}")
    runtime = JobRuntime(**{**runtime.__dict__, "destinations": {**runtime.destinations, "files": broken}})
    answer = preview_job(runtime, records=RECORDS[:1], when=WHEN)
    dests = _by_id(answer)
    assert dests["files"]["error"] and dests["files"]["rendered"] == []
    assert dests["rows"]["error"] is None and dests["rows"]["routed"] == 1


def test_bad_samples_and_limits_are_refused(tmp_path: Path) -> None:
    runtime = _runtime(tmp_path)
    with pytest.raises(MuxlyPreviewError, match="sample record 1 is not a JSON object"):
        preview_job(runtime, records=[{"a": 1}, [1, 2]])
    with pytest.raises(MuxlyPreviewError, match=f"at most {MAX_RECORDS} sample records"):
        preview_job(runtime, records=[{"n": i} for i in range(MAX_RECORDS + 1)])
    with pytest.raises(MuxlyPreviewError, match="limit must be between 1 and 100"):
        preview_job(runtime, limit=0)


def test_reads_at_most_limit_records_from_a_loopback_api(tmp_path: Path) -> None:
    def orders(request: Request) -> Reply:
        assert request.headers["Authorization"] == f"Bearer {TOKEN}"
        return Reply(200, [{"id": i, "total": 100 * i, "day": request.query["day"]} for i in range(1, 31)])

    with LocalServer(orders) as server:
        connector = ConnectorContext(
            id="src",
            name="Src",
            connector_type="api",
            auth={"auth_type": "bearer", "params": {"token": TOKEN}},
            settings={"base_url": server.url, "retry": {"max_attempts": 1}},
        )
        answer = preview_job(_runtime(tmp_path, connector=connector), limit=5, when=WHEN)
    assert answer["source"] == "connector" and answer["records_in"] == 5
    assert answer["truncated"] is True and answer["timed_out"] is False
    rows = _by_id(answer)["rows"]
    assert [r["order_id"] for r in rows["rendered"]] == [2, 3, 4, 5]
    assert rows["records"][0]["day"] == "2026-11-26"  # ${DATE} resolved against the preview's date


def test_a_slow_connector_is_cut_at_the_time_bound(tmp_path: Path) -> None:
    def slow(request: Request) -> Reply:
        time.sleep(3)
        return Reply(200, [{"id": 1, "total": 500}])

    with LocalServer(slow) as server:
        connector = ConnectorContext(
            id="src", name="Src", connector_type="api", settings={"base_url": server.url}
        )
        started = time.monotonic()
        answer = preview_job(_runtime(tmp_path, connector=connector), seconds=0.5, when=WHEN)
        assert time.monotonic() - started < 2.5
    assert answer["timed_out"] is True and answer["truncated"] is True and answer["records_in"] == 0


def test_joins_read_their_lookup_once_through_the_loader(tmp_path: Path) -> None:
    join = _step("j", "join", join_connector_id="customers", left_key="cust", right_key="id")
    rule = RuleSpec(
        id="enrich", name="E", condition=None, destination_ids=("files",), transformations=(join,)
    )
    calls: list[str] = []

    def loader(connector_id: str, data_spec: Mapping[str, Any]) -> list[dict[str, Any]]:
        calls.append(connector_id)
        return [{"id": 1, "country": "FR"}]

    runtime = _runtime(tmp_path, routes=(RouteSpec(id="r", name="R", rules=(rule,)),))
    answer = preview_job(runtime, records=[{"cust": 1}, {"cust": 2}], lookup_loader=loader, when=WHEN)
    assert calls == ["customers"]
    assert _by_id(answer)["files"]["records"] == [{"cust": 1, "country": "FR"}, {"cust": 2}]
