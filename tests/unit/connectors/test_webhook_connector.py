"""The ``webhook`` connector's extraction rules: where the body comes from, ``records_path``, the shapes it
accepts and the messages of those it refuses, the size limit, the connection test and the row validation."""

from __future__ import annotations

import re
from types import SimpleNamespace
from typing import Any

import pytest

from muxly_provider.connectors.base import ConnectorContext
from muxly_provider.connectors.check import check_connector
from muxly_provider.connectors.webhook import (
    PAYLOAD_KEY,
    SOURCE_KEY,
    WebhookConnector,
    extract_records,
    json_size,
    run_payload,
    with_run_payload,
)
from muxly_provider.exceptions import MuxlyConnectorError

CONF = "conf['payload']"


def _connector(settings: dict[str, Any] | None = None, batch_size: int = 1000) -> WebhookConnector:
    context = ConnectorContext(
        id="push", name="Push", connector_type="webhook", auth={"auth_type": "none"}, settings=settings or {}
    )
    return WebhookConnector(context, batch_size=batch_size)


def _fetch(connector: WebhookConnector, payload: Any, **spec: Any) -> list[list[dict[str, Any]]]:
    return list(connector.fetch({PAYLOAD_KEY: payload, SOURCE_KEY: CONF, **spec}))


def test_an_object_is_one_record_and_a_list_is_many() -> None:
    assert extract_records({"id": 1}, None, CONF) == [{"id": 1}]
    assert extract_records([{"id": 1}, {"id": 2}], None, CONF) == [{"id": 1}, {"id": 2}]
    assert extract_records([], None, CONF) == []


@pytest.mark.parametrize(
    ("path", "records"),
    [
        ("data.items", [{"n": 1}, {"n": 2}]),
        ("$.data.items", [{"n": 1}, {"n": 2}]),
        ("data.items[1]", [{"n": 2}]),
        ("$['data']['items'][-1]", [{"n": 2}]),
        ("meta", [{"count": 2}]),
    ],
)
def test_records_path_uses_muxly_path_syntax(path: str, records: list[dict[str, Any]]) -> None:
    body = {"data": {"items": [{"n": 1}, {"n": 2}]}, "meta": {"count": 2}}
    assert extract_records(body, path, CONF) == records


