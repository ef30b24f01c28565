"""Property-based run of the OpenAPI schema against the live app: no ``500``, answers match the schema.

Bounded: a few examples per operation, as an admin (so that requests reach the handlers, not just ``401``).
Two passes: valid requests (answers must match the schema) and invalid ones (schemathesis' negative mode:
wrong types, missing fields, out-of-range values), which must get a 4xx, never a 500.
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from conftest import bearer, login, make_user
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)


@pytest.fixture
def admin_headers(api_client: TestClient) -> dict[str, str]:
    make_user("fuzz-admin", ["admin"])
    return bearer(login(api_client, "fuzz-admin")["access_token"])


CHECKS = [not_a_server_error, response_schema_conformance, status_code_conformance, content_type_conformance]


def _operations(api_client: TestClient) -> list[Any]:
    schema = schemathesis.openapi.from_asgi("/openapi.json", api_client.app)
    operations = [r.ok() for r in schema.get_all_operations() if r.ok().path.startswith("/api/v1/")]
    assert len(operations) > 50
    # ``logout`` would end the admin session the other examples use.
    return [operation for operation in operations if operation.path != "/api/v1/auth/logout"]


def _run(
    operation: Any, mode: GenerationMode, examples: int, headers: dict[str, str], checks: list[Any]
) -> None:
    @settings(
        max_examples=examples,
        deadline=None,
        suppress_health_check=list(HealthCheck),
        derandomize=True,
        database=None,
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        case.call_and_validate(headers=headers, checks=checks)

    run()


def test_api_schema(api_client: TestClient, admin_headers: dict[str, str]) -> None:
    """Every operation of the schema, a few generated valid requests each, as an admin."""
    for operation in _operations(api_client):
        _run(operation, GenerationMode.POSITIVE, 8, admin_headers, CHECKS)


def test_api_schema_invalid_requests(api_client: TestClient, admin_headers: dict[str, str]) -> None:
    """Every operation with generated invalid requests: a 4xx in Muxly's format, never a 500."""
    for operation in _operations(api_client):
        _run(operation, GenerationMode.NEGATIVE, 8, admin_headers, [not_a_server_error])
