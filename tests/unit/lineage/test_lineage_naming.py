"""Dataset names of each connector and destination type follow OpenLineage's naming spec and carry no secret."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from muxly_provider.connectors.base import ConnectorContext
from muxly_provider.destinations.base import DestinationContext
from muxly_provider.lineage.datasets import connector_sources, destination_dataset
from muxly_provider.lineage.naming import ConnectionInfo, DatasetName, redacted, url_dataset

CONNECTIONS = {
    "pg": ConnectionInfo("postgres", "db.internal", 6432, "shop"),
    "maria": ConnectionInfo("mysql", "maria.internal", None, "crm"),
    "http": ConnectionInfo("http", "api.example.com", 8080, "https"),
    "smtp": ConnectionInfo("smtp", "mail.example.com", 465, ""),
}


def _connection(conn_id: str) -> ConnectionInfo | None:
    return CONNECTIONS.get(conn_id)


def _sources(kind: str, settings: dict[str, Any], spec: dict[str, Any] | None = None, **auth: Any) -> Any:
    context = ConnectorContext(id="c1", name="c1", connector_type=kind, auth=auth, settings=settings)
    return connector_sources(context, spec or {}, _connection)


def _dest(kind: str, config: dict[str, Any]) -> DatasetName:
    return destination_dataset(
        DestinationContext(id="d1", name="d1", destination_type=kind, config=config), _connection
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://u:p@api.example.com/v1/sales?key=K#frag", ("https://api.example.com", "/v1/sales")),
        ("https://API.example.com:443/x", ("https://api.example.com", "/x")),
        ("http://127.0.0.1:8080", ("http://127.0.0.1:8080", "/")),
        ("http://[::1]:9000/a", ("http://[::1]:9000", "/a")),
        ("not a url", None),
        ("http://host:99999/x", None),
    ],
)
def test_urls_lose_credentials_query_and_default_port(url: str, expected: tuple[str, str] | None) -> None:
    found = url_dataset(url)
    assert (found.namespace, found.name) == expected if found else expected is None


def test_api_connector_fills_variables_and_path_params_and_uses_an_airflow_connection() -> None:
    sources = _sources(
        "api",
        {"base_url": "https://api.example.com/{shop}/orders/${DATE}?token=T", "path_params": {"shop": "eu"}},
        {"variables": {"DATE": "2026-12-01"}, "path_params": {"shop": "us west"}},
    )
    assert sources.datasets == (DatasetName("https://api.example.com", "/us%20west/orders/2026-12-01"),)
    via_conn = _sources(
        "api", {"base_url": "/v2/items"}, auth_type="airflow_connection", params={"conn_id": "http"}
    )
    assert via_conn.datasets == (DatasetName("https://api.example.com:8080", "/v2/items"),)
    # An unknown connection names nothing of its own: the Muxly fallback.
    missing = _sources("api", {"base_url": "/v2"}, auth_type="airflow_connection", params={"conn_id": "x"})
    assert missing.datasets == (DatasetName("muxly", "connectors/c1"),)


def test_database_connector_names_the_tables_its_query_reads() -> None:
    pytest.importorskip("openlineage_sql")
    sources = _sources(
        "database",
        {"conn_id": "pg"},
        {
            "query": "SELECT o.id, o.amount AS total, c.name FROM sales.orders o JOIN customers c ON c.id = o.cid"
        },
    )
    orders = DatasetName("postgres://db.internal:6432", "shop.sales.orders")
    customers = DatasetName("postgres://db.internal:6432", "shop.public.customers")
    assert sources.datasets == (customers, orders)
    assert sources.query and "JOIN customers" in sources.query
    assert sources.origins("total") == ((orders, "amount"),)
    assert sources.origins("name") == ((customers, "name"),)
    mysql = _sources("database", {"conn_id": "maria"}, {"query": "SELECT * FROM orders WHERE d = %s"})
    assert mysql.datasets == (DatasetName("mysql://maria.internal:3306", "crm.orders"),)
    assert mysql.origins("anything") == ((mysql.datasets[0], "anything"),)
    url = _sources(
        "database",
        {"connection_string": "postgresql+psycopg2://user:secret@10.0.0.5/warehouse"},
        {"query": "SELECT * FROM facts"},
    )
    assert url.datasets == (DatasetName("postgres://10.0.0.5:5432", "warehouse.public.facts"),)


def test_file_bigquery_ga4_hubspot_webhook_and_plugin_connectors(tmp_path: Path, files_root: Path) -> None:
    assert _sources("file", {"path": "in/sales.csv"}).datasets == (
        DatasetName("file", str(files_root / "in" / "sales.csv")),
    )
    assert _sources("file", {"glob": "s3://bucket/raw/2026/*.jsonl"}).datasets == (
        DatasetName("s3://bucket", "raw/2026"),
    )
    # data_spec overrides the setting, as the connector reads it.
    assert _sources("file", {"path": "a.csv"}, {"glob": "in/**/*.csv"}).datasets == (
        DatasetName("file", str(files_root / "in")),
    )
    pytest.importorskip("openlineage_sql")
    bigquery = _sources(
        "bigquery",
        {"project_id": "acme", "dataset_id": "web"},
        {"query": "SELECT * FROM `other.raw.events` e JOIN sessions s USING (sid)"},
    )
    assert bigquery.datasets == (
        DatasetName("bigquery", "acme.web.sessions"),
        DatasetName("bigquery", "other.raw.events"),
    )
    assert _sources("ga4", {"property_id": "123456"}).datasets == (DatasetName("ga4", "properties/123456"),)
    assert _sources("hubspot", {}, {"objectType": "deals"}).datasets == (
        DatasetName("hubspot", "crm/objects/deals"),
    )
    assert _sources("hubspot", {}).datasets == (DatasetName("hubspot", "crm/objects/contacts"),)
    assert _sources("webhook", {}).datasets == (DatasetName("muxly", "connectors/c1"),)
    assert _sources("plugin:nope", {}).datasets == (DatasetName("muxly", "connectors/c1"),)


def test_destination_datasets(files_root: Path) -> None:
    assert _dest("file", {"output_dir": "out/big"}) == DatasetName("file", str(files_root / "out" / "big"))
    assert _dest("file", {"output_dir": "gs://lake/exports/", "conn_id": "g"}) == DatasetName(
        "gs://lake", "exports"
    )
    assert _dest("database", {"conn_id": "pg", "table": "orders", "schema": "mart"}) == DatasetName(
        "postgres://db.internal:6432", "shop.mart.orders"
    )
    assert _dest("database", {"conn_id": "maria", "table": "orders"}) == DatasetName(
        "mysql://maria.internal:3306", "crm.orders"
    )
    db = files_root / "t.db"
    assert _dest("database", {"connection_string": f"sqlite:///{db}", "table": "t"}) == DatasetName(
        f"sqlite://{db}", "t"
    )
    assert _dest("webhook", {"url": "https://hooks.example.com/in?sig=S"}) == DatasetName(
        "https://hooks.example.com", "/in"
    )
    assert _dest("email", {"smtp_host": "mx.example.com", "to_emails": ["b@x.io", "a@x.io"]}) == DatasetName(
        "smtp://mx.example.com:587", "a@x.io,b@x.io"
    )
    assert _dest("email", {"conn_id": "smtp", "to_emails": ["a@x.io"]}) == DatasetName(
        "smtp://mail.example.com:465", "a@x.io"
    )
    assert _dest("slack", {"webhook_url": "https://hooks.slack.com/services/T/B/X", "channel": "#ops"}) == (
        DatasetName("slack", "#ops")
    )
    assert _dest("slack", {"webhook_url": "https://hooks.slack.com/services/T/B/X"}) == DatasetName(
        "slack", "destinations/d1"
    )
    assert _dest("s3", {"bucket": "b", "key_prefix": "/exports/daily/"}) == DatasetName(
        "s3://b", "exports/daily"
    )
    assert _dest("s3", {"bucket": "b"}) == DatasetName("s3://b", "/")
    assert _dest("prometheus", {"pushgateway_url": "http://pg:9091", "job": "sales", "metrics": []}) == (
        DatasetName("http://pg:9091", "metrics/job/sales")
    )
    assert _dest("carrier-pigeon", {}) == DatasetName("muxly", "destinations/d1")


def test_secret_values_never_stay_in_a_name() -> None:
    names = [DatasetName("https://api.example.com", "/v1/tok-123456/items"), DatasetName("file", "/a")]
    assert redacted(names, ["tok-123456", "abc"]) == [
        DatasetName("https://api.example.com", "/v1/***/items"),
        DatasetName("file", "/a"),
    ]