@pytest.mark.parametrize(
    ("body", "path", "message"),
    [
        (
            42,
            None,
            "the whole body (no records_path) of the payload from conf['payload'] is a number (42): "
            "expected an object (one record) or a list of objects",
        ),
        ("hello", None, "is a string ('hello'): expected an object"),
        ({"data": None}, "data", "records_path 'data' of the payload from conf['payload'] is null"),
        ({"data": True}, "data", "records_path 'data' of the payload from conf['payload'] is a boolean"),
        (
            [{"a": 1}, 3],
            None,
            "item 1 of the list at the whole body (no records_path) of the payload from conf['payload'] is "
            "a number (3): every item must be an object",
        ),
        ({"rows": [{"a": 1}, ["x"]]}, "rows", "item 1 of the list at records_path 'rows'"),
        (
            {"data": {}},
            "data.items",
            "records_path 'data.items' does not resolve in the payload from conf['payload'] (the body is an "
            "object): expected an object or a list of objects there",
        ),
        ([{"a": 1}], "items", "records_path 'items' does not resolve"),
        ({"a": [1]}, "a.0", "records_path 'a.0' does not resolve"),  # lists are indexed with brackets
        ({"a": 1}, "a[", "records_path 'a[' is not a path: expected an index or a quoted key"),
    ],
)
def test_bad_shapes_are_refused_naming_the_path_and_what_was_found(
    body: Any, path: Any, message: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        extract_records(body, path, CONF)


def test_fetch_batches_and_names_the_connector_in_errors() -> None:
    body = {"events": [{"i": i} for i in range(5)]}
    assert _fetch(_connector({"records_path": "events"}, batch_size=2), body) == [
        [{"i": 0}, {"i": 1}],
        [{"i": 2}, {"i": 3}],
        [{"i": 4}],
    ]
    with pytest.raises(MuxlyConnectorError) as caught:
        _fetch(_connector({"records_path": "events"}), {"other": 1})
    assert str(caught.value).startswith("connector 'push': records_path 'events' does not resolve")


def test_the_job_records_path_overrides_the_connector_one() -> None:
    body = {"a": [{"x": 1}], "b": {"y": 2}}
    assert _fetch(_connector({"records_path": "a"}), body) == [[{"x": 1}]]
    assert _fetch(_connector({"records_path": "a"}), body, records_path="b") == [[{"y": 2}]]
    with pytest.raises(
        MuxlyConnectorError, match=re.escape("data_spec.records_path must be a path (text), got a number")
    ):
        _fetch(_connector(), body, records_path=3)


def test_no_payload_routes_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING"):
        assert list(_connector().fetch({})) == []
    assert "has no payload in this run" in caplog.text


def test_the_size_limit_is_webhook_max_body_bytes(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__MUXLY__WEBHOOK_MAX_BODY_BYTES", "100")
    fits = [{"k": "v" * 10}] * 4
    assert json_size(fits) <= 100
    assert len(_fetch(_connector(), fits)[0]) == 4
    too_big = [{"k": "é" * 50}]  # 100 bytes as UTF-8, 110 with the JSON around them (300 as \u escapes)
    assert json_size(too_big) == 110
    with pytest.raises(MuxlyConnectorError) as caught:
        _fetch(_connector(), too_big)
    assert str(caught.value) == (
        "connector 'push': the payload from conf['payload'] is 110 bytes as JSON, over [muxly] "
        "webhook_max_body_bytes (100 bytes)"
    )


def _context(conf: Any, task_ids: tuple[str, ...] = ("extract",), xcom: Any = None) -> dict[str, Any]:
    pulled: list[Any] = []

    def xcom_pull(task_ids: str) -> Any:
        pulled.append(task_ids)
        return xcom

    return {
        "task": SimpleNamespace(dag=SimpleNamespace(task_ids=list(task_ids))),
        "ti": SimpleNamespace(xcom_pull=xcom_pull, pulled=pulled),
        "dag_run": SimpleNamespace(conf=conf),
    }


def test_the_body_comes_from_conf_or_the_wait_task() -> None:
    assert run_payload(_context({"payload": {"a": 1}})) == ({"a": 1}, "conf['payload']")
    assert run_payload(_context({"payload": None})) is None
    assert run_payload(_context({})) is None
    assert run_payload(_context(None)) is None
    # The delivery the run waited for wins over the body that started it.
    waited = _context({"payload": {"a": 1}}, ("wait_for_webhook", "extract"), xcom=[{"b": 2}])
    assert run_payload(waited) == ([{"b": 2}], "the return value of task 'wait_for_webhook'")
    # Without a wait task no XCom is read at all.
    plain = _context({"payload": {"a": 1}}, xcom=[{"b": 2}])
    run_payload(plain)
    assert plain["ti"].pulled == []
    # With a wait task, what it returned is the body, even nothing (an empty delivery): conf's is not used.
    empty = _context({"payload": {"a": 1}}, ("wait_for_webhook", "extract"), xcom=None)
    assert run_payload(empty) is None


def test_only_webhook_connectors_get_the_body_and_a_job_cannot_fake_it() -> None:
    context = _context({"payload": {"a": 1}})
    spec = {"records_path": "x", PAYLOAD_KEY: "forged", SOURCE_KEY: "forged"}
    assert with_run_payload("api", spec, context) == spec
    assert with_run_payload("webhook", spec, context) == {
        "records_path": "x",
        PAYLOAD_KEY: {"a": 1},
        SOURCE_KEY: "conf['payload']",
    }
    assert with_run_payload("webhook", spec, _context({})) == {"records_path": "x"}


def test_the_connection_test_has_nothing_to_reach() -> None:
    result = check_connector(_connector().context)
    assert result.ok
    assert result.message.startswith("webhook connector 'push': nothing to reach")


def test_the_row_takes_records_path_only() -> None:
    from muxly_provider.config.validation import row_errors

    def errors(settings: dict[str, Any]) -> list[str]:
        row = {
            "id": "w",
            "name": "W",
            "connector_type": "webhook",
            "auth_settings": {"auth_type": "none"},
            "connection_settings": settings,
        }
        return [str(e) for e in row_errors("connectors", row)[1]]

    assert errors({}) == []
    assert errors({"records_path": "$.batch['records']"}) == []
    assert errors({"records_path": "a["}) == [
        "connectors row 'w': field 'connection_settings.records_path': a path such as 'data.items' or "
        "'$.batch[0]' (expected an index or a quoted key after '[' at position 2)"
    ]
    assert errors({"url": "http://x"}) == [
        "connectors row 'w': field 'connection_settings.url': no option named 'url'; allowed: records_path"
    ]


def test_the_connector_reads_the_task_the_job_option_builds() -> None:
    from muxly_provider.connectors import webhook
    from muxly_provider.sensors.webhook import WAIT_TASK_ID

    assert webhook.WAIT_TASK_ID == WAIT_TASK_ID
