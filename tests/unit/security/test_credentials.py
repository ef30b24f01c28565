"""Which writes need ``credentials:create``: introducing, changing or redirecting an inline credential."""

from __future__ import annotations

from typing import Any

import pytest

from muxly_provider.crypto import encrypt_row_secrets
from muxly_provider.security.credentials import credential_problems


def dest(kind: str, **config: Any) -> dict[str, Any]:
    return {"id": "d", "name": "d", "destination_type": kind, "config": config}


def fields(table: str, row: dict[str, Any], stored: dict[str, Any] | None = None) -> list[str]:
    return [p.field for p in credential_problems(table, row, stored)]


EMAIL = {"smtp_host": "mail", "smtp_password": "pw", "from_email": "a@b.c", "to_emails": ["x@y.z"]}


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (dest("database", connection_string="sqlite://", table="t"), ["config.connection_string"]),
        (dest("database", conn_id="reports", table="t"), []),
        (dest("email", **EMAIL), ["config.smtp_password"]),
        (dest("email", smtp_host="mail", from_email="a@b.c", to_emails=["x@y.z"]), []),
        (dest("slack", webhook_url="https://hooks/x"), ["config.webhook_url"]),
        (dest("slack", conn_id="slack"), []),
        (
            dest("s3", bucket="b", credentials={"access_key_id": "a", "secret_access_key": "s"}),
            ["config.credentials"],
        ),
        (dest("s3", bucket="b"), ["config.conn_id"]),
        (dest("s3", bucket="b", conn_id="aws"), []),
        (dest("s3", bucket="b", conn_id="aws", endpoint_url="https://evil.example"), ["config.endpoint_url"]),
        (dest("file", output_dir="s3://b/out"), ["config.output_dir"]),
        (dest("file", output_dir="s3://b/out", conn_id="aws"), []),
        (dest("file", output_dir="sftp://user:pw@host/out", conn_id="ssh"), ["config.output_dir"]),
        (dest("file", output_dir="local/out"), []),
        (dest("webhook", url="https://example.com"), []),
    ],
)
def test_new_rows(row: dict[str, Any], expected: list[str]) -> None:
    assert fields("destinations", row) == expected


def test_connectors() -> None:
    row = {"id": "c", "connector_type": "database", "connection_settings": {"connection_string": "sqlite://"}}
    assert fields("connectors", row) == ["connection_settings.connection_string"]
    stored_file = {"id": "c", "connector_type": "file", "connection_settings": {"glob": "gs://b/*.json"}}
    assert fields("connectors", stored_file) == ["connection_settings.glob"]
    assert fields("connectors", stored_file, stored_file) == []


def test_an_s3_endpoint_beside_a_connection_is_kept_not_moved() -> None:
    """An operator may not send an admin's AWS connection's signed requests to a host of its own."""
    stored = dest("s3", bucket="b", conn_id="aws", endpoint_url="http://minio:9000")
    assert fields("destinations", stored, stored) == []
    moved = dest("s3", bucket="b", conn_id="aws", endpoint_url="https://evil.example")
    assert fields("destinations", moved, stored) == ["config.endpoint_url"]
    other_connection = dest("s3", bucket="b", conn_id="aws_prod", endpoint_url="http://minio:9000")
    assert fields("destinations", other_connection, stored) == ["config.conn_id"]


def test_stored_credentials_are_kept_not_redirected() -> None:
    stored = encrypt_row_secrets("destinations", dest("email", **EMAIL))
    assert fields("destinations", dest("email", **EMAIL), stored) == []  # decrypted, equal
    assert fields("destinations", {**stored, "name": "renamed"}, stored) == []  # as stored
    assert fields("destinations", dest("email", **{**EMAIL, "smtp_host": "evil"}), stored) == [
        "config.smtp_host"
    ]
    assert fields("destinations", dest("email", **{**EMAIL, "smtp_port": 25}), stored) == ["config.smtp_port"]
    assert fields("destinations", dest("email", **{**EMAIL, "smtp_password": "new"}), stored) == [
        "config.smtp_password"
    ]
    s3 = dest("s3", bucket="b")
    assert fields("destinations", dest("s3", bucket="b", key_prefix="x/"), s3) == []
    assert fields("destinations", dest("s3", bucket="other"), s3) == ["config.conn_id"]
