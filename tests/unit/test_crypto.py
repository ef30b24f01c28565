"""Tests of :mod:`muxly_provider.crypto`: Fernet round trips, marking, redaction and secret detection."""

from __future__ import annotations

import pytest
from cryptography.fernet import Fernet

from muxly_provider import crypto
from muxly_provider.exceptions import MuxlySecretError


@pytest.fixture(autouse=True)
def fernet_key(monkeypatch: pytest.MonkeyPatch) -> str:
    key = Fernet.generate_key().decode()
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", key)
    return key


def test_round_trip_and_marking() -> None:
    token = crypto.encrypt_secret("hunter2")
    assert token.startswith("fernet:v1:")
    assert "hunter2" not in token
    assert crypto.is_encrypted(token)
    assert not crypto.is_encrypted("hunter2")
    assert crypto.decrypt_secret(token) == "hunter2"


def test_not_encrypted_twice() -> None:
    token = crypto.encrypt_secret("s")
    assert crypto.encrypt_secret(token) == token


def test_plaintext_decrypts_to_itself() -> None:
    assert crypto.decrypt_secret("legacy-plain") == "legacy-plain"


def test_no_key_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", "")
    with pytest.raises(MuxlySecretError, match=r"\[core\] fernet_key"):
        crypto.encrypt_secret("s")


def test_wrong_key_is_an_error_without_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    token = crypto.encrypt_secret("topsecret")
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", Fernet.generate_key().decode())
    with pytest.raises(MuxlySecretError) as info:
        crypto.decrypt_secret(token)
    assert "topsecret" not in str(info.value)
    assert token not in str(info.value)


def test_key_rotation(monkeypatch: pytest.MonkeyPatch, fernet_key: str) -> None:
    token = crypto.encrypt_secret("s")
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", f"{Fernet.generate_key().decode()},{fernet_key}")
    assert crypto.decrypt_secret(token) == "s"


CONNECTOR = {
    "id": "c",
    "auth_settings": {
        "auth_type": "oauth",
        "params": {
            "client_id": "cid",
            "client_secret": "csecret",
            "refresh_token": "rtoken",
            "token_url": "https://idp/token",
        },
    },
    "connection_settings": {
        "base_url": "https://x",
        "headers": {"Authorization": "Bearer abc", "Accept": "json"},
    },
}


def test_connector_secret_paths() -> None:
    paths = set(crypto.secret_paths("connectors", CONNECTOR))
    assert paths == {
        ("auth_settings", "params", "client_secret"),
        ("auth_settings", "params", "refresh_token"),
        ("connection_settings", "headers", "Authorization"),
    }


@pytest.mark.parametrize(
    ("table", "row", "secret_fields"),
    [
        ("webhook_triggers", {"id": "w", "endpoint_path": "x", "secret_key": "k"}, {"secret_key"}),
        (
            "destinations",
            {
                "id": "d",
                "config": {
                    "smtp_password": "p",
                    "smtp_username": "u",
                    "webhook_url": "https://hooks",
                    "connection_string": "postgresql://u:p@h/db",
                    "credentials": {"access_key_id": "AKIA", "secret_access_key": "sk"},
                    "batch_size": 5,
                },
            },
            {
                "config.smtp_password",
                "config.webhook_url",
                "config.connection_string",
                "config.credentials.access_key_id",
                "config.credentials.secret_access_key",
            },
        ),
        (
            "connectors",
            {
                "id": "c",
                "auth_settings": {"auth_type": "basic", "params": {"username": "u", "password": "p"}},
            },
            {"auth_settings.params.password"},
        ),
        (
            "connectors",
            {"id": "c", "auth_settings": {"auth_type": "airflow_connection", "params": {"conn_id": "x"}}},
            set(),
        ),
    ],
)
def test_secret_fields(table: str, row: dict[str, object], secret_fields: set[str]) -> None:
    assert {crypto.path_text(p) for p in crypto.secret_paths(table, row)} == secret_fields


def test_row_helpers() -> None:
    encrypted = crypto.encrypt_row_secrets("connectors", CONNECTOR)
    params = encrypted["auth_settings"]["params"]
    assert crypto.is_encrypted(params["client_secret"])
    assert params["client_id"] == "cid"
    assert params["token_url"] == "https://idp/token"
    assert CONNECTOR["auth_settings"]["params"]["client_secret"] == "csecret"  # type: ignore[index]
    assert crypto.encrypt_row_secrets("connectors", encrypted) == encrypted
    assert crypto.decrypt_row_secrets("connectors", encrypted) == CONNECTOR
    redacted = crypto.redact_row_secrets("connectors", encrypted)
    assert redacted["auth_settings"]["params"]["refresh_token"] == "***"
    assert redacted["connection_settings"]["headers"] == {"Authorization": "***", "Accept": "json"}


def test_restore_redacted_secrets() -> None:
    stored = crypto.encrypt_row_secrets("connectors", CONNECTOR)
    incoming = crypto.redact_row_secrets("connectors", CONNECTOR)
    restored, missing = crypto.restore_redacted_secrets("connectors", incoming, stored)
    assert missing == []
    assert restored == stored
    _, missing = crypto.restore_redacted_secrets("connectors", incoming, None)
    assert ("auth_settings", "params", "client_secret") in missing
