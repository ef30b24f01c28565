"""``connectors.auth_settings``: ``{"auth_type": ..., "params": {...}}``, a union discriminated by ``auth_type``.

Every ``params`` object forbids unknown keys. Instead of inline secrets a user can always reference an Airflow
Connection with ``{"auth_type": "airflow_connection", "params": {"conn_id": "..."}}``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from muxly_provider.config.base import ConnIdStr, NonEmptyStr, StrictConfig, UrlStr


class NoParamsConfig(StrictConfig):
    """``params`` of the auth types that take none."""


class BearerParamsConfig(StrictConfig):
    """``params`` of ``bearer``: ``token`` sent as ``Authorization: Bearer <token>``."""

    token: NonEmptyStr


class BasicParamsConfig(StrictConfig):
    """``params`` of ``basic``: HTTP basic auth."""

    username: NonEmptyStr
    password: str


class ApiKeyParamsConfig(StrictConfig):
    """``params`` of ``api_key``: a key sent in a header (``header_name``) or the query (``param_name``)."""

    api_key: NonEmptyStr
    location: Literal["header", "query"] = "header"
    header_name: NonEmptyStr = "X-API-Key"
    param_name: NonEmptyStr = "api_key"


class OAuthParamsConfig(StrictConfig):
    """``params`` of ``oauth``: a refresh token (or an ``auth_code`` for the first exchange) and ``token_url``;
    or ``grant_type: client_credentials`` (the client id and secret alone, with an optional ``scope``)."""

    client_id: NonEmptyStr
    client_secret: NonEmptyStr
    refresh_token: NonEmptyStr | None = None
    auth_code: NonEmptyStr | None = None
    token_url: UrlStr | None = None
    grant_type: Literal["refresh_token", "authorization_code", "client_credentials"] | None = None
    scope: NonEmptyStr | None = None

    @model_validator(mode="after")
    def _needs_a_grant(self) -> OAuthParamsConfig:
        grant = self.grant_type
        if grant == "refresh_token" and not self.refresh_token:
            raise ValueError("grant_type 'refresh_token' needs a 'refresh_token'")
        if grant == "authorization_code" and not self.auth_code:
            raise ValueError("grant_type 'authorization_code' needs an 'auth_code'")
        if grant is None and not self.refresh_token and not self.auth_code:
            raise ValueError(
                "a 'refresh_token' or an 'auth_code' (for the first exchange), or grant_type 'client_credentials'"
            )
        return self


class ServiceAccountParamsConfig(StrictConfig):
    """``params`` of ``service_account``: the Google key file's JSON (an object or its text)."""

    service_account_json: NonEmptyStr | dict[str, object]


class AirflowConnectionParamsConfig(StrictConfig):
    """``params`` of ``airflow_connection``: the id of an Airflow Connection holding the credentials."""

    conn_id: ConnIdStr


class NoneAuthConfig(StrictConfig):
    """No authentication."""

    auth_type: Literal["none"] = "none"
    params: NoParamsConfig = Field(default_factory=NoParamsConfig)


class BearerAuthConfig(StrictConfig):
    """Bearer token authentication."""

    auth_type: Literal["bearer"]
    params: BearerParamsConfig


class BasicAuthConfig(StrictConfig):
    """HTTP basic authentication."""

    auth_type: Literal["basic"]
    params: BasicParamsConfig


class ApiKeyAuthConfig(StrictConfig):
    """API key in a header or a query parameter."""

    auth_type: Literal["api_key"]
    params: ApiKeyParamsConfig


class OAuthAuthConfig(StrictConfig):
    """OAuth 2 refresh-token (or authorization-code) flow."""

    auth_type: Literal["oauth"]
    params: OAuthParamsConfig


class ServiceAccountAuthConfig(StrictConfig):
    """A Google service account key."""

    auth_type: Literal["service_account"]
    params: ServiceAccountParamsConfig


class ApplicationDefaultAuthConfig(StrictConfig):
    """Google application default credentials."""

    auth_type: Literal["application_default"]
    params: NoParamsConfig = Field(default_factory=NoParamsConfig)


class AirflowConnectionAuthConfig(StrictConfig):
    """Credentials from an Airflow Connection."""

    auth_type: Literal["airflow_connection"]
    params: AirflowConnectionParamsConfig


AuthConfig = Annotated[
    NoneAuthConfig
    | BearerAuthConfig
    | BasicAuthConfig
    | ApiKeyAuthConfig
    | OAuthAuthConfig
    | ServiceAccountAuthConfig
    | ApplicationDefaultAuthConfig
    | AirflowConnectionAuthConfig,
    Field(discriminator="auth_type"),
]
"""``connectors.auth_settings``, discriminated by ``auth_type``."""

AUTH_MODELS: dict[str, type[StrictConfig]] = {
    "none": NoneAuthConfig,
    "bearer": BearerAuthConfig,
    "basic": BasicAuthConfig,
    "api_key": ApiKeyAuthConfig,
    "oauth": OAuthAuthConfig,
    "service_account": ServiceAccountAuthConfig,
    "application_default": ApplicationDefaultAuthConfig,
    "airflow_connection": AirflowConnectionAuthConfig,
}
"""The model of each ``auth_type`` (validation dispatches on it, so that error paths carry no union tag)."""
