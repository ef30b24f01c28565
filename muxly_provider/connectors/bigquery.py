"""The ``bigquery`` connector: a GoogleSQL query through the BigQuery REST API v2, page by page.

``jobs.query`` (``POST /bigquery/v2/projects/{project}/queries``) starts the query; while the job is not
complete, and then for every further page, ``jobs.getQueryResults``
(``GET /bigquery/v2/projects/{project}/queries/{jobId}``) is called with the ``pageToken`` of the previous page.
Rows (``{"f": [{"v": ...}]}``) become records keyed by the schema's field names, typed by the schema (integers,
floats, booleans, ``TIMESTAMP`` as ISO 8601, ``RECORD`` as objects, ``REPEATED`` as lists, ``JSON`` decoded).

``data_spec``: ``query`` (the ``query`` action supplies ``action_params.query``), ``parameters`` (a list of
``{"name", "type", "value"}`` bound to ``@name``), ``max_results`` (rows per page). Auth: ``service_account``,
``application_default``, ``oauth`` (google-auth) or ``bearer``. ``api_base_url`` replaces
``https://bigquery.googleapis.com`` (tests point it at a local server).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

from muxly_provider.connectors.auth import build_session
from muxly_provider.connectors.base import MuxlyConnector, Record
from muxly_provider.connectors.http_client import ConnectorHttpClient

DEFAULT_BASE_URL = "https://bigquery.googleapis.com"
SCOPES = ("https://www.googleapis.com/auth/bigquery",)
GOOGLE_AUTH_TYPES = frozenset(
    {"service_account", "application_default", "oauth", "bearer", "airflow_connection"}
)
_POLL_TIMEOUT_MS = 10_000


def _scalar(kind: str, value: Any) -> Any:
    if value is None:
        return None
    if kind in {"INTEGER", "INT64"}:
        return int(value)
    if kind in {"FLOAT", "FLOAT64"}:
        return float(value)
    if kind in {"NUMERIC", "BIGNUMERIC"}:
        number = float(value)
        return int(number) if number.is_integer() and "." not in str(value) else number
    if kind in {"BOOLEAN", "BOOL"}:
        return value in {True, "true", "TRUE", "True"}
    if kind == "TIMESTAMP":
        return datetime.fromtimestamp(float(value), tz=UTC).isoformat()
    if kind == "JSON" and isinstance(value, str):
        return json.loads(value)
    return value


def convert_value(field: Mapping[str, Any], cell: Any) -> Any:
    """One cell (``{"v": ...}``) typed by its schema ``field``."""
    value = cell.get("v") if isinstance(cell, dict) else cell
    if field.get("mode") == "REPEATED":
        item_field = {**field, "mode": "NULLABLE"}
        return [convert_value(item_field, item) for item in value or []]
    if field.get("type") in {"RECORD", "STRUCT"}:
        if value is None:
            return None
        return convert_row(field.get("fields") or [], value)
    return _scalar(str(field.get("type")), value)


def convert_row(fields: list[Mapping[str, Any]], row: Mapping[str, Any]) -> Record:
    """A record from one BigQuery row and its schema fields."""
    cells = row.get("f") or []
    return {str(f["name"]): convert_value(f, c) for f, c in zip(fields, cells, strict=False)}


def query_parameters(parameters: Any) -> list[dict[str, Any]]:
    """``queryParameters`` of ``jobs.query`` from ``[{"name", "type", "value"}]`` or ``{name: value}``."""
    if isinstance(parameters, Mapping):
        parameters = [{"name": k, "value": v} for k, v in parameters.items()]
    result = []
    for item in parameters or []:
        value = item.get("value")
        kind = item.get("type") or (
            "BOOL"
            if isinstance(value, bool)
            else "INT64"
            if isinstance(value, int)
            else "FLOAT64"
            if isinstance(value, float)
            else "STRING"
        )
        text = str(value).lower() if isinstance(value, bool) else None if value is None else str(value)
        result.append(
            {"name": item["name"], "parameterType": {"type": kind}, "parameterValue": {"value": text}}
        )
    return result


class BigQueryConnector(MuxlyConnector):
    """Run a BigQuery query and stream its result pages."""

    connector_type = "bigquery"
    supported_actions = frozenset({"sync", "query", "export", "pipeline"})

    def _client(self) -> ConnectorHttpClient:
        setup = build_session(
            self.context.id, self.context.auth, allowed=GOOGLE_AUTH_TYPES, google_scopes=SCOPES
        )
        return ConnectorHttpClient.from_settings(
            self.context.id, self.context.settings, setup.session, scope=setup.scope
        )

    def _base(self) -> str:
        settings = self.context.settings
        base = str(settings.get("api_base_url") or DEFAULT_BASE_URL).rstrip("/")
        return f"{base}/bigquery/v2/projects/{quote(str(settings['project_id']), safe='')}"

    def fetch(self, data_spec: Mapping[str, Any]) -> Iterator[list[Record]]:
        """Run ``data_spec.query`` and yield its rows in batches."""
        query = data_spec.get("query")
        if not isinstance(query, str) or not query.strip():
            raise self.error("no query: set action_params.query (query action) or data_spec.query")
        yield from self._run(query, data_spec)

    def _run(self, query: str, data_spec: Mapping[str, Any], dry_run: bool = False) -> Iterator[list[Record]]:
        settings = self.context.settings
        max_results = data_spec.get("max_results") or settings.get("max_results") or self.batch_size
        body: dict[str, Any] = {
            "query": query,
            "useLegacySql": False,
            "maxResults": int(max_results),
            "timeoutMs": _POLL_TIMEOUT_MS,
            "dryRun": dry_run,
        }
        if settings.get("location"):
            body["location"] = settings["location"]
        if settings.get("dataset_id"):
            body["defaultDataset"] = {
                "projectId": settings["project_id"],
                "datasetId": settings["dataset_id"],
            }
        if data_spec.get("parameters"):
            body["parameterMode"] = "NAMED"
            body["queryParameters"] = query_parameters(data_spec["parameters"])
        client = self._client()
        try:
            page = client.json("POST", f"{self._base()}/queries", json=body)
            if dry_run:
                return
            job = page.get("jobReference") or {}
            fields: list[Mapping[str, Any]] | None = None
            pending: list[Record] = []
            seen_tokens: set[str] = set()
            while True:
                if page.get("jobComplete") is False:
                    page = self._results(client, job, None, int(max_results))
                    continue
                if fields is None:
                    fields = (page.get("schema") or {}).get("fields") or []
                rows = page.get("rows") or []
                if not isinstance(rows, list):
                    raise self.error("a result page holds no list of rows")
                pending.extend(convert_row(fields, row) for row in rows)
                while len(pending) >= self.batch_size:
                    yield pending[: self.batch_size]
                    del pending[: self.batch_size]
                token = page.get("pageToken")
                if not token:
                    break
                if token in seen_tokens:
                    raise self.error("BigQuery repeated a pageToken; stopping")
                seen_tokens.add(token)
                page = self._results(client, job, token, int(max_results))
            if pending:
                yield pending
        finally:
            client.close()

    def _results(
        self, client: ConnectorHttpClient, job: Mapping[str, Any], token: str | None, size: int
    ) -> Any:
        if not job.get("jobId"):
            raise self.error("BigQuery answered without a jobReference.jobId")
        params: dict[str, Any] = {"maxResults": size, "timeoutMs": _POLL_TIMEOUT_MS}
        if job.get("location"):
            params["location"] = job["location"]
        if token:
            params["pageToken"] = token
        url = f"{self._base()}/queries/{quote(str(job['jobId']), safe='')}"
        return client.json("GET", url, params=params)

    def test_connection(self) -> str:
        """Dry-run ``SELECT 1`` (checks the credentials and the project, costs nothing)."""
        list(self._run("SELECT 1", {}, dry_run=True))
        return f"bigquery connector {self.context.id!r}: project {self.context.settings['project_id']!r} reachable"
