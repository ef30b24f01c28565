"""Tests of :mod:`muxly_provider.crypto`: Fernet round trips, marking, redaction and secret detection."""

from __future__ import annotations

import copy
import string

import pytest
from cryptography.fernet import Fernet
from hypothesis import given, settings
from hypothesis import strategies as st

from muxly_provider import crypto, secret_urls
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
        ("connection_settings", "headers", "Accept"),
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
    assert redacted["connection_settings"]["headers"] == {"Authorization": "***", "Accept": "***"}


def test_restore_redacted_secrets() -> None:
    stored = crypto.encrypt_row_secrets("connectors", CONNECTOR)
    incoming = crypto.redact_row_secrets("connectors", CONNECTOR)
    restored, missing = crypto.restore_redacted_secrets("connectors", incoming, stored)
    assert missing == []
    assert restored == stored
    _, missing = crypto.restore_redacted_secrets("connectors", incoming, None)
    assert ("auth_settings", "params", "client_secret") in missing


URL_CONNECTOR = {
    "id": "c",
    "connector_type": "api",
    "auth_settings": {
        "auth_type": "oauth",
        "params": {
            "client_id": "cid",
            "client_secret": "cs",
            "token_url": "https://idp.example/token?key=TK1",
        },
    },
    "connection_settings": {
        "base_url": "https://user:pw123@api.example/v1/items?apikey=AK123&page=1",
        "query_params": {"sig": "SIG123", "n": 5},
        "headers": {"Cookie": "session=CK123"},
        "metrics_path": "data",
    },
}


def test_urls_with_credentials_are_encrypted_whole_and_shown_masked() -> None:
    paths = {crypto.path_text(p) for p in crypto.secret_paths("connectors", URL_CONNECTOR)}
    assert paths == {
        "auth_settings.params.client_secret",
        "auth_settings.params.token_url",
        "connection_settings.base_url",
        "connection_settings.query_params.sig",
        "connection_settings.headers.Cookie",
    }
    stored = crypto.encrypt_row_secrets("connectors", URL_CONNECTOR)
    assert crypto.is_encrypted(stored["connection_settings"]["base_url"])
    assert stored["connection_settings"]["query_params"]["n"] == 5
    shown = crypto.redact_row_secrets("connectors", stored)
    assert (
        shown["connection_settings"]["base_url"] == "https://***:***@api.example/v1/items?apikey=***&page=***"
    )
    assert shown["auth_settings"]["params"]["token_url"] == "https://idp.example/token?key=***"
    assert shown["connection_settings"]["query_params"] == {"sig": "***", "n": 5}
    assert crypto.decrypt_row_secrets("connectors", stored) == URL_CONNECTOR
    masked = crypto.secret_values("connectors", URL_CONNECTOR)
    assert {"pw123", "AK123", "TK1"} - set(masked) == {"TK1"}  # 3 characters: too short to mask alone
    assert "https://user:pw123@api.example/v1/items?apikey=AK123&page=1" in masked


def test_plain_urls_stay_plain() -> None:
    row = {"id": "c", "connection_settings": {"base_url": "https://api.example/v1/items"}}
    assert crypto.secret_paths("connectors", row) == []


def _problems(row: dict[str, object], stored: dict[str, object] | None) -> dict[str, str]:
    _, problems = crypto.keep_stored_secrets("connectors", row, stored)
    return {crypto.path_text(p.path): p.expected for p in problems}


def test_redacted_row_sent_back_keeps_every_secret() -> None:
    stored = crypto.encrypt_row_secrets("connectors", URL_CONNECTOR)
    shown = crypto.redact_row_secrets("connectors", stored)
    kept, problems = crypto.keep_stored_secrets("connectors", shown, stored)
    assert problems == []
    assert crypto.decrypt_row_secrets("connectors", kept) == URL_CONNECTOR


def test_a_changed_host_asks_for_the_secrets_again() -> None:
    stored = crypto.encrypt_row_secrets("connectors", URL_CONNECTOR)
    shown = crypto.redact_row_secrets("connectors", stored)
    moved = copy.deepcopy(shown)
    moved["connection_settings"]["base_url"] = "https://evil.example/v1/items"
    problems = _problems(moved, stored)
    assert "connection_settings.headers.Cookie" in problems
    assert "changed destination" in problems["connection_settings.headers.Cookie"]
    assert "connection_settings.base_url" in problems["auth_settings.params.client_secret"]
    # A masked URL pointing elsewhere cannot borrow the stored URL's secrets.
    moved = copy.deepcopy(shown)
    moved["connection_settings"]["base_url"] = "https://***:***@evil.example/v1/items?apikey=***&page=***"
    assert "connection_settings.base_url" in _problems(moved, stored)
    # Unchanged columns carried over (as a partial update does) count as kept secrets too.
    carried = {
        **stored,
        "connection_settings": {**URL_CONNECTOR["connection_settings"], "base_url": "https://evil.example"},
    }  # type: ignore[dict-item]
    assert "auth_settings.params.client_secret" in _problems(carried, stored)
    # New secrets sent with the new host are fine.
    fresh = copy.deepcopy(URL_CONNECTOR)
    fresh["connection_settings"]["base_url"] = "https://other.example/?apikey=NEW"  # type: ignore[index]
    assert _problems(fresh, stored) == {}


