"""What a destination would write for a share of records, rendered without writing anything.

One renderer per destination type, in a registry keyed by type (:data:`RENDERERS`); a type without one (a
plugin's) shows the records as they are. Each renderer follows its destination's write path with the same
configuration model, batch size and templates (:mod:`muxly_provider.destinations.templates`), and opens no
connection, file or socket:

* ``file``: the lines of the file (a JSONL line, a CSV header and rows, or each element of the JSON array);
* ``database``: the row of each record as it would be inserted (``column_mapping`` applied, objects and lists as
  JSON text), the target table and the upsert key;
* ``webhook``: each request (method, URL with its secret parts masked, header names, the rendered body);
* ``email``: each message (sender, recipients, rendered subject and HTML body);
* ``slack``: each message's JSON payload (the webhook URL never appears);
* ``s3``: each object (``s3://`` URL from ``key_template``, content type, content);
* ``prometheus``: the samples the Pushgateway would hold after the share (exposition format).

Tests compare each rendering with what the destination really writes (``tests/unit/preview``).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from muxly_provider.destinations.base import DEFAULT_BATCH_SIZE, DestinationContext, Record, RunInfo

MAX_TEXT = 20_000
"""Characters of one rendered text (a body, a file's content) shown; the rest is cut with a note."""


@dataclass
class Rendered:
    """What a destination would write: ``items`` of kind ``rendered_as``, the first ``shown`` of ``total``."""

    rendered_as: str
    items: list[Any] = field(default_factory=list)
    total: int = 0
    target: str | None = None
    """Where it would go (a table, a bucket, a Pushgateway job), when that holds no secret."""


Renderer = Callable[[DestinationContext, RunInfo, Sequence[Record], int], Rendered]


def cut(text: str) -> str:
    """``text``, at most :data:`MAX_TEXT` characters."""
    if len(text) <= MAX_TEXT:
        return text
    return text[:MAX_TEXT] + f"... ({len(text) - MAX_TEXT} more characters)"


def _json_line(record: Mapping[str, Any]) -> str:
    return json.dumps(record, default=str, ensure_ascii=False)


def _batch_size(context: DestinationContext) -> int:
    return max(1, int(context.config.get("batch_size") or DEFAULT_BATCH_SIZE))


def _batches(records: Sequence[Record], size: int) -> Iterator[list[Record]]:
    for start in range(0, len(records), size):
        yield list(records[start : start + size])


def _count_batches(records: Sequence[Record], size: int) -> int:
    return (len(records) + size - 1) // size


def render_records(
    context: DestinationContext, run: RunInfo, records: Sequence[Record], shown: int
) -> Rendered:
    """The records as they are (a type without its own renderer)."""
    return Rendered("record", [dict(r) for r in records[:shown]], len(records))


def render_file(context: DestinationContext, run: RunInfo, records: Sequence[Record], shown: int) -> Rendered:
    """The lines of the file: JSONL lines, CSV header and rows, or each element of the JSON array."""
    from muxly_provider.config.destinations import FileDestinationConfig

    settings = FileDestinationConfig.model_validate(dict(context.config))
    if settings.file_format != "csv":
        return Rendered("line", [_json_line(r) for r in records[:shown]], len(records))
    columns: dict[str, None] = {}
    for record in records:  # the header after the commit: every field, in the order they appear
        columns.update(dict.fromkeys(record))
    out = io.StringIO(newline="")
    writer = csv.DictWriter(out, fieldnames=list(columns), extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for record in records[:shown]:
        writer.writerow(
            {k: json.dumps(v, default=str) if isinstance(v, dict | list) else v for k, v in record.items()}
        )
    return Rendered("line", out.getvalue().splitlines(), len(records) + 1)


def _column_value(value: Any) -> Any:
    if isinstance(value, dict | list):
        return json.dumps(value, default=str, ensure_ascii=False)
    return value


def render_database(
    context: DestinationContext, run: RunInfo, records: Sequence[Record], shown: int
) -> Rendered:
    """The row of each record: mapped columns (a missing field is ``NULL``), objects and lists as JSON text."""
    from muxly_provider.config.destinations import DatabaseDestinationConfig

    settings = DatabaseDestinationConfig.model_validate(dict(context.config))
    mapping = dict(settings.column_mapping)
    rows: list[dict[str, Any]] = []
    if mapping:
        rows = [
            {column: _column_value(r.get(name)) for name, column in mapping.items()} for r in records[:shown]
        ]
    else:
        columns: dict[str, None] = {}
        for record in records:
            columns.update(dict.fromkeys(record))
        rows = [{c: _column_value(r.get(c)) for c in columns} for r in records[:shown]]
    table = f"{settings.schema_}.{settings.table}" if settings.schema_ else settings.table
    key = settings.upsert_key
    keys = [key] if isinstance(key, str) else list(key or [])
    target = f"table {table}" + (f", upsert on {', '.join(keys)}" if keys else ", insert")
    if not mapping and not settings.create_table:
        target += " (fields without a column are left out)"
    return Rendered("row", rows, len(records), target)


def _masked_url(url: str) -> str:
    from muxly_provider import secret_urls

    if secret_urls.is_broken_url(url):
        return secret_urls.MASK
    return secret_urls.mask(url) if secret_urls.has_secret_parts(url) else url


def render_webhook(
    context: DestinationContext, run: RunInfo, records: Sequence[Record], shown: int
) -> Rendered:
    """Each request: method, URL (secret parts masked), header names (values are secrets), the body."""
    from muxly_provider.config.destinations import WebhookDestinationConfig
    from muxly_provider.destinations.templates import template_context
    from muxly_provider.destinations.webhook import render_request

    settings = WebhookDestinationConfig.model_validate(dict(context.config))
    size = _batch_size(context)
    requests: list[dict[str, Any]] = []

    def request(batch: list[Record], index: int, record: Record | None) -> dict[str, Any]:
        variables = template_context(
            run,
            destination_id=context.id,
            destination_name=context.name,
            records=batch,
            record=record,
            batch=index,
        )
        # The preview reads no Airflow connection: a conn_id's base URL is named by its id. Headers are
        # rendered as a run renders them and shown as "***".
        url, _headers, body = render_request(settings, variables, f"{{conn_id {settings.conn_id}}}")
        shown_request: dict[str, Any] = {
            "method": settings.method,
            "url": _masked_url(url),
            "headers": dict.fromkeys(settings.headers, "***"),
        }
        if settings.method == "GET":
            shown_request["params"] = body if isinstance(body, Mapping) else None
        else:
            shown_request["body"] = cut(body) if isinstance(body, str) else body
        return shown_request

    total = 0
    for index, batch in enumerate(_batches(records, size)):
        if settings.send_mode == "record":
            for record in batch:
                if len(requests) < shown:
                    requests.append(request(batch, index, record))
            total += len(batch)
        else:
            if len(requests) < shown:
                requests.append(request(batch, index, None))
            total += 1
    return Rendered("request", requests, total)


def render_email(
    context: DestinationContext, run: RunInfo, records: Sequence[Record], shown: int
) -> Rendered:
    """Each message (one per batch): sender, recipients, subject and HTML body as rendered."""
    from email.utils import formataddr

    from muxly_provider.config.destinations import EmailDestinationConfig
    from muxly_provider.destinations.email import DEFAULT_BODY
    from muxly_provider.destinations.templates import render, template_context

    settings = EmailDestinationConfig.model_validate(dict(context.config))
    body_template = settings.body_template or DEFAULT_BODY
    size = _batch_size(context)
    messages: list[dict[str, Any]] = []
    for index, batch in enumerate(_batches(records, size)):
        if index >= shown:
            break
        columns: dict[str, None] = {}
        for record in batch:
            columns.update(dict.fromkeys(record))
        variables = template_context(
            run,
            destination_id=context.id,
            destination_name=context.name,
            records=batch,
            batch=index,
            variables=settings.template_variables,
            extra={"columns": list(columns)},
        )
        address = settings.from_email or f"(the from_email of Airflow connection {settings.conn_id!r})"
        sender = formataddr((settings.from_name, address)) if settings.from_name else address
        messages.append(
            {
                "from": sender,
                "to": list(settings.to_emails),
                "cc": list(settings.cc_emails),
                "bcc": list(settings.bcc_emails),
                "subject": " ".join(render(settings.subject_template, variables).split()),
                "html": cut(render(body_template, variables, html=True)),
            }
        )
    return Rendered("message", messages, _count_batches(records, size))


def _slack_value(value: Any) -> str:
    return json.dumps(value, default=str) if isinstance(value, dict | list) else str(value)


def render_slack(
    context: DestinationContext, run: RunInfo, records: Sequence[Record], shown: int
) -> Rendered:
    """Each message's JSON payload (one per batch, or per ``MAX_ATTACHMENTS`` records with ``include_data``)."""
    from muxly_provider.config.destinations import SlackDestinationConfig
    from muxly_provider.destinations.slack import MAX_ATTACHMENTS
    from muxly_provider.destinations.templates import render, template_context

    s = SlackDestinationConfig.model_validate(dict(context.config))
    payloads: list[dict[str, Any]] = []
    total = 0
    for index, batch in enumerate(_batches(records, _batch_size(context))):
        chunk = MAX_ATTACHMENTS if s.include_data else max(1, len(batch))
        for part in _batches(batch, chunk):
            total += 1
            if len(payloads) >= shown:
                continue
            variables = template_context(
                run,
                destination_id=context.id,
                destination_name=context.name,
                records=part,
                batch=index,
                variables=s.template_variables,
            )
            payload: dict[str, Any] = {"text": render(s.message_template, variables)}
            if s.channel:
                payload["channel"] = s.channel
            if s.username:
                payload["username"] = s.username
            if s.icon:
                payload["icon_url" if s.icon.startswith(("http://", "https://")) else "icon_emoji"] = s.icon
            if s.include_data:
                payload["attachments"] = [
                    {
                        "fallback": _slack_value(record)[:300],
                        **({"color": s.color} if s.color else {}),
                        "fields": [
                            {"title": str(key), "value": _slack_value(value), "short": True}
                            for key, value in record.items()
                        ],
                    }
                    for record in part
                ]
            payloads.append(payload)
    return Rendered("message", payloads, total)


def render_s3(context: DestinationContext, run: RunInfo, records: Sequence[Record], shown: int) -> Rendered:
    """Each object (one per batch): its ``s3://`` URL, content type and content."""
    from muxly_provider.destinations.s3 import CONTENT_TYPES, S3Destination, encode

    destination = S3Destination(context, run)  # parses the config and the key template; connects to nothing
    settings = destination.settings
    # Without ``bucket`` the run takes the connection's service_config.s3.bucket_name (not read here).
    bucket = settings.bucket or f"(the bucket of Airflow connection {settings.conn_id!r})"
    objects: list[dict[str, Any]] = []
    size = _batch_size(context)
    for index, batch in enumerate(_batches(records, size)):
        if index >= shown:
            break
        objects.append(
            {
                "url": f"s3://{bucket}/{destination.key(index)}",
                "content_type": settings.content_type or CONTENT_TYPES[settings.output_format],
                "content": cut(encode(batch, settings.output_format).decode("utf-8", errors="replace")),
            }
        )
    return Rendered("object", objects, _count_batches(records, size), f"bucket {bucket}")


def render_prometheus(
    context: DestinationContext, run: RunInfo, records: Sequence[Record], shown: int
) -> Rendered:
    """The samples the Pushgateway group would hold after the share (``name{labels} value`` lines)."""
    from prometheus_client import generate_latest

    from muxly_provider.destinations.prometheus import PrometheusDestination

    destination = PrometheusDestination(context, run)  # builds its registry; pushes nothing
    for record in records:
        for metric in destination.metrics:
            metric.observe(record)
    lines = [
        line
        for line in generate_latest(destination.registry).decode().splitlines()
        if line and not line.startswith("#")
    ]
    target = f"job={destination.settings.job} muxly_destination={context.id}"
    return Rendered("sample", lines[:shown], len(lines), target)


RENDERERS: dict[str, Renderer] = {
    "file": render_file,
    "database": render_database,
    "webhook": render_webhook,
    "email": render_email,
    "slack": render_slack,
    "s3": render_s3,
    "prometheus": render_prometheus,
}


def render_share(
    context: DestinationContext, run: RunInfo, records: Sequence[Record], shown: int
) -> Rendered:
    """What ``context`` would write for ``records``: its type's renderer, or the records themselves.

    :raises MuxlyError: a template that does not render, a config its destination refuses
    :raises ValidationError: a config that does not validate
    """
    renderer = RENDERERS.get(context.destination_type, render_records)
    return renderer(context, run, records, shown)
