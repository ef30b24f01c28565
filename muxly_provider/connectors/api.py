"""The ``api`` connector: any REST/HTTP JSON API, page after page, in bounded memory.

A run sends the configured request (``base_url`` with ``{name}`` path parameters, ``method``, ``headers``,
``query_params``, ``body_template``; each merged with the job's ``data_spec``), reads the records at
``metrics_path`` of each JSON answer (or each line of an NDJSON answer) and follows ``pagination``:

- ``page``: ``page_param`` counts up from ``start_page`` until an empty (or short, with ``page_size``) page;
- ``offset``: ``offset_param`` grows by ``limit`` until a short page;
- ``cursor``: the value at ``cursor_path`` of each answer is sent back as ``cursor_param`` until it is empty;
- ``link_header``: the ``rel="next"`` URL of the ``Link`` header, until there is none.

``max_pages`` caps every mode. A cursor or next link that repeats is an error (a server stuck on one page would
otherwise loop for ever). Settings strings are templates of Muxly's one Jinja environment
(``docs/templates.md``) over the date variables (``DATE``, ...) and the job's ``run_params``, which they may
also write as the shorthands ``${DATE}`` and ``${name}``. With an Airflow HTTP connection (``airflow_connection``), a ``base_url`` without a
scheme is a path under the connection's host. Retries, rate limiting and auth live in :mod:`muxly_provider.http` and
:mod:`.auth`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any
from urllib.parse import urljoin

from muxly_provider.connectors.auth import build_session
from muxly_provider.connectors.base import MuxlyConnector, Record
from muxly_provider.connectors.http_client import ConnectorHttpClient, is_ndjson, iter_ndjson, safe_url
from muxly_provider.exceptions import MuxlyConnectorError

API_AUTH_TYPES = frozenset({"none", "bearer", "basic", "api_key", "oauth", "airflow_connection"})


def fill_path_params(
    url: str, params: Mapping[str, Any], connector_id: str, variables: Mapping[str, Any] | None = None
) -> str:
    """Render ``url``: ``{name}`` placeholders become URL-quoted values of ``params``, ``${name}`` (and Jinja)
    read ``variables``.

    :raises MuxlyConnectorError: naming the connector, the placeholder and its position when it has no value
    """
    from muxly_provider.templating import Shorthands, TemplateRenderError, render

    names = dict(variables or {})
    shorthands = Shorthands(variables=frozenset(names), placeholders="path_params")
    try:
        return render(url, {**names, "path_params": params}, field="base_url", shorthands=shorthands)
    except TemplateRenderError as exc:
        raise MuxlyConnectorError(f"connector {connector_id!r}: {exc}") from None


def resolve_variables(
    value: Any, variables: Mapping[str, Any], connector_id: str = "", field: str = "connection_settings"
) -> Any:
    """``value`` rendered through dicts and lists: every string is a template over ``variables``, which it may
    read as ``${name}`` too (unknown ``${name}`` are kept); strings without template syntax are kept as they are.

    :raises MuxlyConnectorError: naming the connector, the field and the position of a failing template
    """
    from muxly_provider.templating import Shorthands, TemplateRenderError, render_value

    shorthands = Shorthands(variables=frozenset(variables))
    try:
        return render_value(value, variables, field=field, native=False, shorthands=shorthands)
    except TemplateRenderError as exc:
        raise MuxlyConnectorError(f"connector {connector_id!r}: {exc}") from None


def dig(payload: Any, path: str | None) -> tuple[bool, Any]:
    """The value at the dot ``path`` of ``payload`` (list indexes allowed): ``(found, value)``."""
    node = payload
    if path:
        for part in path.split("."):
            if isinstance(node, dict) and part in node:
                node = node[part]
            elif isinstance(node, list) and part.isdigit() and int(part) < len(node):
                node = node[int(part)]
            else:
                return False, None
    return True, node


def extract_records(payload: Any, metrics_path: str | None, connector_id: str) -> list[Record]:
    """The list of records at ``metrics_path`` (a dot path) of a decoded JSON response."""
    found, node = dig(payload, metrics_path)
    if not found:
        raise MuxlyConnectorError(
            f"connector {connector_id!r}: metrics_path {metrics_path!r} not found in the response"
        )
    if not isinstance(node, list):
        raise MuxlyConnectorError(
            f"connector {connector_id!r}: expected a list of objects at metrics_path "
            f"{metrics_path or '(whole response)'!r}, got {type(node).__name__}"
        )
    for index, item in enumerate(node):
        if type(item) is not dict and not isinstance(item, dict):
            raise MuxlyConnectorError(
                f"connector {connector_id!r}: item {index} of the records is a {type(item).__name__}, "
                "not an object"
            )
    return node


class ApiConnector(MuxlyConnector):
    """Fetch records from a JSON (or NDJSON) HTTP API, following its pagination."""

    connector_type = "api"

    def _client(self) -> tuple[ConnectorHttpClient, str | None]:
        settings = self.context.settings
        setup = build_session(
            self.context.id,
            self.context.auth,
            allowed=API_AUTH_TYPES,
            timeout=float(settings.get("timeout_seconds") or 30),
        )
        return ConnectorHttpClient.from_settings(
            self.context.id, settings, setup.session, scope=setup.scope
        ), setup.base_url

    def fetch(self, data_spec: Mapping[str, Any]) -> Iterator[list[Record]]:
        """Request every page and yield its records in batches of at most ``batch_size``."""
        pending: list[Record] = []
        for records in self.pages(data_spec):
            if not pending and len(records) == self.batch_size:
                yield records
                continue
            pending.extend(records)
            while len(pending) >= self.batch_size:
                yield pending[: self.batch_size]
                del pending[: self.batch_size]
        if pending:
            yield pending

    def pages(self, data_spec: Mapping[str, Any], max_pages: int | None = None) -> Iterator[list[Record]]:
        """Yield the records of each page (NDJSON answers in chunks of ``batch_size``).

        :param data_spec: the job's request overrides
        :param max_pages: stop after this many pages (connection tests use 1)
        """
        settings = self.context.settings
        cid = self.context.id
        variables = {**(data_spec.get("variables") or {}), **(data_spec.get("run_params") or {})}
        merged = {
            key: resolve_variables(
                {**(settings.get(key) or {}), **(data_spec.get(key) or {})}, variables, cid, key
            )
            for key in ("path_params", "query_params", "headers")
        }
        body = resolve_variables(
            data_spec.get("body", settings.get("body_template")), variables, cid, "body_template"
        )
        url = fill_path_params(str(settings.get("base_url") or ""), merged["path_params"], cid, variables)
        client, conn_base = self._client()
        if conn_base and "://" not in url:
            # An Airflow HTTP connection supplies the host; base_url is then the path under it.
            url = conn_base.rstrip("/") + ("/" + url.lstrip("/") if url else "")
        if not url:
            raise MuxlyConnectorError(f"connector {cid!r}: no base_url")
        method = str(settings.get("method") or "GET").upper()
        pagination: Mapping[str, Any] = settings.get("pagination") or {}
        mode = str(pagination.get("type") or "none")
        limit = max_pages or pagination.get("max_pages")
        pager = _Pager(mode, pagination, cid)
        query: dict[str, Any] = {**merged["query_params"], **pager.first_params()}
        next_url: str | None = url
        seen: set[str] = set()
        page_count = 0
        try:
            while next_url is not None:
                response = client.request(
                    method,
                    next_url,
                    params=query,
                    headers=merged["headers"],
                    json=body if isinstance(body, (dict, list)) else None,
                    data=body if isinstance(body, str) else None,
                    stream_ndjson=True,
                )
                page_count += 1
                if is_ndjson(response):
                    count = 0
                    chunk: list[Record] = []
                    for number, item in enumerate(iter_ndjson(response, client, next_url)):
                        if not isinstance(item, dict):
                            raise MuxlyConnectorError(
                                f"connector {cid!r}: line {number + 1} of the NDJSON answer is a "
                                f"{type(item).__name__}, not an object"
                            )
                        chunk.append(item)
                        if len(chunk) >= self.batch_size:
                            count += len(chunk)
                            yield chunk
                            chunk = []
                    count += len(chunk)
                    if chunk:
                        yield chunk
                    payload: Any = None
                else:
                    try:
                        payload = response.json()
                    except ValueError:
                        raise MuxlyConnectorError(
                            f"connector {cid!r}: the response of {safe_url(next_url)} is not JSON"
                        ) from None
                    records = extract_records(payload, settings.get("metrics_path"), cid)
                    count = len(records)
                    if records:
                        yield records
                if limit and page_count >= int(limit):
                    break
                step = pager.next(payload, count, response.links, next_url, query)
                if step is None:
                    break
                next_url, query = step
                key = f"{next_url}?{sorted(query.items())}"
                if key in seen:
                    raise MuxlyConnectorError(
                        f"connector {cid!r}: pagination repeats the same page ({mode}); stopping"
                    )
                seen.add(key)
        finally:
            client.close()

    def test_connection(self) -> str:
        """Request the first page and report how many records it held."""
        count = sum(len(batch) for batch in self.pages({}, max_pages=1))
        return f"api connector {self.context.id!r}: first page answered with {count} record(s)"


class _Pager:
    """The next request of each pagination mode."""

    def __init__(self, mode: str, options: Mapping[str, Any], connector_id: str) -> None:
        if mode not in {"none", "page", "offset", "cursor", "link_header"}:
            raise MuxlyConnectorError(
                f"connector {connector_id!r}: pagination type {mode!r} is not supported"
            )
        self.mode = mode
        self.options = options
        self.connector_id = connector_id
        self.page = int(options.get("start_page", 1))
        self.offset = 0

    def first_params(self) -> dict[str, Any]:
        opts = self.options
        if self.mode == "page":
            params: dict[str, Any] = {str(opts.get("page_param") or "page"): self.page}
            if opts.get("size_param") and opts.get("page_size"):
                params[str(opts["size_param"])] = opts["page_size"]
            return params
        if self.mode == "offset":
            return {
                str(opts.get("offset_param") or "offset"): 0,
                str(opts.get("limit_param") or "limit"): int(opts.get("limit") or 100),
            }
        return {}

    def next(
        self,
        payload: Any,
        count: int,
        links: Mapping[str, Any],
        url: str,
        query: dict[str, Any],
    ) -> tuple[str, dict[str, Any]] | None:
        """``(url, query)`` of the next page, or ``None`` after the last one."""
        opts = self.options
        if self.mode == "page":
            size = opts.get("page_size")
            if count == 0 or (size and count < int(size)):
                return None
            self.page += 1
            return url, {**query, str(opts.get("page_param") or "page"): self.page}
        if self.mode == "offset":
            limit = int(opts.get("limit") or 100)
            if count < limit:
                return None
            self.offset += count
            return url, {**query, str(opts.get("offset_param") or "offset"): self.offset}
        if self.mode == "cursor":
            path = str(opts.get("cursor_path") or "")
            _found, cursor = dig(payload, path)
            if cursor in (None, "", False) or count == 0:
                return None
            if isinstance(cursor, (dict, list)):
                raise MuxlyConnectorError(
                    f"connector {self.connector_id!r}: the cursor at {path!r} is not a string or a number"
                )
            return url, {**query, str(opts.get("cursor_param") or "cursor"): cursor}
        if self.mode == "link_header":
            link = links.get("next", {}).get("url")
            # The next link carries its own query; auth params are re-added by the session.
            return (urljoin(url, str(link)), {}) if link else None
        return None
