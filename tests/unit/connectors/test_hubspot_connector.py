"""The HubSpot connector against a local server speaking CRM v3 objects (list and search, ``after`` paging)."""

from __future__ import annotations

from typing import Any

import pytest

from muxly_provider.connectors.base import ConnectorContext
from muxly_provider.connectors.hubspot import HubSpotConnector
from muxly_provider.exceptions import MuxlyConnectorError
from muxly_provider.http import retry as http_retry
from tests.unit.connectors.fake_apis import TOKEN, FakeHubSpot
from tests.unit.connectors.fake_servers import LocalServer, Reply, TokenEndpoint


@pytest.fixture(autouse=True)
def waits(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    recorded: list[float] = []
    monkeypatch.setattr(http_retry, "default_sleep", recorded.append)
    return recorded


def _connector(url: str, auth: dict[str, Any] | None = None, **settings: Any) -> HubSpotConnector:
    ctx = ConnectorContext(
        id="hs",
        name="HS",
        connector_type="hubspot",
        auth=auth or {"auth_type": "bearer", "params": {"token": TOKEN}},
        settings={"api_base_url": url, **settings},
    )
    return HubSpotConnector(ctx, batch_size=50)


def test_lists_every_object_with_after_paging_and_429s(waits: list[float]) -> None:
    fake = FakeHubSpot(throttle=frozenset({2}))
    with LocalServer(fake) as server:
        connector = _connector(server.url, properties={"contacts": ["email", "lifecyclestage"]})
        batches = list(connector.fetch({"objectType": "contacts"}))
    records = [r for b in batches for r in b]
    assert len(records) == 230 and len({r["id"] for r in records}) == 230
    assert records[7] == {
        "id": "7",
        "createdAt": "2026-01-01T00:00:00Z",
        "updatedAt": "2026-02-01T00:00:00Z",
        "archived": False,
        "email": "c7@example.com",
        "lifecyclestage": "lead",
        "hs_object_id": "7",
    }
    assert fake.seen[0].query == {"limit": "100", "archived": "false", "properties": "email,lifecyclestage"}
    assert waits == [0.5]


def test_search_with_filter_and_limit() -> None:
    fake = FakeHubSpot()
    with LocalServer(fake) as server:
        connector = _connector(server.url, batch_size=40)
        records = [
            r
            for b in connector.fetch(
                {
                    "objectType": "contacts",
                    "properties": ["email"],
                    "limit": 90,
                    "filter": {"propertyName": "createdate", "operator": "GTE", "value": "2026-01-01"},
                }
            )
            for r in b
        ]
    assert len(records) == 90
    assert [r.json()["limit"] for r in fake.seen] == [40, 40, 10]
    assert fake.seen[1].json()["after"] == "40"


def test_oauth_refresh_and_bad_token() -> None:
    tokens = TokenEndpoint(refresh_token="hs-rt")
    with LocalServer(FakeHubSpot(total=3, tokens=tokens)) as server:
        auth = {
            "auth_type": "oauth",
            "params": {
                "client_id": "c",
                "client_secret": "s",
                "refresh_token": "hs-rt",
                "token_url": server.url + "/oauth/v1/token",
            },
        }
        assert sum(len(b) for b in _connector(server.url, auth).fetch({})) == 3
    with LocalServer(FakeHubSpot()) as server:
        wrong = {"auth_type": "bearer", "params": {"token": "pat-wrong"}}
        with pytest.raises(MuxlyConnectorError, match=r"'hs'.*HTTP 401 Unauthorized$") as info:
            list(_connector(server.url, wrong).fetch({}))
        assert "credentials" not in str(info.value) and "pat-wrong" not in str(info.value)
        assert "reachable" in _connector(server.url).test_connection()
    with pytest.raises(MuxlyConnectorError, match="auth_type 'none' is not supported"):
        list(_connector("http://x", {"auth_type": "none"}).fetch({}))


def test_malformed_page_is_a_clear_error() -> None:
    with (
        LocalServer(lambda r: Reply(body={"items": []})) as server,
        pytest.raises(MuxlyConnectorError, match="'hs': the contacts page holds no 'results' list"),
    ):
        list(_connector(server.url).fetch({}))