def test_ciphertext_from_a_client_is_refused() -> None:
    stored = crypto.encrypt_row_secrets("connectors", URL_CONNECTOR)
    planted = copy.deepcopy(URL_CONNECTOR)
    planted["auth_settings"]["params"]["client_secret"] = "fernet:v1:garbage"  # type: ignore[index]
    planted["connection_settings"]["base_url"] = crypto.encrypt_secret("https://x.example/?k=copied")  # type: ignore[index]
    problems = _problems(planted, stored)
    assert "does not decrypt" in problems["auth_settings.params.client_secret"]
    assert "written by Muxly only" in problems["connection_settings.base_url"]
    assert "auth_settings.params.client_secret" in _problems(planted, None)


def test_no_key_keeping_a_secret_is_a_secret_error(monkeypatch: pytest.MonkeyPatch) -> None:
    stored = crypto.encrypt_row_secrets("connectors", URL_CONNECTOR)
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", "")
    with pytest.raises(MuxlySecretError, match=r"\[core\] fernet_key"):
        crypto.keep_stored_secrets("connectors", crypto.redact_row_secrets("connectors", stored), stored)


@settings(max_examples=200, deadline=None)
@given(
    user=st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=8),
    password=st.text(alphabet=string.ascii_letters + string.digits + "-._~", min_size=1, max_size=12),
    host=st.from_regex(r"[a-z]{1,10}\.example", fullmatch=True),
    query=st.dictionaries(
        st.text(alphabet=string.ascii_lowercase, min_size=1, max_size=6),
        st.text(alphabet=string.ascii_letters + string.digits, min_size=1, max_size=10),
        max_size=3,
    ),
)
def test_masked_urls_round_trip_and_never_show_their_secrets(
    user: str, password: str, host: str, query: dict[str, str]
) -> None:
    from urllib.parse import urlencode

    url = f"https://{user}:{password}@{host}/p" + ("?" + urlencode(query) if query else "")
    shown = secret_urls.mask(url)
    assert f"{user}:{password}" not in shown
    assert all(f"={value}" not in shown for value in query.values())
    assert host in shown
    assert secret_urls.merge_masked(shown, url) == url
    assert secret_urls.merge_masked(shown.replace(host, "evil.test"), url) is None


SECRET_NAMES = [
    "pwd",
    "pass",
    "passphrase",
    "password",
    "access_key",
    "key",
    "api_key",
    "apiKey",
    "X-Api-Key",
    "subscription-key",
    "signature",
    "sig",
    "X-Amz-Signature",
    "cookie",
    "Set-Cookie",
    "jwt",
    "bearer",
    "auth",
    "authorization",
    "auth_header",
    "session",
    "sessionid",
    "session_id",
    "x-session-id",
    "sessionId",
    "code",
    "client_assertion",
    "credential",
    "credentials",
    "private",
    "private_key",
    "clientSecret",
    "otp",
]
PLAIN_NAMES = [
    "key_prefix",
    "key_template",
    "keyPrefix",
    "key_id",
    "upsert_key",
    "primary_key",
    "primaryKey",
    "left_key",
    "right_key",
    "sort_key",
    "idempotency_key",
    "public_key",
    "access_key_id",
    "client_id",
    "conn_id",
    "token_url",
    "auth_type",
    "auth_url",
    "session_timeout",
    "signature_method",
    "cookie_name",
    "metrics_path",
    "cursor_param",
    "page_param",
    "header_name",
    "param_name",
    "value_field",
    "output_field",
    "status_code",
    "country_code",
    "passenger",
    "compass",
    "bypass",
    "username",
    "location",
]


@pytest.mark.parametrize("name", SECRET_NAMES)
def test_secret_looking_names_are_secrets(name: str) -> None:
    from muxly_provider.config.base import is_secret_name

    assert is_secret_name(name)


