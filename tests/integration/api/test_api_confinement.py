"""Issue 10 parts 1-2 through the real app: an operator cannot reach outside ``files_root``, cannot store inline
credentials (``403``), and nobody can point a connector or destination at Muxly's or Airflow's database
(``422`` naming the field). The CLI import applies the same check (credentials trusted, confinement not)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from conftest import bearer, login, make_user
from fastapi.testclient import TestClient
from sqlalchemy import make_url

from tests.db_helpers import insert_row

API = "/api/v1"
pytestmark = pytest.mark.usefixtures("files_root")


@pytest.fixture
def client(api_db: str) -> Iterator[TestClient]:
    """The app on a migrated Muxly database, SQLite and PostgreSQL."""
    from muxly_provider.api.app import create_app
    from muxly_provider.auth.throttle import reset_throttle

    reset_throttle()
    with TestClient(create_app()) as test_client:
        yield test_client


@pytest.fixture
def heads(client: TestClient) -> dict[str, dict[str, str]]:
    """Authorization headers of an admin and an operator."""
    make_user("boss", ["admin"])
    make_user("op", ["operator"])
    return {name: bearer(login(client, name)["access_token"]) for name in ("boss", "op")}


def _connector(id_: str, kind: str, settings: dict[str, Any]) -> dict[str, Any]:
    return {"id": id_, "name": id_, "connector_type": kind, "connection_settings": settings}


def _destination(id_: str, kind: str, config: dict[str, Any]) -> dict[str, Any]:
    return {"id": id_, "name": id_, "destination_type": kind, "config": config}


def _refused(response: Any, status: int, field: str) -> None:
    assert response.status_code == status, response.text
    assert response.json()["error"]["details"]["field"] == field, response.text


INLINE = [
    (
        "connectors",
        _connector("c1", "database", {"connection_string": "sqlite://"}),
        "connection_settings.connection_string",
    ),
    (
        "destinations",
        _destination("d1", "database", {"connection_string": "sqlite://", "table": "t"}),
        "config.connection_string",
    ),
    (
        "destinations",
        _destination(
            "d2",
            "email",
            {"smtp_host": "127.0.0.1", "smtp_password": "pw", "from_email": "a@b.c", "to_emails": ["x@y.z"]},
        ),
        "config.smtp_password",
    ),
    (
        "destinations",
        _destination(
            "d3", "s3", {"bucket": "b", "credentials": {"access_key_id": "AK", "secret_access_key": "SK"}}
        ),
        "config.credentials",
    ),
    ("destinations", _destination("d4", "s3", {"bucket": "b"}), "config.conn_id"),
    (
        "destinations",
        _destination("d5", "slack", {"webhook_url": "https://hooks.example/T/B/x"}),
        "config.webhook_url",
    ),
    ("connectors", _connector("c2", "file", {"path": "s3://bucket/data.jsonl"}), "connection_settings.path"),
    ("destinations", _destination("d6", "file", {"output_dir": "s3://bucket/out"}), "config.output_dir"),
]


@pytest.mark.parametrize(("table", "body", "field"), INLINE, ids=[i[2] + f"-{i[1]['id']}" for i in INLINE])
def test_inline_credentials_are_admin_only(
    client: TestClient, heads: dict[str, dict[str, str]], table: str, body: dict[str, Any], field: str
) -> None:
    response = client.post(f"{API}/{table}", json=body, headers=heads["op"])
    _refused(response, 403, field)
    assert response.json()["error"]["details"]["resource"] == "credentials"
    assert client.get(f"{API}/{table}/{body['id']}", headers=heads["op"]).status_code == 404
    assert client.post(f"{API}/{table}", json=body, headers=heads["boss"]).status_code == 201


def test_operator_cannot_start_the_escalation(
    client: TestClient, heads: dict[str, dict[str, str]], api_db: str
) -> None:
    """The finding: a sqlite:// source and a destination writing user_roles of Muxly's own database."""
    source = _connector("src", "database", {"connection_string": "sqlite://"})
    _refused(
        client.post(f"{API}/connectors", json=source, headers=heads["op"]),
        403,
        "connection_settings.connection_string",
    )
    sink = _destination("sink", "database", {"connection_string": api_db, "table": "user_roles"})
    _refused(
        client.post(f"{API}/destinations", json=sink, headers=heads["op"]), 403, "config.connection_string"
    )
    # An admin may use inline credentials, but not on Muxly's database either.
    _refused(
        client.post(f"{API}/destinations", json=sink, headers=heads["boss"]), 422, "config.connection_string"
    )
    me = client.get(f"{API}/auth/me", headers=heads["op"])
    assert me.status_code == 200 and "admin" not in me.json()["roles"], me.text


