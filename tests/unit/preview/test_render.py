"""Each preview renderer shows what its destination really writes: the destination writes to a real target
(files, SQLite, loopback HTTP servers, aiosmtpd, moto's S3, a Pushgateway) and the preview of the same records
must match it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text

from muxly_provider.destinations.base import DestinationContext, RunInfo
from muxly_provider.destinations.registry import get_destination_class
from muxly_provider.preview.render import MAX_TEXT, render_share
from tests.integration.destinations.destination_servers import (
    http_recorder,
    pushed_samples,
    pushgateway,
    smtp_server,
)

RUN = RunInfo(
    dag_id="muxly__j",
    run_id="manual__1",
    job_id="j",
    connector_id="sales",
    logical_date=datetime(2026, 11, 26, 7, 0, tzinfo=UTC),
)
RECORDS: list[dict[str, Any]] = [
    {"id": 1, "name": "Ann <a>", "tags": ["x"], "amount": 10.5, "country": "FR"},
    {"id": 2, "name": 'b, "quoted"', "extra": {"k": 1}, "amount": 4, "country": "US"},
    {"id": 3, "name": "Cy", "amount": 7, "country": "FR"},
]


def _context(kind: str, **config: Any) -> DestinationContext:
    return DestinationContext(id="d1", name="D1", destination_type=kind, config=config)


def _write(context: DestinationContext, records: list[dict[str, Any]] = RECORDS) -> list[str]:
    """Deliver ``records`` with the real destination, in batches of its ``batch_size``, and commit."""
    destination = get_destination_class(context.destination_type)(context, RUN)
    for start in range(0, len(records), destination.batch_size):
        destination.write_batch(records[start : start + destination.batch_size])
    return destination.commit()


@pytest.mark.parametrize("file_format", ["jsonl", "csv", "json"])
def test_file_lines_are_the_file_s_lines(files_root: Path, file_format: str) -> None:
    context = _context("file", output_dir=str(files_root / "out"), file_format=file_format, batch_size=2)
    rendered = render_share(context, RUN, RECORDS, 20)
    [path] = _write(context)
    lines = Path(path).read_text().splitlines()
    assert rendered.rendered_as == "line"
    if file_format == "json":  # the array's elements, one per line in the file
        assert rendered.items == [line.rstrip(",") for line in lines[1:-1]]
        assert [json.loads(item) for item in rendered.items] == json.loads(Path(path).read_text())
    else:
        assert rendered.items == lines
    assert render_share(context, RUN, RECORDS, 1).items == rendered.items[: 2 if file_format == "csv" else 1]


def test_database_rows_are_the_inserted_rows(files_root: Path) -> None:
    url = f"sqlite:///{files_root / 'target.db'}"
    mapped = _context(
        "database",
        connection_string=url,
        table="people",
        create_table=True,
        column_mapping={"id": "person_id", "extra": "extra", "amount": "amount"},
    )
    rendered = render_share(mapped, RUN, RECORDS, 20)
    _write(mapped)
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(text("SELECT * FROM people ORDER BY person_id"))]
    engine.dispose()
    assert rendered.items == rows
    assert rendered.target == "table people, insert"
    plain = _context(
        "database", connection_string=url, table="all_fields", create_table=True, upsert_key="id"
    )
    rendered = render_share(plain, RUN, RECORDS, 20)
    _write(plain)
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(text("SELECT * FROM all_fields ORDER BY id"))]
    engine.dispose()
    assert rendered.items == rows and rendered.target == "table all_fields, upsert on id"


@pytest.mark.parametrize("send_mode", ["batch", "record"])
def test_webhook_requests_are_the_requests_sent(send_mode: str) -> None:
    with http_recorder() as server:
        context = _context(
            "webhook",
            url=server.url + "/in/{{ destination_id }}?token=s3cr3t-token",
            headers={"X-Api-Key": "s3cr3t-key"},
            body_template={"count": "{{count}}", "who": "{{ record.name }}", "all": "{{ records }}"},
            send_mode=send_mode,
            batch_size=2,
        )
        rendered = render_share(context, RUN, RECORDS, 20)
        _write(context)
    sent = [request.json() for request in server.requests]
    assert [item["body"] for item in rendered.items] == sent
    assert rendered.total == len(sent) == (3 if send_mode == "record" else 2)
    first = rendered.items[0]
    assert first["method"] == "POST" and first["url"] == f"{server.url}/in/d1?token=***"
    assert first["headers"] == {"X-Api-Key": "***"}
    assert server.requests[0].path == "/in/d1?token=s3cr3t-token"


def test_slack_payloads_are_the_messages_posted() -> None:
    with http_recorder(slack=True) as server:
        context = _context(
            "slack",
            webhook_url=server.url + "/services/T0/B0/XYZ",
            channel="#sales",
            icon=":chart:",
            message_template="{{count}} orders, first {{ first }}",
            template_variables={"first": "name"},
            include_data=True,
            color="#36a64f",
        )
        rendered = render_share(context, RUN, RECORDS, 20)
        _write(context)
    assert rendered.items == [request.json() for request in server.requests]
    assert "XYZ" not in json.dumps(rendered.items)


def test_email_messages_are_the_messages_sent() -> None:
    with smtp_server() as mailbox:
        context = _context(
            "email",
            smtp_host=mailbox.host,
            smtp_port=mailbox.port,
            smtp_password="smtp-secret-password",
            use_tls=False,
            from_email="muxly@example.com",
            from_name="Muxly",
            to_emails=["ops@example.com"],
            bcc_emails=["audit@example.com"],
            subject_template="{{count}} orders\n from {{ connector_id }}",
            batch_size=2,
        )
        rendered = render_share(context, RUN, RECORDS, 20)
        _write(context)
    assert rendered.total == len(mailbox.messages) == 2
    for shown, (_, recipients, message) in zip(rendered.items, mailbox.messages, strict=True):
        html = next(p for p in message.walk() if p.get_content_type() == "text/html")
        assert shown["subject"] == message["Subject"] and shown["from"] == message["From"]
        payload = html.get_payload(decode=True)
        assert isinstance(payload, bytes) and shown["html"] == payload.decode()
        assert recipients == [*shown["to"], *shown["cc"], *shown["bcc"]]
    assert "&lt;a&gt;" in rendered.items[0]["html"]


def test_s3_objects_are_the_objects_put(moto_s3: Any) -> None:
    from tests.s3_helpers import ACCESS_KEY_ID, SECRET_ACCESS_KEY, create_bucket, s3_client

    bucket = create_bucket(moto_s3.endpoint_url)
    context = _context(
        "s3",
        bucket=bucket,
        endpoint_url=moto_s3.endpoint_url,
        region="us-east-1",
        credentials={"access_key_id": ACCESS_KEY_ID, "secret_access_key": SECRET_ACCESS_KEY},
        key_prefix="raw/",
        output_format="csv",
        batch_size=2,
    )
    rendered = render_share(context, RUN, RECORDS, 20)
    urls = _write(context)
    client = s3_client(moto_s3.endpoint_url)
    assert [item["url"] for item in rendered.items] == urls
    for item in rendered.items:
        key = item["url"].removeprefix(f"s3://{bucket}/")
        stored = client.get_object(Bucket=bucket, Key=key)
        assert item["content"] == stored["Body"].read().decode()
        assert item["content_type"] == stored["ContentType"] == "text/csv"
    assert SECRET_ACCESS_KEY not in json.dumps(rendered.items)


def test_s3_by_conn_id_alone_names_the_connection_s_bucket() -> None:
    """A destination configured by ``conn_id`` alone takes its bucket from the connection at run time; the
    preview, which connects to nothing, says so instead of ``s3://None``."""
    rendered = render_share(_context("s3", conn_id="muxly_lake"), RUN, RECORDS, 20)
    assert rendered.items[0]["url"].startswith("s3://(the bucket of Airflow connection 'muxly_lake')/")
    assert "None" not in json.dumps(rendered.items)


