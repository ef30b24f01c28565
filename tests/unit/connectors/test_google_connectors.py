"""BigQuery and GA4 connectors against local servers speaking the documented REST protocols.

Service-account auth goes through google-auth for real: it signs a JWT with a key generated here, and the fake
token endpoint checks that JWT with the public key before issuing an access token.
"""

from __future__ import annotations

from typing import Any

import pytest

from muxly_provider.connectors.base import ConnectorContext
from muxly_provider.connectors.bigquery import BigQueryConnector, query_parameters
from muxly_provider.connectors.ga4 import Ga4Connector
from muxly_provider.exceptions import MuxlyConnectorError
from muxly_provider.http import retry as http_retry
from tests.unit.connectors.fake_apis import FakeBigQuery, FakeGa4
from tests.unit.connectors.fake_servers import LocalServer, Reply, TokenEndpoint, rsa_service_account


@pytest.fixture(autouse=True)
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []
    monkeypatch.setattr(http_retry, "default_sleep", recorded.append)
    return recorded


def _service_account(server: LocalServer, tokens: TokenEndpoint) -> dict[str, Any]:
    info, public_key = rsa_service_account(server.url + "/token")
    tokens.public_key = public_key
    return {"auth_type": "service_account", "params": {"service_account_json": info}}


def test_bigquery_pages_types_and_parameters(waits: list[float]) -> None:
    tokens = TokenEndpoint()
    fake = FakeBigQuery(
        tokens,
        fail={2: Reply(429, {"error": {"message": "rate"}}, headers={"Retry-After": "2"}), 4: Reply(503, {})},
    )
    with LocalServer(fake) as server:
        ctx = ConnectorContext(
            id="bq",
            name="BQ",
            connector_type="bigquery",
            auth=_service_account(server, tokens),
            settings={
                "project_id": "proj",
                "dataset_id": "sales",
                "location": "EU",
                "api_base_url": server.url,
            },
        )
        connector = BigQueryConnector(ctx, batch_size=10)
        batches = list(
            connector.fetch(
                {
                    "query": "SELECT * FROM t WHERE n > @low",
                    "max_results": 7,
                    "parameters": [{"name": "low", "type": "INT64", "value": 3}],
                }
            )
        )
    rows = [r for b in batches for r in b]
    assert [len(b) for b in batches] == [10, 10, 5]
    assert [r["id"] for r in rows] == list(range(25))
    assert rows[3] == {
        "id": 3,
        "name": "n3",
        "score": 1.5,
        "ok": True,
        "at": "2025-11-30T10:53:20+00:00",
        "tags": ["a", "b"],
        "geo": {"country": "US", "pop": 30},
    }
    body = fake.bodies[0]
    assert body["queryParameters"] == [
        {"name": "low", "parameterType": {"type": "INT64"}, "parameterValue": {"value": "3"}}
    ]
    assert (
        body["defaultDataset"] == {"projectId": "proj", "datasetId": "sales"}
        and body["useLegacySql"] is False
    )
    assert tokens.issued == ["at-1"]
    assert 2.0 in waits and len(waits) == 2


def test_bigquery_errors_and_expired_token() -> None:
    tokens = TokenEndpoint()
    with LocalServer(FakeBigQuery(tokens)) as server:
        auth = _service_account(server, tokens)
        ctx = ConnectorContext(
            id="bq",
            name="BQ",
            connector_type="bigquery",
            auth=auth,
            settings={"project_id": "proj", "api_base_url": server.url},
        )
        with pytest.raises(MuxlyConnectorError, match=r"'bq'.*HTTP 400 Bad Request$"):
            list(BigQueryConnector(ctx).fetch({"query": "SELECT 1 FROM nowhere"}))
        with pytest.raises(MuxlyConnectorError, match="no query"):
            list(BigQueryConnector(ctx).fetch({}))
        connector = BigQueryConnector(ctx)
        list(connector.fetch({"query": "SELECT 1"}))
        tokens.issued.append("rotated")  # the server expires the token the connector holds: it refreshes once
        assert sum(len(b) for b in connector.fetch({"query": "SELECT 1"})) == 25
        other = _service_account(server, TokenEndpoint())  # a key the token endpoint does not trust
        bad = ConnectorContext(
            id="bq",
            name="BQ",
            connector_type="bigquery",
            auth=other,
            settings={"project_id": "proj", "api_base_url": server.url},
        )
        with pytest.raises(MuxlyConnectorError, match="'bq': Google token refresh failed") as info:
            list(BigQueryConnector(bad).fetch({"query": "SELECT 1"}))
    assert "PRIVATE KEY" not in str(info.value)


def test_bigquery_parameter_inference() -> None:
    assert query_parameters({"n": 3, "b": True, "s": "x"}) == [
        {"name": "n", "parameterType": {"type": "INT64"}, "parameterValue": {"value": "3"}},
        {"name": "b", "parameterType": {"type": "BOOL"}, "parameterValue": {"value": "true"}},
        {"name": "s", "parameterType": {"type": "STRING"}, "parameterValue": {"value": "x"}},
    ]


def test_ga4_report_rows_become_records_with_offset_paging() -> None:
    tokens = TokenEndpoint(refresh_token="ga-rt")
    fake = FakeGa4(tokens)
    with LocalServer(fake) as server:
        auth = {
            "auth_type": "oauth",
            "params": {
                "client_id": "c",
                "client_secret": "s",
                "refresh_token": "ga-rt",
                "token_url": server.url + "/token",
            },
        }
        ctx = ConnectorContext(
            id="ga",
            name="GA",
            connector_type="ga4",
            auth=auth,
            settings={"property_id": "123", "currency": "EUR", "api_base_url": server.url},
        )
        connector = Ga4Connector(ctx, batch_size=10)
        records = [
            r
            for b in connector.fetch(
                {
                    "dimensions": [{"name": "date"}, "country"],
                    "metrics": [{"name": "activeUsers"}, {"name": "purchaseRevenue"}],
                    "page_size": 10,
                }
            )
            for r in b
        ]
        assert "reachable" in connector.test_connection()
        capped = [
            r for b in connector.fetch({"metrics": ["activeUsers"], "limit": 15, "page_size": 10}) for r in b
        ]
    assert len(records) == 23 and len(capped) == 15
    assert records[4] == {"date": "2026-11-05", "country": "US", "activeUsers": 4, "purchaseRevenue": 5.0}
    assert [b["offset"] for b in fake.bodies[:3]] == [0, 10, 20]
    assert fake.bodies[0]["dateRanges"] == [{"startDate": "7daysAgo", "endDate": "today"}]
    assert fake.bodies[0]["currencyCode"] == "EUR"
    assert [b["limit"] for b in fake.bodies[3:]] == [10, 5]


def test_ga4_needs_metrics_and_reports_auth_errors() -> None:
    tokens = TokenEndpoint()
    with LocalServer(FakeGa4(tokens)) as server:
        ctx = ConnectorContext(
            id="ga",
            name="GA",
            connector_type="ga4",
            auth={"auth_type": "bearer", "params": {"token": "stale-token"}},
            settings={"property_id": "123", "api_base_url": server.url},
        )
        with pytest.raises(MuxlyConnectorError, match="needs 'metrics'"):
            list(Ga4Connector(ctx).fetch({}))
        with pytest.raises(MuxlyConnectorError, match=r"'ga'.*HTTP 401 Unauthorized$") as info:
            list(Ga4Connector(ctx).fetch({"metrics": ["activeUsers"]}))
    assert "stale-token" not in str(info.value)
