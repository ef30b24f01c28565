"""The ``api`` connector: any REST/HTTP JSON API, through ``requests`` (or the HTTP provider's hook).

This slice covers one request per run (no pagination yet), the auth types ``none``, ``bearer``, ``basic``,
``api_key`` and ``airflow_connection`` (an Airflow HTTP connection through
:class:`~airflow.providers.http.hooks.http.HttpHook`), path/query parameters, headers, a JSON body and
``metrics_path``.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import quote

import requests

from muxly_provider.connectors.base import MuxlyConnector, Record
from muxly_provider.exceptions import MuxlyConnectorError

_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def fill_path_params(url: str, params: Mapping[str, Any], connector_id: str) -> str:
    """Replace ``{name}`` placeholders of ``url`` with URL-quoted values of ``params``."""

    def _sub(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in params:
            raise MuxlyConnectorError(f"connector {connector_id!r}: path parameter {name!r} has no value")
        return quote(str(params[name]), safe="")

    return _PLACEHOLDER.sub(_sub, url)


def extract_records(payload: Any, metrics_path: str | None, connector_id: str) -> list[Record]:
    """The list of records at ``metrics_path`` (a dot path) of a decoded JSON response."""
    node = payload
    if metrics_path:
        for part in metrics_path.split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                raise MuxlyConnectorError(
                    f"connector {connector_id!r}: metrics_path {metrics_path!r} not found in the response"
                )
    if not isinstance(node, list):
        raise MuxlyConnectorError(
            f"connector {connector_id!r}: expected a list of objects at metrics_path "
            f"{metrics_path or '(whole response)'!r}, got {type(node).__name__}"
        )
    for index, item in enumerate(node):
        if not isinstance(item, dict):
            raise MuxlyConnectorError(
                f"connector {connector_id!r}: item {index} of the records is a {type(item).__name__}, "
                "not an object"
            )
    return node


class ApiConnector(MuxlyConnector):
    """Fetch records from a JSON HTTP API."""

    connector_type = "api"

    def _session(self) -> tuple[requests.Session, str | None]:
        auth = self.context.auth
        auth_type = auth.get("auth_type", "none")
        params = auth.get("params") or {}
        if auth_type == "airflow_connection":
            from airflow.providers.http.hooks.http import HttpHook

            hook = HttpHook(
                method=str(self.context.settings.get("method", "GET")), http_conn_id=params["conn_id"]
            )
            session = hook.get_conn()
            return session, getattr(hook, "base_url", None) or None
        session = requests.Session()
        if auth_type == "bearer":
            session.headers["Authorization"] = f"Bearer {params['token']}"
        elif auth_type == "basic":
            session.auth = (params["username"], params["password"])
        elif auth_type == "api_key":
            if params.get("location", "header") == "query":
                session.params = {params.get("param_name") or "api_key": params["api_key"]}
            else:
                session.headers[params.get("header_name") or "X-API-Key"] = params["api_key"]
        elif auth_type != "none":
            raise MuxlyConnectorError(
                f"connector {self.context.id!r}: auth_type {auth_type!r} is not supported by the api connector yet"
            )
        return session, None

    def fetch(self, data_spec: Mapping[str, Any]) -> Iterator[list[Record]]:
        """Send the configured request and yield its records in batches."""
        settings = self.context.settings
        cid = self.context.id
        path_params = {**(settings.get("path_params") or {}), **(data_spec.get("path_params") or {})}
        query = {**(settings.get("query_params") or {}), **(data_spec.get("query_params") or {})}
        headers = {**(settings.get("headers") or {}), **(data_spec.get("headers") or {})}
        body = data_spec.get("body", settings.get("body_template"))
        session, conn_base = self._session()
        base_url = str(settings.get("base_url") or conn_base or "")
        if not base_url:
            raise MuxlyConnectorError(f"connector {cid!r}: no base_url")
        url = fill_path_params(base_url, path_params, cid)
        method = str(settings.get("method", "GET")).upper()
        timeout = float(settings.get("timeout_seconds") or 30)
        try:
            response = session.request(
                method,
                url,
                params={**(session.params or {}), **query} if isinstance(session.params, dict) else query,
                headers=headers,
                json=body if isinstance(body, (dict, list)) else None,
                data=body if isinstance(body, str) else None,
                timeout=timeout,
            )
        except requests.RequestException as exc:
            raise MuxlyConnectorError(
                f"connector {cid!r}: request to {url} failed: {type(exc).__name__}"
            ) from exc
        finally:
            session.close()
        if response.status_code >= 400:
            raise MuxlyConnectorError(
                f"connector {cid!r}: {method} {url} answered HTTP {response.status_code}"
            )
        try:
            payload = response.json()
        except ValueError as exc:
            raise MuxlyConnectorError(f"connector {cid!r}: the response of {url} is not JSON") from exc
        records = extract_records(payload, settings.get("metrics_path"), cid)
        for start in range(0, len(records), self.batch_size):
            yield records[start : start + self.batch_size]
