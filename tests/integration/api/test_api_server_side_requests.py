"""Server-side requests from the api-server: connector tests never read a remote body back, and no request
reaches a link-local or cloud metadata address (``docs/security.md``, "Server-side requests")."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import bearer, login, make_user
from fastapi.testclient import TestClient

from tests.network_helpers import fake_dns, record_connections
from tests.unit.connectors.fake_servers import LocalServer, Reply, Request

SECRET_BODY = "AKIA-TOP-SECRET-4b1d"


@pytest.fixture
def admin(api_client: TestClient) -> dict[str, str]:
    make_user("ssrf-admin", ["admin"])
    return bearer(login(api_client, "ssrf-admin")["access_token"])


@pytest.fixture
def connect_calls(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    return record_connections(monkeypatch)


@pytest.fixture
def leaky_server() -> Iterator[LocalServer]:
    """An internal service whose error answers quote what an attacker wants to read."""

    def answer(request: Request) -> Reply:
        if request.path == "/unauthorized":
            return Reply(401, {"error": {"message": f"token {SECRET_BODY} expired"}})
        if request.path == "/text":
            return Reply(
                200, raw=f"<html>{SECRET_BODY}</html>".encode(), headers={"Content-Type": "text/html"}
            )
        if request.path == "/to-metadata":
            return Reply(302, raw=b"", headers={"Location": "http://169.254.169.254/latest/meta-data/"})
        return Reply(500, {"error": {"message": SECRET_BODY, "status": SECRET_BODY}, "message": SECRET_BODY})

    with LocalServer(answer) as server:
        yield server


def _test_connector(client: TestClient, headers: dict[str, str], url: str, **settings: Any) -> dict[str, Any]:
    created = client.post(
        "/api/v1/connectors",
        json={
            "name": "probe",
            "connector_type": "api",
            "connection_settings": {"base_url": url, "retry": {"max_attempts": 1}, **settings},
        },
        headers=headers,
    )
    assert created.status_code == 201, created.text
    answer = client.post(f"/api/v1/connectors/{created.json()['id']}/test", headers=headers)
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


@pytest.mark.parametrize(
    ("path", "reason"),
    [
        ("/boom", "HTTP 500 Internal Server Error"),
        ("/unauthorized", "HTTP 401 Unauthorized"),
        ("/text", "is not JSON"),
    ],
)
def test_connector_test_answers_a_status_never_the_remote_body(
    api_client: TestClient, admin: dict[str, str], leaky_server: LocalServer, path: str, reason: str
) -> None:
    result = _test_connector(api_client, admin, leaky_server.url + path)
    assert result["ok"] is False
    assert reason in result["message"]
    assert SECRET_BODY not in result["message"]
    assert leaky_server.requests, "the request was sent"


def test_connector_test_refuses_a_name_resolving_to_the_metadata_address(
    api_client: TestClient,
    admin: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
    connect_calls: list[Any],
) -> None:
    fake_dns(monkeypatch, {"metadata.attacker.test": ["169.254.169.254"]})
    result = _test_connector(api_client, admin, "http://metadata.attacker.test/latest/meta-data/iam")
    assert result["ok"] is False
    assert "refused: 169.254.169.254 is a cloud metadata address" in result["message"]
    assert "[muxly] allow_link_local_requests" in result["message"]
    assert connect_calls == []


@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://100.100.100.200/latest/meta-data/",
        "http://[::ffff:169.254.169.254]/",
        "http://169.254.10.1/",
    ],
)
def test_connector_test_refuses_link_local_and_metadata_addresses(
    api_client: TestClient,
    admin: dict[str, str],
    connect_calls: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    url: str,
) -> None:
    fake_dns(monkeypatch, {"metadata.google.internal": ["127.0.0.1"]})  # no DNS query leaves the machine
    result = _test_connector(api_client, admin, url)
    assert result["ok"] is False
    assert "refused" in result["message"]
    assert connect_calls == []


def test_a_redirect_to_the_metadata_address_is_refused(
    api_client: TestClient, admin: dict[str, str], leaky_server: LocalServer, connect_calls: list[Any]
) -> None:
    result = _test_connector(api_client, admin, leaky_server.url + "/to-metadata")
    assert result["ok"] is False
    assert "refused: 169.254.169.254 is a cloud metadata address" in result["message"]
    assert [address[0] for address in connect_calls] == ["127.0.0.1"]  # the first hop only


def test_loopback_stays_reachable(api_client: TestClient, admin: dict[str, str]) -> None:
    with LocalServer(lambda request: Reply(200, [{"id": 1}, {"id": 2}])) as server:
        result = _test_connector(api_client, admin, server.url + "/items")
    assert result == {"ok": True, "message": result["message"]}
    assert "2 record(s)" in result["message"]


@pytest.fixture
def chatty_tcp_server() -> Iterator[int]:
    """A TCP service that greets every client with text an attacker wants to read (not a database)."""
    import socket
    import threading

    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(8)

    def serve() -> None:
        while True:
            try:
                client, _ = server.accept()
            except OSError:
                return
            client.settimeout(0.5)
            try:
                client.sendall(f"{SECRET_BODY}\r\n".encode())
                client.recv(1024)
            except OSError:
                pass
            client.close()

    threading.Thread(target=serve, daemon=True).start()
    yield server.getsockname()[1]
    server.close()


@pytest.mark.parametrize("driver", ["postgresql+psycopg2", "mysql+pymysql"])
def test_database_connector_tests_do_not_quote_what_the_server_sent(
    api_client: TestClient, admin: dict[str, str], chatty_tcp_server: int, driver: str
) -> None:
    """psycopg2 quotes the first byte of the answer, pymysql its value: the test shows a short reason."""
    url = f"{driver}://u:p@127.0.0.1:{chatty_tcp_server}/db?connect_timeout=3"
    created = api_client.post(
        "/api/v1/connectors",
        json={"name": "db", "connector_type": "database", "connection_settings": {"connection_string": url}},
        headers=admin,
    )
    assert created.status_code == 201, created.text
    answer = api_client.post(f"/api/v1/connectors/{created.json()['id']}/test", headers=admin).json()
    assert answer["ok"] is False
    assert answer["message"].endswith(
        "cannot connect: the server did not complete the handshake "
        + ("(OperationalError)" if "psycopg2" in driver else "(InternalError)")
    ), answer["message"]
    # Before: "... invalid response to SSL negotiation: A" and "Packet sequence number wrong - got 65".
    assert "negotiation: A" not in answer["message"] and "got 65" not in answer["message"]


@pytest.mark.parametrize(
    ("conn_id", "uri"),
    [
        ("prod_pg", "postgres://admin:TOPSECRETPW@db.internal:5432/prod"),
        ("prod_http", "http://svc:HTTPSECRET@api.internal"),
    ],
)
def test_an_airflow_connections_credentials_never_go_to_a_base_url_of_the_operators(
    api_client: TestClient, monkeypatch: pytest.MonkeyPatch, conn_id: str, uri: str
) -> None:
    """A connector borrowing an Airflow connection may only send its credentials to that connection's host."""
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", uri)
    make_user("scope-operator", ["operator"])
    operator = bearer(login(api_client, "scope-operator")["access_token"])
    seen: list[Request] = []

    def record(request: Request) -> Reply:
        seen.append(request)
        return Reply(200, [{"id": 1}])

    with LocalServer(record) as attacker:
        created = api_client.post(
            "/api/v1/connectors",
            headers=operator,
            json={
                "name": "borrowed",
                "connector_type": "api",
                "connection_settings": {"base_url": attacker.url + "/steal", "retry": {"max_attempts": 1}},
                "auth_settings": {"auth_type": "airflow_connection", "params": {"conn_id": conn_id}},
            },
        )
        assert created.status_code == 201, created.text
        tested = api_client.post(f"/api/v1/connectors/{created.json()['id']}/test", headers=operator)
    assert tested.status_code == 200
    assert tested.json()["ok"] is False and f"Airflow connection {conn_id!r}" in tested.json()["message"]
    assert seen == []  # not one request, so no credential, reached the operator's server
