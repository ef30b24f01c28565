"""The s3 destination against moto's S3-compatible server and the prometheus destination against a real
Pushgateway."""

from __future__ import annotations

import csv
import io
import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest

from muxly_provider.destinations.base import DestinationContext, MuxlyDeliveryError, RunInfo
from muxly_provider.destinations.prometheus import PrometheusDestination
from muxly_provider.destinations.s3 import S3Destination
from tests.integration.destinations.destination_servers import (
    pushed_samples,
    pushgateway,
    s3_client,
    s3_server,
)

RUN = RunInfo(
    dag_id="muxly__j",
    run_id="manual__1",
    job_id="j",
    connector_id="sales",
    logical_date=datetime(2026, 11, 26, tzinfo=UTC),
)
RECORDS = [{"id": 1, "country": "US", "amount": 10.5, "tags": ["a"]}, {"id": 2, "country": "DE", "amount": 4}]
CREDENTIALS = {"access_key_id": "AKIATEST", "secret_access_key": "test-secret-key"}


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    with s3_server() as endpoint:
        s3_client(endpoint).create_bucket(Bucket="lake")
        yield endpoint


def _s3(endpoint: str, **config: Any) -> S3Destination:
    ctx = DestinationContext(
        id="lake",
        name="Lake",
        destination_type="s3",
        config={
            "bucket": "lake",
            "endpoint_url": endpoint,
            "region": "us-east-1",
            "credentials": CREDENTIALS,
            **config,
        },
    )
    return S3Destination(ctx, RUN)


def _objects(endpoint: str, prefix: str) -> dict[str, bytes]:
    client = s3_client(endpoint)
    listing = client.list_objects_v2(Bucket="lake", Prefix=prefix).get("Contents", [])
    return {o["Key"]: client.get_object(Bucket="lake", Key=o["Key"])["Body"].read() for o in listing}


def test_s3_deterministic_keys_and_formats(s3_endpoint: str) -> None:
    dest = _s3(s3_endpoint, key_prefix="raw/", output_format="jsonl")
    dest.write_batch(RECORDS[:1])
    dest.write_batch(RECORDS[1:])
    urls = dest.commit()
    key0 = f"raw/sales/2026-11-26/lake_{RUN.run_key}_00000.jsonl"
    assert urls == [f"s3://lake/{key0}", f"s3://lake/{key0.replace('00000', '00001')}"]
    # A retried run writes the same keys again: nothing is duplicated.
    again = _s3(s3_endpoint, key_prefix="raw/", output_format="jsonl")
    again.write_batch(RECORDS[:1])
    again.write_batch(RECORDS[1:])
    objects = _objects(s3_endpoint, "raw/")
    assert sorted(objects) == sorted(u.removeprefix("s3://lake/") for u in urls)
    assert [json.loads(line) for line in objects[key0].splitlines()] == RECORDS[:1]


def test_s3_csv_json_and_key_template(s3_endpoint: str) -> None:
    csv_dest = _s3(s3_endpoint, output_format="csv", key_template="csv/{{date}}/{{run_id}}.{{ext}}")
    csv_dest.write_batch(RECORDS)
    [(key, body)] = _objects(s3_endpoint, "csv/").items()
    assert key == "csv/2026-11-26/manual__1.csv_00000"
    rows = list(csv.DictReader(io.StringIO(body.decode())))
    assert rows[0] == {"id": "1", "country": "US", "amount": "10.5", "tags": '["a"]'}
    json_dest = _s3(s3_endpoint, key_template="json/{{batch}}.json")
    json_dest.write_batch(RECORDS)
    assert json.loads(_objects(s3_endpoint, "json/")["json/00000.json"]) == RECORDS


def test_s3_missing_bucket_is_permanent(s3_endpoint: str) -> None:
    with pytest.raises(MuxlyDeliveryError, match="NoSuchBucket") as info:
        _s3(s3_endpoint, bucket="nope").write_batch(RECORDS)
    assert not info.value.retryable and "test-secret-key" not in str(info.value)


def test_s3_airflow_connection(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(
        "AIRFLOW_CONN_MUXLY_AWS",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "AKIATEST",
                "password": "test-secret-key",
                "extra": {"region_name": "us-east-1", "endpoint_url": s3_endpoint},
            }
        ),
    )
    ctx = DestinationContext(
        id="lake",
        name="Lake",
        destination_type="s3",
        config={"bucket": "lake", "conn_id": "muxly_aws", "key_prefix": "conn/"},
    )
    dest = S3Destination(ctx, RUN)
    dest.write_batch(RECORDS)
    assert len(_objects(s3_endpoint, "conn/")) == 1


