"""The ``ga4`` connector: a Google Analytics 4 report through the Data API ``runReport``, one record per row.

``POST {api_base_url}/v1beta/properties/{property_id}:runReport`` with ``dateRanges``, ``dimensions``,
``metrics``, ``limit`` and ``offset``; each row becomes ``{dimension name: value, metric name: number}`` using
``dimensionHeaders`` and ``metricHeaders`` (``TYPE_INTEGER`` metrics as integers, the other numeric types as
floats). Pages of ``page_size`` rows (default 10,000, the API allows 250,000) are requested with a growing
``offset`` until ``rowCount`` rows were read or ``data_spec.limit`` is reached.

``data_spec``: ``dateRanges`` (default ``{default_date_range_days}daysAgo`` to ``today``), ``dimensions`` and
``metrics`` (lists of ``{"name"}`` or of names), ``limit``, and optionally ``dimensionFilter``,
``metricFilter``, ``orderBys``, ``keepEmptyRows`` passed through. ``currency`` becomes ``currencyCode``.
``sampling_level`` is accepted for configs of the original service; the Data API samples by itself.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

from muxly_provider.connectors.auth import build_session
from muxly_provider.connectors.base import MuxlyConnector, Record
from muxly_provider.connectors.bigquery import GOOGLE_AUTH_TYPES
from muxly_provider.connectors.http_client import ConnectorHttpClient

DEFAULT_BASE_URL = "https://analyticsdata.googleapis.com"
SCOPES = ("https://www.googleapis.com/auth/analytics.readonly",)
DEFAULT_PAGE_SIZE = 10_000
_PASSTHROUGH = ("dimensionFilter", "metricFilter", "orderBys", "keepEmptyRows", "metricAggregations")


def _named(items: Any) -> list[dict[str, Any]]:
    return [{"name": i} if isinstance(i, str) else dict(i) for i in items or []]


def _metric(kind: str, value: Any) -> Any:
    if value is None or value == "":
        return None
    try:
        return int(value) if kind == "TYPE_INTEGER" else float(value)
    except (TypeError, ValueError):
        return value


def convert_rows(payload: Mapping[str, Any]) -> list[Record]:
    """The records of one ``runReport`` answer."""
    dimensions = [str(h.get("name")) for h in payload.get("dimensionHeaders") or []]
    metrics = [(str(h.get("name")), str(h.get("type", ""))) for h in payload.get("metricHeaders") or []]
    records = []
    for row in payload.get("rows") or []:
        record: Record = {}
        for name, cell in zip(dimensions, row.get("dimensionValues") or [], strict=False):
            record[name] = cell.get("value")
        for (name, kind), cell in zip(metrics, row.get("metricValues") or [], strict=False):
            record[name] = _metric(kind, cell.get("value"))
        records.append(record)
    return records


class Ga4Connector(MuxlyConnector):
    """Run a GA4 report and stream its rows."""

    connector_type = "ga4"

    def _request_body(self, data_spec: Mapping[str, Any]) -> dict[str, Any]:
        settings = self.context.settings
        days = int(settings.get("default_date_range_days") or 7)
        body: dict[str, Any] = {
            "dateRanges": data_spec.get("dateRanges")
            or data_spec.get("date_ranges")
            or [{"startDate": f"{days}daysAgo", "endDate": "today"}],
            "dimensions": _named(data_spec.get("dimensions")),
            "metrics": _named(data_spec.get("metrics")),
        }
        if not body["metrics"] and not body["dimensions"]:
            raise self.error("data_spec needs 'metrics' and/or 'dimensions'")
        if settings.get("currency"):
            body["currencyCode"] = settings["currency"]
        for key in _PASSTHROUGH:
            if key in data_spec:
                body[key] = data_spec[key]
        return body

    def fetch(self, data_spec: Mapping[str, Any]) -> Iterator[list[Record]]:
        """Request the report page by page and yield its rows in batches."""
        settings = self.context.settings
        body = self._request_body(data_spec)
        cap = int(data_spec["limit"]) if data_spec.get("limit") else None
        page_size = int(data_spec.get("page_size") or DEFAULT_PAGE_SIZE)
        base = str(settings.get("api_base_url") or DEFAULT_BASE_URL).rstrip("/")
        url = f"{base}/v1beta/properties/{quote(str(settings['property_id']), safe='')}:runReport"
        setup = build_session(
            self.context.id, self.context.auth, allowed=GOOGLE_AUTH_TYPES, google_scopes=SCOPES
        )
        client = ConnectorHttpClient.from_settings(
            self.context.id, settings, setup.session, scope=setup.scope
        )
        offset = 0
        try:
            while True:
                size = min(page_size, cap - offset) if cap else page_size
                payload = client.json("POST", url, json={**body, "limit": size, "offset": offset})
                if not isinstance(payload, dict):
                    raise self.error("runReport answered with something other than an object")
                records = convert_rows(payload)
                for start in range(0, len(records), self.batch_size):
                    yield records[start : start + self.batch_size]
                offset += len(records)
                total = int(payload.get("rowCount") or 0)
                if not records or offset >= total or (cap and offset >= cap):
                    break
        finally:
            client.close()

    def test_connection(self) -> str:
        """Read the property's metadata (``GET .../metadata``)."""
        settings = self.context.settings
        base = str(settings.get("api_base_url") or DEFAULT_BASE_URL).rstrip("/")
        url = f"{base}/v1beta/properties/{quote(str(settings['property_id']), safe='')}/metadata"
        setup = build_session(
            self.context.id, self.context.auth, allowed=GOOGLE_AUTH_TYPES, google_scopes=SCOPES
        )
        client = ConnectorHttpClient.from_settings(
            self.context.id, settings, setup.session, scope=setup.scope
        )
        try:
            client.json("GET", url)
        finally:
            client.close()
        return f"ga4 connector {self.context.id!r}: property {settings['property_id']!r} reachable"
