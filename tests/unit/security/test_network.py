"""The server-side request guard (:mod:`muxly_provider.security.network`) wherever Muxly sends HTTP: addresses
refused and allowed, the admin setting, DNS answers mixing addresses, destinations, Pushgateway pushes, OAuth
token requests and the CLI's connector test (``docs/security.md``, "Server-side requests")."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime
from typing import Any
from urllib.error import HTTPError

import pytest

from muxly_provider.connectors.base import ConnectorContext
from muxly_provider.connectors.check import check_connector
from muxly_provider.destinations.base import DestinationContext, MuxlyDeliveryError, RunInfo
from muxly_provider.destinations.registry import get_destination_class
from muxly_provider.exceptions import MuxlyConnectorError
from muxly_provider.http.client import pushgateway_handler
from muxly_provider.http.oauth import OAuthSession
from muxly_provider.security.network import (
    BlockedAddressError,
    address_problem,
    check_url,
    guarded_session,
    resolve_allowed,
)
from tests.integration.destinations.destination_servers import http_recorder
from tests.network_helpers import fake_dns, record_connections
from tests.unit.connectors.fake_servers import LocalServer, Reply

SECRET = "internal-secret-9f3e"


@pytest.mark.parametrize(
    "address",
    [
        "169.254.169.254",
        "169.254.170.2",
        "169.254.0.1",
        "fe80::1",
        "fd00:ec2::254",
        "100.100.100.200",
        "168.63.129.16",
        "::ffff:169.254.169.254",
    ],
)
def test_link_local_and_metadata_addresses_are_refused(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is not None
    with pytest.raises(BlockedAddressError, match="refused"):
        resolve_allowed(address, 80)


@pytest.mark.parametrize(
    "address", ["127.0.0.1", "::1", "10.1.2.3", "172.16.0.9", "192.168.1.20", "fc00::5", "8.8.8.8"]
)
def test_loopback_private_and_public_addresses_stay_allowed(address: str) -> None:
    assert address_problem(ipaddress.ip_address(address)) is None
    assert resolve_allowed(address, 80) == [address]  # resolving a literal sends nothing


@pytest.mark.parametrize("host", ["metadata.google.internal", "METADATA.goog.", "instance-data"])
def test_metadata_names_are_refused_before_any_lookup(host: str, monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {host: ["127.0.0.1"]})  # even when they would resolve to an allowed address
    with pytest.raises(BlockedAddressError, match="cloud metadata host"):
        check_url(f"http://{host}/computeMetadata/v1/")
    with pytest.raises(BlockedAddressError):
        resolve_allowed(host, 80)


def test_a_name_with_one_forbidden_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    fake_dns(monkeypatch, {"mixed.attacker.test": ["127.0.0.1", "169.254.169.254"]})
    calls = record_connections(monkeypatch)
    with pytest.raises(BlockedAddressError, match=r"169\.254\.169\.254 is a cloud metadata address"):
        guarded_session().get("http://mixed.attacker.test/", timeout=2)
    assert calls == []


def test_the_admin_setting_allows_them(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__MUXLY__ALLOW_LINK_LOCAL_REQUESTS", "True")
    assert resolve_allowed("169.254.169.254", 80) == ["169.254.169.254"]
    check_url("http://metadata.google.internal/")
    monkeypatch.setenv("AIRFLOW__MUXLY__ALLOW_LINK_LOCAL_REQUESTS", "False")
    with pytest.raises(BlockedAddressError):
        check_url("http://169.254.169.254/")


def test_the_guard_connects_to_the_address_it_checked(monkeypatch: pytest.MonkeyPatch) -> None:
    """No second DNS look-up between the check and the connection (DNS rebinding)."""
    with LocalServer(lambda request: Reply(200, {"ok": True})) as server:
        port = server.url.rsplit(":", 1)[1]
        fake_dns(monkeypatch, {"api.internal.test": ["127.0.0.1"]})
        calls = record_connections(monkeypatch)
        assert guarded_session().get(f"http://api.internal.test:{port}/", timeout=5).json() == {"ok": True}
    assert [address[0] for address in calls] == ["127.0.0.1"]


RUN = RunInfo(
    dag_id="muxly__j",
    run_id="manual__1",
    job_id="j",
    connector_id="c",
    logical_date=datetime(2026, 1, 1, tzinfo=UTC),
)


def _webhook(url: str) -> Any:
    context = DestinationContext(
        id="hook", name="Hook", destination_type="webhook", config={"url": url, "retry_count": 3}
    )
    return get_destination_class("webhook")(context, RUN)


def test_webhook_destination_refuses_metadata_addresses_without_retrying(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls = record_connections(monkeypatch)
    with pytest.raises(MuxlyDeliveryError) as info:
        _webhook("http://169.254.169.254/latest/meta-data/").write_batch([{"a": 1}])
    assert info.value.retryable is False
    assert "refused: 169.254.169.254 is a cloud metadata address" in str(info.value)
    assert calls == []


def test_webhook_destination_refuses_a_redirect_to_the_metadata_address(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    with http_recorder() as server:
        server.statuses = [(307, {"Location": "http://169.254.169.254/latest/meta-data/"})]
        calls = record_connections(monkeypatch)
        with pytest.raises(MuxlyDeliveryError) as info:
            _webhook(server.url + "/in").write_batch([{"a": 1}])
    assert info.value.retryable is False
    assert [address[0] for address in calls] == ["127.0.0.1"]


def test_pushgateway_pushes_go_through_the_guard(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = record_connections(monkeypatch)
    with LocalServer(lambda request: Reply(200 if request.path.endswith("/ok") else 500, {})) as server:
        pushgateway_handler(server.url + "/ok", "PUT", 5, [("Content-Type", "text/plain")], b"m 1\n")()
        assert [(r.method, r.body) for r in server.requests] == [("PUT", b"m 1\n")]
        with pytest.raises(HTTPError) as info:
            pushgateway_handler(server.url + "/bad", "PUT", 5, [], b"")()
        assert info.value.code == 500
    with pytest.raises(BlockedAddressError):
        pushgateway_handler("http://169.254.169.254/metrics/job/x", "PUT", 5, [], b"")()
    assert {address[0] for address in calls} == {"127.0.0.1"}


@pytest.mark.parametrize(("error", "shown"), [(f"{SECRET}", ""), ("invalid_grant", " (invalid_grant)")])
def test_oauth_token_errors_quote_only_standard_codes(error: str, shown: str) -> None:
    with LocalServer(lambda request: Reply(400, {"error": error, "error_description": SECRET})) as server:
        session = OAuthSession(
            server.url + "/token", "id", "secret", refresh_token="rt", error=MuxlyConnectorError
        )
        with pytest.raises(MuxlyConnectorError) as info:
            session.reauthenticate()
    assert str(info.value).endswith(f"failed: HTTP 400{shown}")
    assert SECRET not in str(info.value)


def test_oauth_token_url_on_the_metadata_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = record_connections(monkeypatch)
    session = OAuthSession(
        "http://169.254.169.254/token", "id", "secret", refresh_token="rt", error=MuxlyConnectorError
    )
    with pytest.raises(MuxlyConnectorError, match="BlockedAddressError"):
        session.reauthenticate()
    assert calls == []


def test_cli_connector_test_answers_a_status_without_the_body() -> None:
    """``airflow muxly connectors test`` runs :func:`check_connector`."""
    with LocalServer(lambda request: Reply(503, {"message": SECRET}, headers={"X-Leak": SECRET})) as server:
        context = ConnectorContext(
            id="c1",
            name="c1",
            connector_type="api",
            auth={"auth_type": "none"},
            settings={"base_url": server.url, "retry": {"max_attempts": 1}},
        )
        result = check_connector(context)
    assert not result.ok
    assert "answered HTTP 503 Service Unavailable" in result.message
    assert SECRET not in result.message


def test_adapters_a_session_had_are_replaced_keeping_retries_and_keep_alive() -> None:
    """The HTTP provider's sessions (``airflow_connection`` auth) mount TCP keep-alive adapters."""
    import requests
    from requests_toolbelt.adapters.socket_options import TCPKeepAliveAdapter

    from muxly_provider.security.network import GuardedAdapter, guard_session

    session = requests.Session()
    keep_alive = TCPKeepAliveAdapter(idle=120, count=20, interval=30)
    session.mount("https://", keep_alive)
    session.mount("https://api.example.test/", requests.adapters.HTTPAdapter(max_retries=5))
    guard_session(session)
    assert all(isinstance(a, GuardedAdapter) for a in session.adapters.values())
    assert session.get_adapter("https://api.example.test/v1").max_retries.total == 5
    assert session.get_adapter("https://other.test/").socket_options == keep_alive.socket_options
    with pytest.raises(BlockedAddressError):
        session.get("https://169.254.169.254/latest/meta-data/")
