"""Property-based run of the OpenAPI schema against the live app: no ``500``, answers match the schema.

Bounded: a few examples per operation, as an admin (so that requests reach the handlers, not just ``401``).
"""

from __future__ import annotations

from typing import Any

import pytest
import schemathesis
from conftest import bearer, login, make_user
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
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


def test_api_schema(api_client: TestClient, admin_headers: dict[str, str]) -> None:
    """Every operation of the schema, a few generated requests each, as an admin."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", api_client.app)
    operations = [r.ok() for r in schema.get_all_operations() if r.ok().path.startswith("/api/v1/")]
    assert len(operations) > 50
    for operation in operations:
        if operation.path == "/api/v1/auth/logout":
            continue  # would end the admin session the other examples use

        @settings(
            max_examples=5,
            deadline=None,
            suppress_health_check=list(HealthCheck),
            derandomize=True,
            database=None,
        )
        @given(case=operation.as_strategy())
        def run(case: Any) -> None:
            case.call_and_validate(headers=admin_headers, checks=CHECKS)

        run()