def test_prometheus_samples_are_the_pushed_samples() -> None:
    metrics = [
        {"name": "order_amount", "type": "gauge", "value_field": "amount", "labels": {"country": "country"}},
        {"name": "orders", "type": "counter", "labels": {"country": "country"}},
    ]
    with pushgateway() as url:
        context = _context("prometheus", pushgateway_url=url, job="sales", metrics=metrics)
        rendered = render_share(context, RUN, RECORDS, 20)
        _write(context)
        pushed = pushed_samples(url)
    group = "job=sales,muxly_destination=d1"
    shown = {}
    for line in rendered.items:
        name, value = line.rsplit(" ", 1)
        shown[name] = float(value)
    assert shown['order_amount{country="FR"}'] == pushed[f"order_amount{{country=FR,{group}}}"] == 7.0
    assert shown['orders_total{country="FR"}'] == pushed[f"orders_total{{country=FR,{group}}}"] == 2.0
    assert rendered.target == "job=sales muxly_destination=d1"


def test_long_texts_are_cut_and_unknown_types_show_the_records() -> None:
    context = _context("webhook", url="http://127.0.0.1:9/x", body_template="{{ 'x' * 30000 }}")
    [request] = render_share(context, RUN, RECORDS[:1], 20).items
    assert len(request["body"]) < MAX_TEXT + 50 and request["body"].endswith("more characters)")
    plugin = render_share(_context("plugin:custom"), RUN, RECORDS, 2)
    assert plugin.rendered_as == "record" and plugin.items == RECORDS[:2] and plugin.total == 3


def test_a_webhook_by_conn_id_names_its_connection_and_reads_none() -> None:
    """No Airflow connection is read (none exists here): the URL names the connection id, the endpoint below."""
    context = _context(
        "webhook",
        conn_id="no_such_connection",
        endpoint="orders/{{ record.id }}",
        send_mode="record",
        headers={"Authorization": "Bearer {{ record.name }}"},
    )
    rendered = render_share(context, RUN, RECORDS[:2], 20)
    assert [request["url"] for request in rendered.items] == [
        "{conn_id no_such_connection}/orders/1",
        "{conn_id no_such_connection}/orders/2",
    ]
    assert rendered.items[0]["headers"] == {"Authorization": "***"}
    assert rendered.items[0]["body"] == RECORDS[0]
