"""Issue 10 part 4 through the real app: secrets in header values, ``query_params``, URL user info and query
strings (``base_url``, ``token_url``, a webhook ``url``) are encrypted at rest and never shown by the API, the
export or the connector test; ``***`` only keeps a secret for an unchanged host; ciphertext from a client is
refused; no Fernet key answers 503."""

from __future__ import annotations

import argparse
import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import text

from tests.integration.destinations.destination_servers import http_recorder

API = "/api/v1"
SECRETS = {
    "header value": "HeaderVal-Secret-71",
    "cookie header": "CookieVal-Secret-72",
    "query_params value": "QueryVal-Secret-73",
    "URL password": "UrlPass-Secret-74",
    "URL query": "UrlQuery-Secret-75",
    "token_url query": "TokenUrl-Secret-76",
    "client secret": "Client-Secret-77",
    "webhook url query": "HookUrl-Secret-78",
    "webhook header": "HookHeader-Secret-79",
}


def _connector(host: str) -> dict[str, Any]:
    return {
        "id": "c1",
        "name": "API",
        "connector_type": "api",
        "auth_settings": {
            "auth_type": "oauth",
            "params": {
                "client_id": "muxly",
                "client_secret": SECRETS["client secret"],
                "refresh_token": "Refresh-Secret-70",
                "token_url": f"http://{host}/token?tenant={SECRETS['token_url query']}",
            },
        },
        "connection_settings": {
            "base_url": f"http://apiuser:{SECRETS['URL password']}@{host}/v1/items?apikey={SECRETS['URL query']}",
            "headers": {"X-Auth": SECRETS["header value"], "Cookie": f"sid={SECRETS['cookie header']}"},
            "query_params": {"sig": SECRETS["query_params value"]},
        },
    }


def _destination(host: str) -> dict[str, Any]:
    return {
        "id": "d1",
        "name": "Hook",
        "destination_type": "webhook",
        "config": {
            "url": f"http://{host}/in?token={SECRETS['webhook url query']}",
            "headers": {"X-Hook": SECRETS["webhook header"]},
        },
    }


def _assert_hidden(text_seen: str, where: str) -> None:
    for name, secret in SECRETS.items():
        assert secret not in text_seen, f"the {name} shows in {where}"


def _field(response: Any) -> str:
    return str(response.json()["error"]["details"]["field"])