@pytest.mark.parametrize("name", PLAIN_NAMES)
def test_identifier_names_stay_plain(name: str) -> None:
    from muxly_provider.config.base import is_secret_name

    assert not is_secret_name(name)


def _config_option_names() -> set[str]:
    import importlib
    import inspect
    import pkgutil

    from pydantic import BaseModel

    import muxly_provider.config as config_package

    names: set[str] = set()
    for module_info in pkgutil.iter_modules(config_package.__path__):
        module = importlib.import_module(f"muxly_provider.config.{module_info.name}")
        for _, model in inspect.getmembers(module, inspect.isclass):
            if issubclass(model, BaseModel) and model.__module__.startswith("muxly_provider.config"):
                for field_name, field in model.model_fields.items():
                    names.add(field.alias or field_name)
                    names.add(field_name)
    return names


def test_every_config_option_name_is_classified() -> None:
    """Every option of every config model: exactly these names are secrets; a new option must be added here.

    ``auth`` (the field behind the ``auth_settings`` column) and ``key`` (a ``settings`` row's column) are
    never keys of a JSON column, so they only keep their values out of config error messages.
    """
    from muxly_provider.config.base import is_secret_name

    names = _config_option_names()
    assert len(names) > 150
    assert {name for name in names if is_secret_name(name)} == {
        "api_key",
        "auth",
        "auth_code",
        "client_secret",
        "connection_string",
        "credentials",
        "headers",
        "key",
        "password",
        "query_params",
        "refresh_token",
        "secret_access_key",
        "secret_key",
        "service_account_json",
        "smtp_password",
        "token",
        "webhook_url",
    }
    plain = set(PLAIN_NAMES) & names
    assert {"metrics_path", "cursor_param", "header_name", "param_name", "key_prefix", "upsert_key"} <= plain


BODY_SECRETS = {
    "pwd": "Pwd-Secret-1",
    "pass": "Pass-Secret-2",
    "access_key": "AccessKey-Secret-3",
    "key": "Key-Secret-4",
    "signature": "Signature-Secret-5",
    "sig": "Sig-Secret-6",
    "cookie": "Cookie-Secret-7",
    "jwt": "Jwt-Secret-8",
    "bearer": "Bearer-Secret-9",
    "auth": "Auth-Secret-10",
    "sessionid": "SessionId-Secret-11",
    "session": "Session-Secret-12",
    "code": "Code-Secret-13",
    "client_assertion": "Assertion-Secret-14",
    "credentials": "Credentials-Secret-15",
}


def test_secret_keys_of_a_body_template_are_secrets_and_other_leaves_stay_plain() -> None:
    body = {"query": "select 1", "page": 2, "nested": [dict(BODY_SECRETS)], "x-session-id": "S-Secret-16"}
    row = {"id": "c", "connection_settings": {"base_url": "https://api.example/v1", "body_template": body}}
    stored = crypto.encrypt_row_secrets("connectors", row)
    shown = crypto.redact_row_secrets("connectors", stored)
    text = repr(shown) + repr(stored)
    assert not [secret for secret in (*BODY_SECRETS.values(), "S-Secret-16") if secret in text]
    shown_body = shown["connection_settings"]["body_template"]
    assert shown_body["query"] == "select 1"
    assert shown_body["page"] == 2
    assert shown_body["nested"][0] == dict.fromkeys(BODY_SECRETS, "***")
    assert crypto.decrypt_row_secrets("connectors", stored) == row


@pytest.mark.parametrize("url", ["https://u:Broken-Secret@[zz]/x", "http://a.b:99999999/x?y=Broken-Secret"])
def test_urls_that_do_not_parse_are_secrets_shown_as_stars(url: str) -> None:
    row = {"id": "d", "config": {"url": "https://ok.example/in", "body_template": {"link": url}}}
    assert secret_urls.is_broken_url(url)
    stored = crypto.encrypt_row_secrets("destinations", row)
    assert crypto.is_encrypted(stored["config"]["body_template"]["link"])
    shown = crypto.redact_row_secrets("destinations", stored)
    assert shown["config"] == {"url": "https://ok.example/in", "body_template": {"link": "***"}}
    kept, problems = crypto.keep_stored_secrets("destinations", shown, stored)
    assert problems == []
    assert crypto.decrypt_row_secrets("destinations", kept) == row


@pytest.mark.parametrize("value", ["see https://a.b:99999999/x", "https://ok.example/x", "plain", "a:/b"])
def test_text_and_good_urls_are_not_broken_urls(value: str) -> None:
    assert not secret_urls.is_broken_url(value)
