"""Muxly's one HTTP layer against loopback servers: Retry-After, backoff, bodies cut short, the guard on
redirects, and OAuth through authlib (client credentials, authorization code, refresh with rotation, expiry and
one re-authentication on 401)."""

from __future__ import annotations

import email.utils
import re
import time
from typing import Any

import pytest

from muxly_provider.exceptions import MuxlyConnectorError
from muxly_provider.http.client import HttpClient
from muxly_provider.http.oauth import OAuthSession
from muxly_provider.http.retry import HttpRetryPolicy, RetryGaveUp
from muxly_provider.security.network import BlockedAddressError
from tests.network_helpers import record_connections
from tests.unit.connectors.fake_servers import LocalServer, Reply, Request, TokenEndpoint


def _client(waits: list[float], **policy: Any) -> HttpClient:
    return HttpClient(retry=HttpRetryPolicy(**policy), sleep=waits.append, describe="test")


def _answers(*replies: Reply) -> Any:
    pending = list(replies)

    def handler(request: Request) -> Reply:
        return pending.pop(0) if len(pending) > 1 else pending[0]

    return handler


def test_retry_after_in_seconds_and_as_an_http_date_replaces_the_backoff() -> None:
    waits: list[float] = []
    later = email.utils.formatdate(time.time() + 20, usegmt=True)
    handler = _answers(
        Reply(429, {}, headers={"Retry-After": "3"}),
        Reply(503, {}, headers={"Retry-After": later}),
        Reply(502, {}, headers={"Retry-After": "9"}),  # not a Retry-After status: the backoff
        Reply(body={"ok": True}),
    )
    with LocalServer(handler) as server:
        response = _client(waits, max_attempts=4, initial_backoff_ms=100).send("GET", server.url)
    assert response.json() == {"ok": True} and len(server.requests) == 4
    assert waits[0] == 3.0 and 15 < waits[1] <= 20 and waits[2] == 0.4


def test_a_long_retry_after_gives_up_at_once_or_is_capped() -> None:
    waits: list[float] = []
    busy = Reply(503, {}, headers={"Retry-After": "3600"})
    with LocalServer(_answers(busy, busy, Reply(body=[]))) as server:
        with pytest.raises(RetryGaveUp) as info:
            _client(waits).send("GET", server.url)
        assert (info.value.reason, info.value.attempts, waits) == ("retry_after", 1, [])
        capped = _client(waits, max_retry_after_seconds=60, cap_retry_after=True)
        assert capped.send("GET", server.url).json() == []
    assert waits == [60.0]


def test_exponential_backoff_is_capped_and_attempts_are_counted() -> None:
    waits: list[float] = []
    with LocalServer(_answers(Reply(500, {}))) as server:
        client = _client(
            waits, max_attempts=5, initial_backoff_ms=100, backoff_multiplier=3, max_backoff_ms=1000
        )
        with pytest.raises(RetryGaveUp) as info:
            client.send("POST", server.url, json={"a": 1})  # POST is retried too (webhooks are POSTs)
    assert (info.value.reason, info.value.attempts) == ("exhausted", 5)
    assert waits == pytest.approx([0.1, 0.3, 0.9, 1.0])
    assert [r.method for r in server.requests] == ["POST"] * 5


def test_a_body_cut_short_is_retried_and_final_statuses_are_not() -> None:
    waits: list[float] = []
    with LocalServer(_answers(Reply(drop=True), Reply(body={"n": 1}))) as server:
        assert _client(waits, initial_backoff_ms=10).send("GET", server.url).json() == {"n": 1}
    assert waits == [0.01]
    with LocalServer(_answers(Reply(503, {}), Reply(404, {}))) as server, pytest.raises(RetryGaveUp) as info:
        _client(waits).send("GET", server.url)
    assert (info.value.reason, info.value.attempts) == ("final", 2)
    assert "answered HTTP 404 Not Found" in info.value.failure.problem


def test_destination_wording_never_names_the_url() -> None:
    client = HttpClient(retry=HttpRetryPolicy(max_attempts=1), name_url=False)
    with LocalServer(_answers(Reply(502, {}))) as server, pytest.raises(RetryGaveUp) as info:
        client.send("POST", server.url + "/hook/secret-path")
    assert info.value.failure.problem == "HTTP 502 Bad Gateway"