def test_secrets_in_any_field_never_show(
    api_client: TestClient, admin: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from muxly_provider.cli.config_command import export_config
    from muxly_provider.cli.connectors_command import test_connector
    from muxly_provider.crypto import decrypt_row_secrets
    from muxly_provider.db.engine import get_engine

    with http_recorder() as server:
        host = server.url.removeprefix("http://")
        server.statuses.extend([401] * 10)
        created = api_client.post(f"{API}/connectors", headers=admin, json=_connector(host))
        assert created.status_code == 201, created.text
        hook = api_client.post(f"{API}/destinations", headers=admin, json=_destination(host))
        assert hook.status_code == 201, hook.text
        tested = api_client.post(f"{API}/connectors/c1/test", headers=admin)
        assert tested.status_code < 500, tested.text
        with pytest.raises(SystemExit):
            test_connector(argparse.Namespace(connector_id="c1"))
    shown = api_client.get(f"{API}/connectors/c1", headers=admin).json()
    settings = shown["connection_settings"]
    assert (
        settings["base_url"] == f"http://***:***@{host}/v1/items?apikey=***"
    )  # where it points stays visible
    assert settings["headers"] == {"X-Auth": "***", "Cookie": "***"}
    assert settings["query_params"] == {"sig": "***"}
    assert shown["auth_settings"]["params"]["token_url"] == f"http://{host}/token?tenant=***"
    assert api_client.get(f"{API}/destinations/d1", headers=admin).json()["config"]["url"] == (
        f"http://{host}/in?token=***"
    )
    export_config(argparse.Namespace(include_secrets=False, output=None))
    answers = {
        "the create answers": created.text + hook.text,
        "the connector test": tested.text,
        "GET and list answers": "\n".join(
            api_client.get(f"{API}/{path}", headers=admin).text
            for path in ("connectors", "connectors/c1", "destinations", "destinations/d1")
        ),
        "the CLI (export, connectors test)": capsys.readouterr().out,
    }
    for where, answer in answers.items():
        _assert_hidden(answer, where)
    with get_engine().connect() as conn:
        stored = conn.execute(text("SELECT auth_settings, connection_settings FROM connectors")).one()
        config = conn.execute(text("SELECT config FROM destinations")).scalar_one()
    _assert_hidden(json.dumps(list(stored)) + str(config), "the stored rows")

    # The redacted row sent back as it was shown keeps every secret.
    back = {"auth_settings": shown["auth_settings"], "connection_settings": shown["connection_settings"]}
    kept = api_client.patch(f"{API}/connectors/c1", headers=admin, json=back)
    assert kept.status_code == 200, kept.text
    with get_engine().connect() as conn:
        row = dict(conn.execute(text("SELECT * FROM connectors WHERE id = 'c1'")).mappings().one())
    row = {k: json.loads(row[k]) for k in ("auth_settings", "connection_settings")}
    assert decrypt_row_secrets("connectors", row) == {
        k: _connector(host)[k] for k in ("auth_settings", "connection_settings")
    }


def test_stored_secrets_do_not_follow_a_changed_host(api_client: TestClient, admin: dict[str, str]) -> None:
    host = "127.0.0.1:9"
    assert api_client.post(f"{API}/connectors", headers=admin, json=_connector(host)).status_code == 201
    assert api_client.post(f"{API}/destinations", headers=admin, json=_destination(host)).status_code == 201
    shown = api_client.get(f"{API}/connectors/c1", headers=admin).json()

    moved = {**shown["connection_settings"], "base_url": "http://attacker.example/v1/items"}
    answer = api_client.patch(f"{API}/connectors/c1", headers=admin, json={"connection_settings": moved})
    assert answer.status_code == 422, answer.text
    assert _field(answer).startswith(("connection_settings.", "auth_settings."))
    assert "changed destination" in answer.json()["error"]["message"] + json.dumps(answer.json())

    # Only the URL changes; the stored oauth secrets would follow it: asked for again.
    fresh = {**_connector(host)["connection_settings"], "base_url": "http://attacker.example/v1/items"}
    answer = api_client.patch(f"{API}/connectors/c1", headers=admin, json={"connection_settings": fresh})
    assert answer.status_code == 422, answer.text
    assert _field(answer).startswith("auth_settings.params.")

    masked_elsewhere = {
        **shown["connection_settings"],
        "base_url": "http://***:***@attacker.example/x?apikey=***",
    }
    answer = api_client.patch(
        f"{API}/connectors/c1", headers=admin, json={"connection_settings": masked_elsewhere}
    )
    assert answer.status_code == 422, answer.text

    hook = api_client.get(f"{API}/destinations/d1", headers=admin).json()["config"]
    answer = api_client.patch(
        f"{API}/destinations/d1",
        headers=admin,
        json={"config": {**hook, "url": "http://attacker.example/in"}},
    )
    assert answer.status_code == 422, answer.text
    assert _field(answer) == "config.headers.X-Hook"

    # With every secret sent again, the move is fine.
    moved_all = _connector("attacker.example")
    answer = api_client.patch(
        f"{API}/connectors/c1",
        headers=admin,
        json={k: moved_all[k] for k in ("auth_settings", "connection_settings")},
    )
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("auth_settings.params.client_secret", "fernet:v1:garbage"),
        ("connection_settings.headers.X-Auth", "fernet:v1:gAAAAABnotatoken"),
        ("connection_settings.base_url", "fernet:v1:"),
    ],
)
def test_planted_ciphertext_is_refused(
    api_client: TestClient, admin: dict[str, str], field: str, value: str
) -> None:
    body = _connector("127.0.0.1:9")
    node: Any = body
    *parents, last = field.split(".")
    for part in parents:
        node = node[part]
    node[last] = value
    answer = api_client.post(f"{API}/connectors", headers=admin, json=body)
    assert answer.status_code == 422, answer.text
    assert _field(answer) == field
    assert "fernet:v1:" in answer.json()["error"]["message"] + json.dumps(answer.json())


def test_a_copied_ciphertext_is_refused(api_client: TestClient, admin: dict[str, str]) -> None:
    from muxly_provider.crypto import encrypt_secret

    body = _connector("127.0.0.1:9")
    body["auth_settings"]["params"]["client_secret"] = encrypt_secret("copied-from-another-row")
    answer = api_client.post(f"{API}/connectors", headers=admin, json=body)
    assert answer.status_code == 422, answer.text
    assert _field(answer) == "auth_settings.params.client_secret"