def _aliases(api_db: str, airflow_home: Path, tmp_path: Path) -> list[str]:
    """Other spellings of Muxly's database URL (and Airflow's own)."""
    url = make_url(api_db)
    if url.get_backend_name() == "sqlite":
        path = Path(str(url.database))
        link = tmp_path / "alias.db"
        link.symlink_to(path)
        relative = os.path.relpath(path, os.getcwd())
        return [
            f"sqlite:///{link}",
            f"sqlite+pysqlite:///{relative}",
            f"sqlite:///file:{path}?uri=true&mode=rw",
            f"sqlite:///{path}-wal",
            f"sqlite:///{airflow_home / 'airflow.db'}",
        ]
    return [
        url.set(host="localhost").render_as_string(hide_password=False),
        url.set(drivername="postgresql", port=None).render_as_string(hide_password=False),
        url.set(host=None, query={"host": "127.0.0.1"}).render_as_string(hide_password=False),
    ]


def test_no_one_reaches_muxly_or_airflow_databases(
    client: TestClient, heads: dict[str, dict[str, str]], api_db: str, airflow_home: Path, tmp_path: Path
) -> None:
    for index, url in enumerate(_aliases(api_db, airflow_home, tmp_path)):
        body = _destination(f"alias{index}", "database", {"connection_string": url, "table": "user_roles"})
        _refused(
            client.post(f"{API}/destinations", json=body, headers=heads["boss"]),
            422,
            "config.connection_string",
        )
        source = _connector(f"alias{index}", "database", {"connection_string": url})
        _refused(
            client.post(f"{API}/connectors", json=source, headers=heads["boss"]),
            422,
            "connection_settings.connection_string",
        )
    other = _destination(
        "other", "database", {"connection_string": f"sqlite:///{tmp_path / 'other.db'}", "table": "t"}
    )
    assert client.post(f"{API}/destinations", json=other, headers=heads["boss"]).status_code == 201