def test_s3_conn_id_only_through_the_s3_hook(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """An ``aws`` connection as the Amazon provider reads it, naming the bucket in ``service_config``: the
    destination needs nothing else; the keys never reach an error."""
    s3_client(s3_endpoint).create_bucket(Bucket="lake-by-conn")  # moto's buckets are shared by the process
    monkeypatch.setenv(
        "AIRFLOW_CONN_MUXLY_LAKE",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "AKIATEST",
                "password": "lake-secret-key-1",
                "extra": {
                    "region_name": "us-east-1",
                    "endpoint_url": s3_endpoint,
                    "service_config": {"s3": {"bucket_name": "lake-by-conn"}},
                },
            }
        ),
    )
    ctx = DestinationContext(id="lake", name="Lake", destination_type="s3", config={"conn_id": "muxly_lake"})
    dest = S3Destination(ctx, RUN)
    assert type(dest.hook).__mro__[1].__name__ == "S3Hook"
    dest.write_batch(RECORDS)
    [url] = dest.commit()
    assert url.startswith("s3://lake-by-conn/sales/2026-11-26/lake_")
    body = s3_client(s3_endpoint).get_object(
        Bucket="lake-by-conn", Key=url.removeprefix("s3://lake-by-conn/")
    )
    assert json.loads(body["Body"].read()) == RECORDS
    missing = S3Destination(
        DestinationContext(
            id="lake", name="Lake", destination_type="s3", config={"conn_id": "muxly_lake", "bucket": "nope"}
        ),
        RUN,
    )
    with pytest.raises(MuxlyDeliveryError, match="NoSuchBucket") as info:
        missing.write_batch(RECORDS)
    assert not info.value.retryable and "lake-secret-key-1" not in str(info.value)


def test_s3_endpoint_override_and_missing_provider(s3_endpoint: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """``endpoint_url`` and ``region`` of the config override the connection's; without the Amazon provider
    the error names the extra."""
    monkeypatch.setenv(
        "AIRFLOW_CONN_MUXLY_ELSEWHERE",
        json.dumps(
            {
                "conn_type": "aws",
                "login": "AKIATEST",
                "password": "x",
                "extra": {"endpoint_url": "http://127.0.0.1:9"},
            }
        ),
    )
    config = {
        "conn_id": "muxly_elsewhere",
        "bucket": "lake",
        "endpoint_url": s3_endpoint,
        "region": "us-east-1",
    }
    ctx = DestinationContext(
        id="lake", name="Lake", destination_type="s3", config={**config, "key_prefix": "ovr/"}
    )
    S3Destination(ctx, RUN).write_batch(RECORDS)
    assert len(_objects(s3_endpoint, "ovr/")) == 1
    monkeypatch.setitem(sys.modules, "airflow.providers.amazon.aws.hooks.s3", None)  # not installed
    with pytest.raises(MuxlyDeliveryError) as info:
        S3Destination(ctx, RUN).write_batch(RECORDS)
    assert not info.value.retryable
    assert "apache-airflow-providers-amazon: pip install 'airflow-provider-muxly[amazon]'" in str(info.value)


METRICS = [
    {"name": "order_amount", "type": "gauge", "value_field": "amount", "labels": {"country": "country"}},
    {"name": "orders_total", "type": "counter", "labels": {"country": "country", "env": "prod"}},
    {"name": "order_amount_dist", "type": "histogram", "value_field": "amount", "description": "Amounts"},
]


def test_prometheus_gauges_counters_histograms_pushed() -> None:
    with pushgateway() as url:
        ctx = DestinationContext(
            id="metrics",
            name="M",
            destination_type="prometheus",
            config={"pushgateway_url": url, "job": "sales", "metrics": METRICS},
        )
        dest = PrometheusDestination(ctx, RUN)
        dest.write_batch(RECORDS)
        dest.write_batch([{"country": "US", "amount": "7"}, {"country": "US", "amount": "n/a"}])
        dest.commit()
        samples = pushed_samples(url)
    group = "job=sales,muxly_destination=metrics"
    assert samples[f"order_amount{{country=US,{group}}}"] == 7.0
    assert samples[f"order_amount{{country=DE,{group}}}"] == 4.0
    assert samples[f"orders_total{{country=US,env=prod,{group}}}"] == 3.0
    assert samples[f"order_amount_dist_count{{{group}}}"] == 3.0
    assert samples[f"order_amount_dist_sum{{{group}}}"] == 21.5


def test_prometheus_unreachable_gateway_is_retryable_and_not_double_counted() -> None:
    from tests.integration.destinations.destination_servers import free_port

    ctx = DestinationContext(
        id="metrics",
        name="M",
        destination_type="prometheus",
        config={"pushgateway_url": f"http://127.0.0.1:{free_port()}", "metrics": METRICS[1:2]},
    )
    dest = PrometheusDestination(ctx, RUN)
    for _ in range(2):
        with pytest.raises(MuxlyDeliveryError) as info:
            dest.write_batch(RECORDS)
        assert info.value.retryable
    assert dest.metrics[0].metric.labels("US", "prod")._value.get() == 1.0


def test_prometheus_through_an_airflow_http_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    """``conn_id`` alone names the Pushgateway (the connection's base URL)."""
    with pushgateway() as url:
        host, port = url.split("://", 1)[1].rsplit(":", 1)
        monkeypatch.setenv(
            "AIRFLOW_CONN_MUXLY_GATEWAY", json.dumps({"conn_type": "http", "host": host, "port": int(port)})
        )
        ctx = DestinationContext(
            id="metrics",
            name="M",
            destination_type="prometheus",
            config={"conn_id": "muxly_gateway", "job": "sales", "metrics": METRICS},
        )
        dest = PrometheusDestination(ctx, RUN)
        assert dest.gateway()[0] == url
        dest.write_batch(RECORDS)
        dest.commit()
        samples = pushed_samples(url)
    assert samples["order_amount{country=DE,job=sales,muxly_destination=metrics}"] == 4.0
    both = {"pushgateway_url": url, "conn_id": "muxly_gateway", "metrics": METRICS}
    with pytest.raises(MuxlyDeliveryError, match="exactly one of pushgateway_url or conn_id"):
        PrometheusDestination(
            DestinationContext(id="m", name="M", destination_type="prometheus", config=both), RUN
        )
