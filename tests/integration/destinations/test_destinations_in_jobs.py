"""Every destination type receives records inside a real job run (``dag.test()``), checked by reading the real
targets afterwards; with one destination down the others still get everything and nothing is lost (the
dead-letter table holds what could not be delivered); a retry per the job's policy delivers and clears it."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy import Engine, text

from examples.sample_api import make_server, sample_sales, start_in_thread
from muxly_provider.crypto import encrypt_row_secrets
from muxly_provider.destinations.database_sql import normalize_url
from tests.integration.destinations.destination_servers import (
    free_port,
    http_recorder,
    mariadb_database,
    pushed_samples,
    pushgateway,
    s3_client,
    s3_server,
    smtp_server,
)

pytestmark = [
    pytest.mark.usefixtures("airflow_db", "files_root"),
    pytest.mark.parametrize("db_url", ["sqlite"], indirect=True),
]

RECORDS = sample_sales()
WEBHOOK_TOKEN = "Bearer wh-secret-token-42"
SLACK_PATH = "/services/T000/B000/slacksecret42"


@pytest.fixture
def sales_api() -> Iterator[str]:
    server = make_server()
    start_in_thread(server)
    yield f"http://127.0.0.1:{server.server_address[1]}/api/v1/sales"
    server.shutdown()


def _insert(engine: Engine, table: str, **values: Any) -> None:
    if table == "destinations":
        values = encrypt_row_secrets("destinations", values)
    values = {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in values.items()}
    with engine.begin() as conn:
        conn.execute(
            text(f"INSERT INTO {table} ({', '.join(values)}) VALUES ({', '.join(':' + k for k in values)})"),
            values,
        )


def _job(
    engine: Engine,
    api_url: str,
    job_id: str,
    destinations: dict[str, tuple[str, dict[str, Any]]],
    max_retries: int = 0,
) -> Any:
    from muxly_provider.dag_factory.register import register_dags

    _insert(
        engine,
        "connectors",
        id=f"{job_id}_api",
        name="Sales",
        connector_type="api",
        auth_settings={"auth_type": "none"},
        connection_settings={"base_url": api_url, "metrics_path": "data.records"},
    )
    for dest_id, (kind, config) in destinations.items():
        _insert(engine, "destinations", id=dest_id, name=dest_id, destination_type=kind, config=config)
    _insert(
        engine,
        "scheduler_jobs",
        id=job_id,
        name=job_id,
        job_type="manual",
        connector_id=f"{job_id}_api",
        action_type="export",
        action_params={"destination_ids": sorted(destinations)},
        max_retries=max_retries,
        backoff_strategy="fixed",
    )
    namespace: dict[str, Any] = {}
    register_dags(namespace)
    return namespace[f"muxly__{job_id}"]


def _result(engine: Engine, job_id: str) -> dict[str, Any]:
    with engine.connect() as conn:
        [(status, result)] = conn.execute(
            text("SELECT status, result FROM job_executions WHERE job_id = :j"), {"j": job_id}
        ).all()
    return {"status": status, **json.loads(result)}


def _rows(url: str, table: str) -> list[dict[str, Any]]:
    engine = sa.create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            return [
                dict(r) for r in conn.execute(text(f"SELECT * FROM {table} ORDER BY order_id")).mappings()
            ]
    finally:
        engine.dispose()


def _dead_letters(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT * FROM dead_letters ORDER BY destination_id, batch_index")
        ).mappings()
        return [{**r, "records": json.loads(r["records"])} for r in rows]


def test_every_destination_type_receives_records_in_a_job_run(
    muxly_engine: Engine, sales_api: str, tmp_path: Path, postgres_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pg = sa.engine.make_url(postgres_url)
    monkeypatch.setenv(
        "AIRFLOW_CONN_MUXLY_PG_TARGET",
        json.dumps(
            {
                "conn_type": "postgres",
                "host": pg.host,
                "port": pg.port,
                "login": pg.username,
                "schema": pg.database,
            }
        ),
    )
    with (
        mariadb_database() as mariadb_url,
        http_recorder() as webhook,
        http_recorder(slack=True) as slack,
        smtp_server() as mailbox,
        s3_server() as s3_endpoint,
        pushgateway() as gateway,
    ):
        s3_client(s3_endpoint).create_bucket(Bucket="lake")
        destinations: dict[str, tuple[str, dict[str, Any]]] = {
            "files": ("file", {"output_dir": str(tmp_path / "files"), "file_format": "jsonl"}),
            "pg": (
                "database",
                {
                    "conn_id": "muxly_pg_target",
                    "table": "sales",
                    "create_table": True,
                    "upsert_key": "order_id",
                    "batch_size": 7,
                },
            ),
            "maria": (
                "database",
                {
                    "connection_string": mariadb_url,
                    "table": "sales",
                    "create_table": True,
                    "upsert_key": "order_id",
                    "column_mapping": {"order_id": "order_id", "purchase_amount": "amount"},
                },
            ),
            "hook": (
                "webhook",
                {
                    "url": webhook.url + "/ingest",
                    "headers": {"Authorization": WEBHOOK_TOKEN},
                    "batch_size": 8,
                },
            ),
            "mail": (
                "email",
                {
                    "smtp_host": mailbox.host,
                    "smtp_port": mailbox.port,
                    "use_tls": False,
                    "from_email": "muxly@example.com",
                    "to_emails": ["ops@example.com"],
                    "subject_template": "{{count}} sales from {{connector_id}} on {{date}}",
                },
            ),
            "chat": (
                "slack",
                {
                    "webhook_url": slack.url + SLACK_PATH,
                    "channel": "#sales",
                    "message_template": "{{count}} new sales",
                    "include_data": True,
                },
            ),
            "lake": (
                "s3",
                {
                    "bucket": "lake",
                    "endpoint_url": s3_endpoint,
                    "region": "us-east-1",
                    "key_prefix": "sales/",
                    "output_format": "jsonl",
                    "batch_size": 15,
                    "credentials": {"access_key_id": "AKIATEST", "secret_access_key": "test-secret-key"},
                },
            ),
            "metrics": (
                "prometheus",
                {
                    "pushgateway_url": gateway,
                    "job": "muxly_sales",
                    "metrics": [
                        {
                            "name": "sales_amount_total",
                            "type": "counter",
                            "value_field": "purchase_amount",
                            "labels": {"country": "country"},
                        }
                    ],
                },
            ),
        }
        dag = _job(muxly_engine, sales_api, "all_types", destinations)
        dag_run = dag.test()
        samples = pushed_samples(gateway)
        objects = s3_client(s3_endpoint).list_objects_v2(Bucket="lake", Prefix="sales/")["Contents"]
        lake = [
            json.loads(line)
            for o in sorted(objects, key=lambda o: o["Key"])
            for line in s3_client(s3_endpoint)
            .get_object(Bucket="lake", Key=o["Key"])["Body"]
            .read()
            .splitlines()
        ]
        maria_rows = _rows(mariadb_url, "sales")

    assert dag_run.state == "success"
    result = _result(muxly_engine, "all_types")
    assert result["status"] == "success"
    for dest_id in destinations:
        assert result["destinations"][dest_id]["delivered"] == len(RECORDS), dest_id
        assert result["destinations"][dest_id]["failed"] == 0
    assert result["routed"] == result["delivered"] == len(RECORDS) * len(destinations)
    assert WEBHOOK_TOKEN not in json.dumps(result) and "slacksecret42" not in json.dumps(result)

    [path] = (tmp_path / "files").iterdir()
    assert [json.loads(line) for line in path.read_text().splitlines()] == RECORDS
    pg_rows = _rows(postgres_url, "sales")
    assert [r["order_id"] for r in pg_rows] == [r["order_id"] for r in RECORDS]
    assert pg_rows[0]["purchase_amount"] == RECORDS[0]["purchase_amount"]
    assert maria_rows[3] == {"order_id": RECORDS[3]["order_id"], "amount": RECORDS[3]["purchase_amount"]}
    assert [r for req in webhook.requests for r in req.json()] == RECORDS and len(webhook.requests) == 3
    assert webhook.requests[0].headers["Authorization"] == WEBHOOK_TOKEN
    [(_, recipients, message)] = mailbox.messages
    assert recipients == ["ops@example.com"] and message["Subject"].startswith(
        f"{len(RECORDS)} sales from all_types_api"
    )
    [post] = slack.requests
    assert post.path == SLACK_PATH and post.json()["text"] == f"{len(RECORDS)} new sales"
    assert len(post.json()["attachments"]) == len(RECORDS)
    assert lake == RECORDS and len(objects) == 2
    us_total = sum(r["purchase_amount"] for r in RECORDS if r["country"] == "US")
    key = "sales_amount_total{country=US,job=muxly_sales,muxly_destination=metrics}"
    assert samples[key] == pytest.approx(us_total)


def test_one_destination_down_others_receive_everything_and_nothing_is_lost(
    muxly_engine: Engine,
    sales_api: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    capfd: pytest.CaptureFixture[str],
) -> None:
    target = f"sqlite:///{tmp_path / 'target.db'}"
    down_url = f"http://127.0.0.1:{free_port()}/hook"
    dag = _job(
        muxly_engine,
        sales_api,
        "one_down",
        {
            "files": ("file", {"output_dir": str(tmp_path / "files"), "file_format": "csv"}),
            "db": (
                "database",
                {
                    "connection_string": target,
                    "table": "sales",
                    "create_table": True,
                    "upsert_key": "order_id",
                    "batch_size": 6,
                },
            ),
            "hook": (
                "webhook",
                {
                    "url": down_url,
                    "headers": {"Authorization": WEBHOOK_TOKEN},
                    "batch_size": 6,
                    "retry_count": 1,
                    "retry_backoff_seconds": 0.01,
                    "timeout_seconds": 2,
                },
            ),
        },
    )
    dag_run = dag.test()

    assert dag_run.state == "failed"
    assert len(_rows(target, "sales")) == len(RECORDS)
    assert len(list((tmp_path / "files").iterdir())) == 1
    result = _result(muxly_engine, "one_down")
    assert result["status"] == "failed" and "hook" in result["error"]
    hook = result["destinations"]["hook"]
    assert (hook["routed"], hook["delivered"], hook["dead_lettered"], hook["batches"]) == (20, 0, 20, 4)
    assert "connection failed after 2 tries" in hook["error"]
    for counts in result["destinations"].values():
        assert counts["routed"] == counts["delivered"] + counts["dead_lettered"]
    assert result["dead_letters"] == {"transform": 0, "delivery": 20, "store": "muxly.dead_letters"}
    letters = _dead_letters(muxly_engine)
    assert {letter["destination_id"] for letter in letters} == {"hook"}
    assert [r for letter in letters for r in letter["records"]] == RECORDS
    assert all(letter["run_id"] == dag_run.run_id and "hook" in letter["error"] for letter in letters)
    assert WEBHOOK_TOKEN not in json.dumps(result) and WEBHOOK_TOKEN not in json.dumps(letters, default=str)
    captured = capfd.readouterr()
    logs = caplog.text + captured.out + captured.err
    assert "goes to the dead-letter store" in logs
    assert WEBHOOK_TOKEN not in logs


def test_a_failing_destination_is_retried_per_the_job_policy(
    muxly_engine: Engine, sales_api: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from muxly_provider.dag_factory import builder

    # Airflow retries at once instead of after 30 s (the worker side builds the DAG again from the DAG file).
    monkeypatch.setattr(builder, "RETRY_DELAY", timedelta(0))
    target = f"sqlite:///{tmp_path / 'target.db'}"
    with http_recorder() as webhook:
        webhook.statuses = [
            503,
            503,
        ]  # the first try of the task fails (1 + retry_count requests), the next works
        dag = _job(
            muxly_engine,
            sales_api,
            "flaky",
            {
                "db": (
                    "database",
                    {
                        "connection_string": target,
                        "table": "sales",
                        "create_table": True,
                        "upsert_key": "order_id",
                    },
                ),
                "hook": ("webhook", {"url": webhook.url, "retry_count": 1, "retry_backoff_seconds": 0.01}),
            },
            max_retries=1,
        )
        dag_run = dag.test()

    assert dag_run.state == "success"
    assert [r for req in webhook.requests for r in req.json()] == RECORDS
    assert len(_rows(target, "sales")) == len(RECORDS)  # the retry upserted: no duplicates
    result = _result(muxly_engine, "flaky")
    assert result["status"] == "success"
    assert result["destinations"]["hook"]["delivered"] == len(RECORDS)
    assert _dead_letters(muxly_engine) == []  # the retry delivered what the first try dead-lettered