def test_a_redirect_to_the_metadata_address_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = record_connections(monkeypatch)
    redirect = Reply(302, {}, headers={"Location": "http://169.254.169.254/latest/meta-data/"})
    with LocalServer(_answers(redirect)) as server, pytest.raises(BlockedAddressError):
        _client([]).send("GET", server.url)
    assert {address[0] for address in calls} == {"127.0.0.1"}


def _api(tokens: TokenEndpoint, expire_once: bool = False) -> Any:
    state = {"expire": expire_once}

    def handler(request: Request) -> Reply:
        if request.path == "/token":
            return tokens(request)
        if not tokens.bearer_ok(request):
            return Reply(401, {"error": "invalid_token"})
        if state["expire"]:
            state["expire"] = False
            tokens.issued.append("revoked")  # the API now considers the current token expired
            return Reply(401, {"error": "invalid_token"})
        return Reply(body={"token": request.headers["Authorization"]})

    return handler


def _oauth(url: str, **kwargs: Any) -> HttpClient:
    session = OAuthSession(
        url + "/token", "cid", kwargs.pop("secret", "cs"), error=MuxlyConnectorError, timeout=5, **kwargs
    )
    return HttpClient(session, retry=HttpRetryPolicy(max_attempts=1))


def test_client_credentials_token_is_reused_until_it_nearly_expires() -> None:
    tokens = TokenEndpoint(client_secret="cs")
    with LocalServer(_api(tokens)) as server:
        client = _oauth(server.url, grant_type="client_credentials", scope="read")
        for _ in range(3):
            assert client.send("GET", server.url + "/data").json() == {"token": "Bearer at-1"}
        assert tokens.grants == ["client_credentials"]
        assert server.requests[0].form()["scope"] == "read"
        tokens.expires_in = 30  # below the 60 s leeway: every request renews it first
        short = _oauth(server.url, grant_type="client_credentials")
        short.send("GET", server.url + "/data")
        short.send("GET", server.url + "/data")
    assert tokens.grants == ["client_credentials"] * 3


def test_refresh_token_rotation_and_one_reauthentication_on_401() -> None:
    tokens = TokenEndpoint(refresh_token="rt-0", rotate=True)
    with LocalServer(_api(tokens, expire_once=True)) as server:
        client = _oauth(server.url, refresh_token="rt-0")
        assert client.send("GET", server.url + "/data").json() == {"token": "Bearer at-3"}
        refreshes = [r.form()["refresh_token"] for r in server.requests if r.path == "/token"]
    assert refreshes == ["rt-0", "rt-2"]  # the second refresh used the token the first one rotated in


def test_an_authorization_code_is_exchanged_once_then_refreshed() -> None:
    tokens = TokenEndpoint(refresh_token="rt-from-code", auth_code="code-1")
    with LocalServer(_api(tokens, expire_once=True)) as server:
        client = _oauth(server.url, auth_code="code-1")
        assert client.send("GET", server.url + "/data").json() == {"token": "Bearer at-3"}
    assert tokens.grants == ["authorization_code", "refresh_token"]


def test_a_401_after_reauthentication_is_final_and_refused_grants_are_clear() -> None:
    tokens = TokenEndpoint(client_secret="cs")
    with LocalServer(lambda r: tokens(r) if r.path == "/token" else Reply(401, {})) as server:
        with pytest.raises(RetryGaveUp) as info:
            _oauth(server.url, grant_type="client_credentials").send("GET", server.url + "/data")
        assert info.value.failure.status == 401 and tokens.grants == ["client_credentials"] * 2
        with pytest.raises(MuxlyConnectorError) as refused:
            _oauth(server.url, grant_type="client_credentials", secret="wrong-cs").send("GET", server.url)
    assert str(refused.value) == f"token request at {server.url}/token failed: HTTP 401 (invalid_client)"
    assert "wrong-cs" not in str(refused.value)


def test_a_token_endpoint_answering_5xx_or_html_is_a_clear_error() -> None:
    with LocalServer(_answers(Reply(503, {}), Reply(200, raw=b"<html>login</html>"))) as server:
        for expected in ("HTTP 503", "HTTP 200 (not a token)"):
            with pytest.raises(
                MuxlyConnectorError, match=f"token refresh at .* failed: {re.escape(expected)}$"
            ) as info:
                _oauth(server.url, refresh_token="rt").send("GET", server.url)
            assert "login" not in str(info.value)
