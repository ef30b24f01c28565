"""The api connector's ``oauth`` grants (authlib under it) against a loopback token endpoint, and their config."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from muxly_provider.config.auth import OAuthParamsConfig
from muxly_provider.connectors.api import ApiConnector
from muxly_provider.connectors.base import ConnectorContext
from muxly_provider.exceptions import MuxlyConnectorError
from tests.unit.connectors.fake_servers import LocalServer, Reply, Request, TokenEndpoint


def _records(url: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    ctx = ConnectorContext(
        id="cc",
        name="CC",
        connector_type="api",
        auth={"auth_type": "oauth", "params": {"token_url": url + "/token", **params}},
        settings={"base_url": url + "/data", "retry": {"max_attempts": 1}},
    )
    return [r for batch in ApiConnector(ctx).fetch({}) for r in batch]


def _server(tokens: TokenEndpoint) -> LocalServer:
    def handler(request: Request) -> Reply:
        if request.path == "/token":
            return tokens(request)
        if not tokens.bearer_ok(request):
            return Reply(401, {"error": "invalid_token"})
        return Reply(body=[{"id": 1}])

    return LocalServer(handler)


def test_client_credentials_grant_with_a_scope() -> None:
    tokens = TokenEndpoint(client_secret="cs-secret")
    params = {"client_id": "cid", "client_secret": "cs-secret", "grant_type": "client_credentials"}
    with _server(tokens) as server:
        assert _records(server.url, {**params, "scope": "crm.read"}) == [{"id": 1}]
        form = server.requests[0].form()
        with pytest.raises(MuxlyConnectorError) as info:
            _records(server.url, {**params, "client_secret": "wrong-secret"})
    assert form == {
        "grant_type": "client_credentials",
        "scope": "crm.read",
        "client_id": "cid",
        "client_secret": "cs-secret",
    }
    assert str(info.value) == (
        f"connector 'cc': oauth: token request at {server.url}/token failed: HTTP 401 (invalid_client)"
    )


def test_oauth_params_name_the_grant_they_need() -> None:
    base = {"client_id": "cid", "client_secret": "cs"}
    assert OAuthParamsConfig(**base, grant_type="client_credentials").grant_type == "client_credentials"
    assert OAuthParamsConfig(**base, refresh_token="rt").grant_type is None
    for params, expected in (
        ({}, "grant_type 'client_credentials'"),
        ({"grant_type": "refresh_token", "auth_code": "c"}, "needs a 'refresh_token'"),
        ({"grant_type": "authorization_code", "refresh_token": "r"}, "needs an 'auth_code'"),
        ({"grant_type": "password"}, "grant_type"),
    ):
        with pytest.raises(ValidationError, match=expected):
            OAuthParamsConfig(**base, **params)