def test_paths_stay_under_files_root(
    client: TestClient,
    heads: dict[str, dict[str, str]],
    files_root: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret.cfg").write_text("fernet_key = x\n")
    (files_root / "escape").symlink_to(outside)
    (files_root / "data").mkdir()
    (files_root / "data" / "in.jsonl").write_text('{"a": 1}\n')
    op = heads["op"]
    refused = [
        (
            "connectors",
            _connector("p1", "file", {"path": "../../home/airflow/airflow.cfg"}),
            "connection_settings.path",
        ),
        ("connectors", _connector("p2", "file", {"glob": "/root/.*"}), "connection_settings.glob"),
        ("connectors", _connector("p3", "file", {"path": "escape/secret.cfg"}), "connection_settings.path"),
        ("connectors", _connector("p4", "file", {"glob": "data/*/../../../*"}), "connection_settings.glob"),
        (
            "connectors",
            _connector("p5", "file", {"path": f"file://{outside}/secret.cfg"}),
            "connection_settings.path",
        ),
        (
            "connectors",
            _connector("p6", "file", {"path": f"zip::file://{files_root}/a.zip"}),
            "connection_settings.path",
        ),
        ("destinations", _destination("q1", "file", {"file_prefix": "../escaped/x"}), "config.file_prefix"),
        ("destinations", _destination("q2", "file", {"output_dir": str(outside)}), "config.output_dir"),
        ("destinations", _destination("q3", "file", {"output_dir": "escape/deeper"}), "config.output_dir"),
    ]
    for table, body, field in refused:
        response = client.post(f"{API}/{table}", json=body, headers=op)
        _refused(response, 422, field)
        assert field in response.json()["error"]["message"]
    accepted = [
        ("connectors", _connector("ok1", "file", {"path": "data/../data/in.jsonl"})),
        ("connectors", _connector("ok2", "file", {"glob": f"{files_root}/data/*.jsonl"})),
        ("destinations", _destination("ok3", "file", {"output_dir": "out/../out", "file_prefix": "sales"})),
    ]
    for table, body in accepted:
        assert client.post(f"{API}/{table}", json=body, headers=op).status_code == 201
    # A job's data_spec override is a path too.
    job = {
        "id": "j1",
        "name": "j1",
        "job_type": "manual",
        "connector_id": "ok1",
        "action_type": "sync",
        "action_params": {"data_spec": {"path": "../../etc/passwd"}},
    }
    _refused(client.post(f"{API}/jobs", json=job, headers=op), 422, "action_params.data_spec.path")


def test_connector_test_route_does_not_list_outside(
    client: TestClient, heads: dict[str, dict[str, str]], api_db: str
) -> None:
    """A row stored before the fix (or written to the table directly) is refused when tested."""
    from muxly_provider.db.engine import get_engine

    insert_row(
        get_engine(),
        "connectors",
        id="home",
        name="home",
        connector_type="file",
        auth_settings={"auth_type": "none"},
        connection_settings={"glob": "/root/.*"},
    )
    response = client.post(f"{API}/connectors/home/test", headers=heads["op"])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["ok"] is False and "glob" in body["message"] and "files_root" in body["message"], body
    assert ".bashrc" not in body["message"] and "file(s) match" not in body["message"]


def test_operator_keeps_but_cannot_redirect_a_stored_credential(
    client: TestClient, heads: dict[str, dict[str, str]]
) -> None:
    config = {
        "smtp_host": "127.0.0.1",
        "smtp_password": "pw-42",
        "from_email": "a@b.c",
        "to_emails": ["x@y.z"],
    }
    assert (
        client.post(
            f"{API}/destinations", json=_destination("mail", "email", config), headers=heads["boss"]
        ).status_code
        == 201
    )
    op = heads["op"]
    renamed = client.patch(f"{API}/destinations/mail", json={"name": "Mail"}, headers=op)
    assert renamed.status_code == 200, renamed.text
    kept = client.patch(
        f"{API}/destinations/mail",
        json={"config": {**config, "smtp_password": "***", "batch_size": 10}},
        headers=op,
    )
    assert kept.status_code == 200, kept.text
    moved = {**config, "smtp_password": "***", "smtp_host": "attacker.example"}
    _refused(
        client.patch(f"{API}/destinations/mail", json={"config": moved}, headers=op), 403, "config.smtp_host"
    )
    changed = {**config, "smtp_password": "another"}
    _refused(
        client.patch(f"{API}/destinations/mail", json={"config": changed}, headers=op),
        403,
        "config.smtp_password",
    )
    # Even an admin must send the password again for a new host: '***' keeps a secret only while the host it
    # is sent to is unchanged (issue 10 part 4).
    again = client.patch(f"{API}/destinations/mail", json={"config": moved}, headers=heads["boss"])
    _refused(again, 422, "config.smtp_password")
    resent = {**moved, "smtp_password": "pw-42"}
    assert (
        client.patch(f"{API}/destinations/mail", json={"config": resent}, headers=heads["boss"]).status_code
        == 200
    )


def test_credentials_permission_is_a_resource(client: TestClient, heads: dict[str, dict[str, str]]) -> None:
    body = {"name": "manage:credentials", "resource": "credentials", "action": "create"}
    response = client.post(f"{API}/permissions", json=body, headers=heads["boss"])
    assert response.status_code in (201, 409), response.text


def test_import_confines_paths_and_databases_but_trusts_credentials(api_db: str, tmp_path: Path) -> None:
    from muxly_provider.config_io import import_config
    from muxly_provider.db.engine import get_engine
    from muxly_provider.exceptions import MuxlyConfigErrors

    engine = get_engine()
    good = {
        "destinations": [
            _destination(
                "imp", "database", {"connection_string": f"sqlite:///{tmp_path / 'o.db'}", "table": "t"}
            )
        ]
    }
    assert import_config(engine, good).applied
    bad = {
        "connectors": [_connector("impc", "file", {"path": "/etc/passwd"})],
        "destinations": [
            _destination("impd", "database", {"connection_string": api_db, "table": "user_roles"})
        ],
    }
    with pytest.raises(MuxlyConfigErrors) as caught:
        import_config(engine, bad)
    fields = {(e.table, e.row_id, e.field) for e in caught.value.errors}
    assert ("connectors", "impc", "connection_settings.path") in fields
    assert ("destinations", "impd", "config.connection_string") in fields


def test_allowed_conn_ids_confine_every_writer(
    client: TestClient, heads: dict[str, dict[str, str]], api_db: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Any conn_id by default; with ``[muxly] allowed_conn_ids`` only matching connections, for an admin and
    an operator alike (``422`` naming the field), through the API and the CLI import."""
    from muxly_provider.config_io import import_config
    from muxly_provider.db.engine import get_engine
    from muxly_provider.exceptions import MuxlyConfigErrors

    slack = _destination("chat", "slack", {"conn_id": "ops_slack"})
    assert client.post(f"{API}/destinations", json=slack, headers=heads["op"]).status_code == 201
    monkeypatch.setenv("AIRFLOW__MUXLY__ALLOWED_CONN_IDS", "muxly_*, reporting")
    api = {
        **_connector("api1", "api", {"base_url": "https://api.example.com"}),
        "auth_settings": {"auth_type": "airflow_connection", "params": {"conn_id": "prod_api"}},
    }
    refused = [
        ("destinations", _destination("chat2", "slack", {"conn_id": "ops_slack"}), "config.conn_id"),
        (
            "connectors",
            _connector("db1", "database", {"conn_id": "warehouse"}),
            "connection_settings.conn_id",
        ),
        ("connectors", api, "auth_settings.params.conn_id"),
    ]
    for who in ("op", "boss"):
        for table, body, field in refused:
            response = client.post(f"{API}/{table}", json=body, headers=heads[who])
            _refused(response, 422, field)
            assert "allowed_conn_ids (muxly_*, reporting)" in response.text
    # A stored row naming a connection the list no longer allows cannot be changed without fixing it.
    renamed = client.patch(f"{API}/destinations/chat", json={"name": "Chat"}, headers=heads["op"])
    _refused(renamed, 422, "config.conn_id")
    allowed = _destination("chat3", "slack", {"conn_id": "muxly_slack"})
    assert client.post(f"{API}/destinations", json=allowed, headers=heads["op"]).status_code == 201
    db = _destination("db2", "database", {"conn_id": "reporting", "table": "t"})
    assert client.post(f"{API}/destinations", json=db, headers=heads["op"]).status_code == 201
    with pytest.raises(MuxlyConfigErrors) as caught:
        import_config(
            get_engine(),
            {
                "destinations": [
                    _destination("imp2", "email", {"conn_id": "smtp_default", "to_emails": ["a@b.c"]})
                ]
            },
        )
    assert [(e.row_id, e.field) for e in caught.value.errors] == [("imp2", "config.conn_id")]