def test_no_fernet_key_is_503_naming_the_setting(
    api_client: TestClient, admin: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (
        api_client.post(f"{API}/connectors", headers=admin, json=_connector("127.0.0.1:9")).status_code == 201
    )
    monkeypatch.setenv("AIRFLOW__CORE__FERNET_KEY", "")
    body = {**_connector("127.0.0.1:9"), "id": "c2"}
    answer = api_client.post(f"{API}/connectors", headers=admin, json=body)
    assert answer.status_code == 503, answer.text
    assert "[core] fernet_key" in answer.json()["error"]["message"]
    renamed = api_client.patch(f"{API}/connectors/c1", headers=admin, json={"name": "renamed"})
    assert renamed.status_code == 503, renamed.text
    listed = api_client.get(f"{API}/connectors", headers=admin)
    assert listed.status_code == 200
    _assert_hidden(listed.text, "the list without a key")


def test_template_syntax_errors_are_refused_on_write(api_client: TestClient, admin: dict[str, str]) -> None:
    """Part 3: a template that cannot compile is a ``422`` naming its field, when the row is written."""
    assert (
        api_client.post(f"{API}/connectors", headers=admin, json=_connector("127.0.0.1:9")).status_code == 201
    )
    job = {
        "id": "j1",
        "name": "J",
        "job_type": "manual",
        "connector_id": "c1",
        "action_type": "sync",
        "action_params": {"data_spec": {"query_params": {"day": "{{ ds "}}},
    }
    answer = api_client.post(f"{API}/jobs", headers=admin, json=job)
    assert answer.status_code == 422, answer.text
    assert _field(answer) == "action_params.data_spec.query_params.day"
    hook = _destination("127.0.0.1:9")
    hook["config"]["body_template"] = {"items": "{% for r in records %}{{ r }}"}
    answer = api_client.post(f"{API}/destinations", headers=admin, json=hook)
    assert answer.status_code == 422, answer.text
    assert _field(answer) == "config.body_template.items"
    job["action_params"] = {"data_spec": {"query_params": {"day": "{{ ds }}"}}}
    assert api_client.post(f"{API}/jobs", headers=admin, json=job).status_code == 201


BODY_SECRETS = {
    "pwd": "Pwd-Secret-81",
    "pass": "Pass-Secret-82",
    "access_key": "AccessKey-Secret-83",
    "key": "Key-Secret-84",
    "signature": "Signature-Secret-85",
    "sig": "Sig-Secret-86",
    "cookie": "Cookie-Secret-87",
    "jwt": "Jwt-Secret-88",
    "bearer": "Bearer-Secret-89",
    "auth": "Auth-Secret-90",
    "sessionid": "SessionId-Secret-91",
    "session": "Session-Secret-92",
    "code": "Code-Secret-93",
    "client_assertion": "Assertion-Secret-94",
    "credentials": "Credentials-Secret-95",
    "x-session-id": "XSession-Secret-96",
    "clientSecret": "ClientSecret-Secret-97",
}


def test_secret_keys_of_body_templates_never_show_to_a_viewer(
    api_client: TestClient, role_headers: dict[str, dict[str, str]]
) -> None:
    """An operator writes secrets under secret-looking keys of a ``body_template``; a viewer sees ``***``."""
    operator, viewer = role_headers["operator"], role_headers["viewer"]
    body = {"report": "daily", "page": 1, "login": dict(BODY_SECRETS)}
    connector = {
        "id": "c2",
        "name": "Body",
        "connector_type": "api",
        "auth_settings": {"auth_type": "none", "params": {}},
        "connection_settings": {"base_url": "http://127.0.0.1:9/v1", "method": "POST", "body_template": body},
    }
    created = api_client.post(f"{API}/connectors", headers=operator, json=connector)
    assert created.status_code == 201, created.text
    hook = _destination("127.0.0.1:9")
    hook["config"]["body_template"] = {"records": "{{ records }}", **BODY_SECRETS}
    assert api_client.post(f"{API}/destinations", headers=operator, json=hook).status_code == 201
    seen = "\n".join(
        api_client.get(f"{API}/{path}", headers=viewer).text
        for path in ("connectors", "connectors/c2", "destinations", "destinations/d1")
    )
    leaked = [name for name, secret in BODY_SECRETS.items() if secret in seen + created.text]
    assert leaked == []
    shown = api_client.get(f"{API}/connectors/c2", headers=viewer).json()["connection_settings"][
        "body_template"
    ]
    assert shown == {"report": "daily", "page": 1, "login": dict.fromkeys(BODY_SECRETS, "***")}


@pytest.mark.parametrize(
    ("table", "row_field", "url"),
    [
        ("connectors", "connection_settings.base_url", "https://u:Broken-Secret-98@[zz]/x"),
        ("destinations", "config.url", "http://a.b:99999999/x?y=Broken-Secret-99"),
    ],
)
def test_url_options_that_do_not_parse_are_refused(
    api_client: TestClient, admin: dict[str, str], table: str, row_field: str, url: str
) -> None:
    row = _connector("127.0.0.1:9") if table == "connectors" else _destination("127.0.0.1:9")
    column, option = row_field.split(".")
    row[column][option] = url
    answer = api_client.post(f"{API}/{table}", headers=admin, json=row)
    assert answer.status_code == 422, answer.text
    assert _field(answer) == row_field
    assert "Broken-Secret" not in answer.text
