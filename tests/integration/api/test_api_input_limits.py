"""Bad input never answers 500: body size and JSON depth limits, formulas checked at write time, stored rules
that no longer compile (``docs/security.md``, "Input limits")."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from conftest import bearer, login, make_user
from fastapi.testclient import TestClient
from sqlalchemy import create_engine

from tests.db_helpers import insert_row


@pytest.fixture
def admin(api_client: TestClient) -> dict[str, str]:
    make_user("limits-admin", ["admin"])
    return bearer(login(api_client, "limits-admin")["access_token"])


def _error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    error: dict[str, Any] = response.json()["error"]
    assert error["code"] == code
    return error


def test_a_40_mib_body_is_refused_before_authentication(api_client: TestClient) -> None:
    started = time.monotonic()
    response = api_client.post(
        "/api/v1/connectors", content=b"x" * (40 << 20), headers={"Content-Type": "application/json"}
    )
    error = _error(response, 413, "payload_too_large")
    assert error["details"] == {"limit": 1048576}
    assert time.monotonic() - started < 10
    # Within the limit the same unauthenticated request reaches authentication.
    assert api_client.post("/api/v1/connectors", json={"name": "x"}).status_code == 401


def test_a_chunked_body_is_counted_while_it_arrives(api_client: TestClient, admin: dict[str, str]) -> None:
    sent: list[int] = []

    def chunks() -> Iterator[bytes]:
        for index in range(64):
            sent.append(index)
            yield b" " * 65536

    response = api_client.post(
        "/api/v1/connectors", content=chunks(), headers={**admin, "Content-Type": "application/json"}
    )
    _error(response, 413, "payload_too_large")
    assert "content-length" not in {k.lower() for k in response.request.headers}


def test_the_limit_is_a_setting(
    api_client: TestClient, admin: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__MUXLY__API_MAX_BODY_BYTES", "100")
    body = {"name": "n" * 200, "connector_type": "api", "connection_settings": {"base_url": "http://x"}}
    _error(api_client.post("/api/v1/connectors", json=body, headers=admin), 413, "payload_too_large")
    monkeypatch.setenv("AIRFLOW__MUXLY__API_MAX_BODY_BYTES", "4096")
    assert api_client.post("/api/v1/connectors", json=body, headers=admin).status_code == 201


@pytest.mark.parametrize("depth", [65, 900, 100_000])
def test_deep_json_is_a_422(api_client: TestClient, admin: dict[str, str], depth: int) -> None:
    text = "[" * depth + "1" + "]" * depth
    body = '{"name": "deep", "connector_type": "api", "connection_settings": {"base_url": "http://x", "x": '
    response = api_client.post(
        "/api/v1/connectors",
        content=(body + text + "}}").encode(),
        headers={**admin, "Content-Type": "application/json"},
    )
    error = _error(response, 422, "validation_error")
    assert "nested more than 64 levels" in error["message"]


def test_brackets_inside_strings_do_not_count(api_client: TestClient, admin: dict[str, str]) -> None:
    condition = "name == '" + "[" * 200 + "'"
    response = api_client.post("/api/v1/rules", json={"name": "r", "condition": condition}, headers=admin)
    assert response.status_code == 201, response.text


@pytest.mark.parametrize(
    ("formula", "reason"),
    [
        ("a +", "found the end of the formula at position 3"),
        ("a * (b", "at position 6"),
        ("(" * 150 + "a" + ")" * 150, "nested more than 100 levels deep at position 100"),
        ("sqrt(a)", "unknown function 'sqrt'"),
    ],
)
def test_malformed_formulas_are_refused_on_write_with_the_position(
    api_client: TestClient, admin: dict[str, str], formula: str, reason: str
) -> None:
    step = {"transformation_type": "formula", "config": {"output_field": "x", "formula": formula}}
    created = api_client.post("/api/v1/rules", json={"name": "ok"}, headers=admin)
    assert created.status_code == 201
    rule = f"/api/v1/rules/{created.json()['id']}"
    for response in (
        api_client.post("/api/v1/rules", json={"name": "r", "transformations": [step]}, headers=admin),
        api_client.patch(rule, json={"transformations": [step]}, headers=admin),
    ):
        error = _error(response, 422, "validation_error")
        assert error["details"]["field"] == "transformations[0].config.formula"
        assert reason in error["details"]["reason"]


@pytest.mark.parametrize("terms", [300, 1_000, 10_000])
def test_long_formulas_compile_and_run(api_client: TestClient, admin: dict[str, str], terms: int) -> None:
    formula = " + ".join(["a"] * terms) + " - " + " * ".join(["b"] * terms)
    step = {"transformation_type": "formula", "config": {"output_field": "total", "formula": formula}}
    created = api_client.post(
        "/api/v1/rules", json={"name": "long", "transformations": [step]}, headers=admin
    )
    assert created.status_code == 201, created.text
    answer = api_client.post(
        f"/api/v1/rules/{created.json()['id']}/test", json={"records": [{"a": 2, "b": 1}]}, headers=admin
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["outputs"]["(rule output)"] == [{"a": 2, "b": 1, "total": 2 * terms - 1}]


@pytest.mark.parametrize(
    ("column", "values", "field", "reason"),
    [
        (
            "transformation",
            {"transformation_type": "formula", "config": {"output_field": "x", "formula": "a +"}},
            "transformations[0].config.formula",
            "position 3",
        ),
        ("condition", {"condition": "amount >"}, "condition", "a valid condition"),
    ],
)
def test_a_stored_rule_that_does_not_compile_is_a_422_naming_the_field(
    api_client: TestClient,
    admin: dict[str, str],
    sqlite_api_db: str,
    column: str,
    values: dict[str, Any],
    field: str,
    reason: str,
) -> None:
    """Rows written before these checks existed (or by hand) answer 422, not 500, on ``/rules/{id}/test``."""
    engine = create_engine(sqlite_api_db)
    insert_row(engine, "routing_rules", id="old", name="old", condition=values.get("condition"))
    if column == "transformation":
        insert_row(engine, "rule_transformations", id="s1", rule_id="old", sequence_order=0, **values)
    engine.dispose()
    response = api_client.post("/api/v1/rules/old/test", json={"records": [{"a": 1}]}, headers=admin)
    error = _error(response, 422, "validation_error")
    assert error["details"]["field"] == field
    assert reason in error["details"]["reason"]


@pytest.mark.parametrize(
    ("step", "field"),
    [
        (
            {"transformation_type": "filter", "config": {"field": "$.[[", "operator": "==", "value": 1}},
            "field",
        ),
        ({"transformation_type": "rename_field", "config": {"from": "$[", "to": "b"}}, "from"),
        ({"transformation_type": "extract", "config": {"fields": ["a", "$["]}}, "fields"),
        (
            {
                "transformation_type": "join",
                "config": {"lookup": [{"k": 1}], "left_key": "$[", "right_key": "k"},
            },
            "left_key",
        ),
    ],
)
def test_steps_are_compiled_on_write(
    api_client: TestClient, admin: dict[str, str], step: dict[str, Any], field: str
) -> None:
    """A path a run could not use is refused when the rule is written, naming the step and the option."""
    response = api_client.post("/api/v1/rules", json={"name": "r", "transformations": [step]}, headers=admin)
    error = _error(response, 422, "validation_error")
    assert error["details"]["field"] == f"transformations[0].config.{field}"
    assert "a field path" in error["details"]["reason"]


def test_a_template_nested_past_the_parser_is_a_422_naming_the_field(
    api_client: TestClient, admin: dict[str, str]
) -> None:
    connector = api_client.post(
        "/api/v1/connectors",
        json={
            "id": "c",
            "name": "c",
            "connector_type": "api",
            "connection_settings": {"base_url": "http://x"},
        },
        headers=admin,
    )
    assert connector.status_code == 201, connector.text
    job = {
        "name": "j",
        "job_type": "manual",
        "connector_id": "c",
        "action_type": "sync",
        "action_params": {"data_spec": {"q": "{{ " * 5000}},
    }
    error = _error(api_client.post("/api/v1/jobs", json=job, headers=admin), 422, "validation_error")
    assert error["details"]["field"] == "action_params.data_spec.q"


@pytest.mark.parametrize(
    "body", [b"\xff\xfe\xfa", b'{"name": "\xff"}', b'{"name": "x", "priority": ' + b"9" * 5000 + b"}"]
)
def test_a_body_json_cannot_read_is_a_400_in_muxlys_format(
    api_client: TestClient, admin: dict[str, str], body: bytes
) -> None:
    response = api_client.post(
        "/api/v1/rules", content=body, headers={**admin, "Content-Type": "application/json"}
    )
    _error(response, 400, "bad_request")


def test_unknown_routes_answer_in_muxlys_format(api_client: TestClient, admin: dict[str, str]) -> None:
    _error(api_client.get("/api/v1/nowhere", headers=admin), 404, "not_found")
    _error(api_client.put("/api/v1/rules", json={}, headers=admin), 405, "method_not_allowed")
