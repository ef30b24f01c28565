"""The ``hubspot`` connector: HubSpot CRM objects (contacts, companies, deals, ...) through the CRM v3 API.

Without a filter: ``GET {api_base_url}/crm/{api_version}/objects/{objectType}`` with ``limit``, ``after``,
``properties`` and ``archived``; with ``data_spec.filter``: ``POST .../objects/{objectType}/search`` with
``filterGroups`` (HubSpot caps a search at 10,000 results). Paging follows ``paging.next.after`` until it is
absent. Each object becomes one record: ``id``, ``createdAt``, ``updatedAt``, ``archived`` and its
``properties`` lifted to the top level.

``data_spec``: ``objectType`` (default ``contacts``), ``properties`` (else the connector's ``properties`` for
that object type), ``filter`` (one ``{propertyName, operator, value}`` or a list, ANDed), ``limit`` (total).
Auth: ``bearer`` (a private-app token), ``oauth`` (refresh token at ``token_url``, default HubSpot's),
``api_key`` (legacy ``hapikey``) or ``airflow_connection``. ``api_base_url`` replaces
``https://api.hubapi.com``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

from muxly_provider.connectors.auth import build_session
from muxly_provider.connectors.base import MuxlyConnector, Record
from muxly_provider.connectors.http_client import ConnectorHttpClient

DEFAULT_BASE_URL = "https://api.hubapi.com"
DEFAULT_TOKEN_URL = "https://api.hubapi.com/oauth/v1/token"  # noqa: S105 - a URL
HUBSPOT_AUTH_TYPES = frozenset({"bearer", "oauth", "api_key", "airflow_connection"})


def to_record(item: Mapping[str, Any]) -> Record:
    """One CRM object as a flat record."""
    record: Record = {
        "id": item.get("id"),
        "createdAt": item.get("createdAt"),
        "updatedAt": item.get("updatedAt"),
        "archived": item.get("archived", False),
    }
    properties = item.get("properties")
    if isinstance(properties, Mapping):
        record.update(properties)
    return record


class HubSpotConnector(MuxlyConnector):
    """Stream HubSpot CRM objects page by page."""

    connector_type = "hubspot"

    def _client(self) -> ConnectorHttpClient:
        setup = build_session(
            self.context.id,
            self.context.auth,
            allowed=HUBSPOT_AUTH_TYPES,
            default_token_url=DEFAULT_TOKEN_URL,
        )
        return ConnectorHttpClient.from_settings(
            self.context.id, self.context.settings, setup.session, scope=setup.scope
        )

    def _objects_url(self, object_type: str) -> str:
        settings = self.context.settings
        base = str(settings.get("api_base_url") or DEFAULT_BASE_URL).rstrip("/")
        version = str(settings.get("api_version") or "v3")
        return f"{base}/crm/{version}/objects/{quote(object_type, safe='')}"

    def fetch(self, data_spec: Mapping[str, Any]) -> Iterator[list[Record]]:
        """Yield the objects of ``data_spec.objectType`` in batches."""
        settings = self.context.settings
        object_type = str(data_spec.get("objectType") or data_spec.get("object_type") or "contacts")
        properties = data_spec.get("properties") or (settings.get("properties") or {}).get(object_type) or []
        cap = int(data_spec["limit"]) if data_spec.get("limit") else None
        page_size = min(int(settings.get("batch_size") or 100), 100)
        filters = data_spec.get("filter")
        if isinstance(filters, Mapping):
            filters = [filters]
        url = self._objects_url(object_type)
        client = self._client()
        after: str | None = None
        seen: set[str] = set()
        count = 0
        pending: list[Record] = []
        try:
            while True:
                size = min(page_size, cap - count) if cap else page_size
                if filters:
                    body: dict[str, Any] = {
                        "filterGroups": [{"filters": list(filters)}],
                        "properties": list(properties),
                        "limit": size,
                    }
                    if after:
                        body["after"] = after
                    page = client.json("POST", f"{url}/search", json=body)
                else:
                    params: dict[str, Any] = {
                        "limit": size,
                        "archived": str(bool(settings.get("include_archived"))).lower(),
                    }
                    if properties:
                        params["properties"] = ",".join(properties)
                    if after:
                        params["after"] = after
                    page = client.json("GET", url, params=params)
                results = page.get("results") if isinstance(page, dict) else None
                if not isinstance(results, list):
                    raise self.error(f"the {object_type} page holds no 'results' list")
                for item in results[: size if cap else None]:
                    pending.append(to_record(item))
                count += len(results)
                while len(pending) >= self.batch_size:
                    yield pending[: self.batch_size]
                    del pending[: self.batch_size]
                after = ((page.get("paging") or {}).get("next") or {}).get("after")
                if not after or not results or (cap and count >= cap):
                    break
                if after in seen:
                    raise self.error("HubSpot repeated a paging cursor; stopping")
                seen.add(after)
            if pending:
                yield pending
        finally:
            client.close()

    def test_connection(self) -> str:
        """Read one contact (checks the token and its scopes)."""
        client = self._client()
        try:
            client.json("GET", self._objects_url("contacts"), params={"limit": 1})
        finally:
            client.close()
        return f"hubspot connector {self.context.id!r}: CRM API reachable"
