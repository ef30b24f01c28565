"""``connectors.connection_settings`` per ``connector_type``, and the validated connector row.

Each built-in type has its own model (unknown keys are errors, listing the allowed ones); ``plugin:<name>``
connectors take any JSON object, which their plugin validates itself.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from muxly_provider.config.auth import AuthConfig
from muxly_provider.config.base import (
    ConnIdStr,
    NonEmptyStr,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    StrictConfig,
    UrlStr,
)

PLUGIN_PREFIX = "plugin:"
"""``connector_type`` prefix of connectors registered through the ``muxly.connectors`` entry points."""


class RateLimitConfig(StrictConfig):
    """At most ``max_requests`` per ``period_seconds``; ``auto_adjust`` follows the server's rate-limit headers."""

    max_requests: PositiveInt
    period_seconds: PositiveFloat = 1.0
    auto_adjust: bool = False


class RetryConfig(StrictConfig):
    """Retries of failed requests with exponential backoff."""

    max_attempts: PositiveInt = 3
    initial_backoff_ms: NonNegativeInt = 500
    max_backoff_ms: NonNegativeInt = 30_000
    backoff_multiplier: float = Field(default=2.0, ge=1.0)
    retryable_status: list[int] = Field(default_factory=lambda: [429, 500, 502, 503, 504])
    retryable_errors: list[Literal["RATE_LIMIT", "SERVER_ERROR", "TIMEOUT", "CONNECTION_ERROR"]] = Field(
        default_factory=list
    )


class NoPaginationConfig(StrictConfig):
    """One request."""

    type: Literal["none"] = "none"


class PagePaginationConfig(StrictConfig):
    """Numbered pages: ``page_param`` starts at ``start_page``; stops on an empty page or ``max_pages``."""

    type: Literal["page"]
    page_param: NonEmptyStr = "page"
    size_param: NonEmptyStr | None = None
    page_size: PositiveInt | None = None
    start_page: int = 1
    max_pages: PositiveInt | None = None


class OffsetPaginationConfig(StrictConfig):
    """Offset and limit parameters; stops on a short page or ``max_pages``."""

    type: Literal["offset"]
    offset_param: NonEmptyStr = "offset"
    limit_param: NonEmptyStr = "limit"
    limit: PositiveInt = 100
    max_pages: PositiveInt | None = None


class CursorPaginationConfig(StrictConfig):
    """A cursor read at ``cursor_path`` of each response and sent back as ``cursor_param``."""

    type: Literal["cursor"]
    cursor_param: NonEmptyStr = "cursor"
    cursor_path: NonEmptyStr
    max_pages: PositiveInt | None = None


class LinkHeaderPaginationConfig(StrictConfig):
    """The ``rel="next"`` URL of the ``Link`` response header (RFC 8288, as GitHub uses)."""

    type: Literal["link_header"]
    max_pages: PositiveInt | None = None


PaginationConfig = Annotated[
    NoPaginationConfig
    | PagePaginationConfig
    | OffsetPaginationConfig
    | CursorPaginationConfig
    | LinkHeaderPaginationConfig,
    Field(discriminator="type"),
]
"""``pagination`` of the ``api`` connector, discriminated by ``type`` (absent: ``none``)."""

PAGINATION_MODELS: dict[str, type[StrictConfig]] = {
    "none": NoPaginationConfig,
    "page": PagePaginationConfig,
    "offset": OffsetPaginationConfig,
    "cursor": CursorPaginationConfig,
    "link_header": LinkHeaderPaginationConfig,
}


class ConnectorSettingsConfig(StrictConfig):
    """Options every connector type takes."""

    rate_limit: RateLimitConfig | None = None
    retry: RetryConfig | None = None


class ApiSettingsConfig(ConnectorSettingsConfig):
    """``api``: any REST/HTTP JSON API. ``base_url`` may hold ``{name}`` placeholders filled from
    ``path_params``."""

    base_url: UrlStr
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"] = "GET"
    headers: dict[str, str] = Field(default_factory=dict)
    query_params: dict[str, Any] = Field(default_factory=dict)
    path_params: dict[str, Any] = Field(default_factory=dict)
    body_template: Any = None
    metrics_path: str | None = None
    timeout_seconds: PositiveFloat = 30.0
    pagination: PaginationConfig = Field(default_factory=NoPaginationConfig)

    @model_validator(mode="before")
    @classmethod
    def _normalize(cls, data: Any) -> Any:
        # Methods are case-insensitive in HTTP; a pagination object without "type" means none.
        if not isinstance(data, dict):
            return data
        data = dict(data)
        if isinstance(data.get("method"), str):
            data["method"] = data["method"].upper()
        pagination = data.get("pagination")
        if pagination is None:
            data.pop("pagination", None)
        elif isinstance(pagination, dict) and "type" not in pagination:
            data["pagination"] = {"type": "none", **pagination}
        return data


class DatabaseSettingsConfig(ConnectorSettingsConfig):
    """``database``: an Airflow connection id (``conn_id``: its common-sql hook's SQLAlchemy engine) or a
    SQLAlchemy URL (``connection_string``, a secret: stored encrypted)."""

    conn_id: ConnIdStr | None = None
    connection_string: NonEmptyStr | None = None

    @model_validator(mode="after")
    def _one_source(self) -> DatabaseSettingsConfig:
        if bool(self.conn_id) == bool(self.connection_string):
            raise ValueError("exactly one of 'conn_id' or 'connection_string'")
        return self


class FileSettingsConfig(ConnectorSettingsConfig):
    """``file``: a local or object-storage ``path`` or ``glob`` of CSV, JSON or JSONL files (``conn_id``: the
    object storage's credentials)."""

    path: NonEmptyStr | None = None
    glob: NonEmptyStr | None = None
    format: Literal["csv", "json", "jsonl"] = "jsonl"
    compression: Literal["none", "gzip", "bz2", "zip", "xz", "infer"] = "infer"
    conn_id: ConnIdStr | None = None
    """Airflow connection holding the object-storage credentials (``s3://``, ``gs://``, ...)."""

    @model_validator(mode="after")
    def _one_source(self) -> FileSettingsConfig:
        if bool(self.path) == bool(self.glob):
            raise ValueError("exactly one of 'path' or 'glob'")
        return self


class BigQuerySettingsConfig(ConnectorSettingsConfig):
    """``bigquery``: the project and default dataset; ``api_base_url`` points tests at a local server."""

    project_id: NonEmptyStr
    dataset_id: NonEmptyStr | None = None
    location: NonEmptyStr | None = None
    max_results: PositiveInt | None = None
    api_base_url: UrlStr | None = None


class Ga4SettingsConfig(ConnectorSettingsConfig):
    """``ga4``: a Google Analytics 4 property (Data API ``runReport``)."""

    property_id: NonEmptyStr
    default_date_range_days: PositiveInt = 7
    sampling_level: Literal["DEFAULT", "SMALL", "LARGE"] = "DEFAULT"
    currency: NonEmptyStr | None = None
    api_base_url: UrlStr | None = None


class HubSpotSettingsConfig(ConnectorSettingsConfig):
    """``hubspot``: CRM objects; ``properties`` maps an object type to the properties to fetch."""

    api_version: NonEmptyStr = "v3"
    batch_size: int = Field(default=100, gt=0, le=100)
    include_archived: bool = False
    properties: dict[str, list[str]] = Field(default_factory=dict)
    api_base_url: UrlStr | None = None


class WebhookSettingsConfig(StrictConfig):
    """``webhook``: records pushed to Muxly, the body of the delivery that started the run (nothing to reach).

    ``records_path`` is where the records are in the body (Muxly's path syntax, ``data.items`` or
    ``$.batch['records']``); absent, the whole body. A job's ``data_spec.records_path`` overrides it.
    """

    records_path: NonEmptyStr | None = None

    @field_validator("records_path")
    @classmethod
    def _a_path(cls, value: str | None) -> str | None:
        if value is not None:
            from muxly_provider.routing.paths import PathError, parse_path

            try:
                parse_path(value)
            except PathError as exc:
                raise ValueError(f"a path such as 'data.items' or '$.batch[0]' ({exc})") from None
        return value


class PluginSettingsConfig(BaseModel):
    """``plugin:<name>``: any JSON object, validated by the plugin."""

    model_config = ConfigDict(extra="allow")


ConnectionSettingsConfig = (
    ApiSettingsConfig
    | DatabaseSettingsConfig
    | FileSettingsConfig
    | BigQuerySettingsConfig
    | Ga4SettingsConfig
    | HubSpotSettingsConfig
    | WebhookSettingsConfig
    | PluginSettingsConfig
)
"""``connectors.connection_settings`` of any type (the row's ``connector_type`` selects the model)."""

CONNECTION_SETTINGS_MODELS: dict[str, type[BaseModel]] = {
    "api": ApiSettingsConfig,
    "database": DatabaseSettingsConfig,
    "file": FileSettingsConfig,
    "bigquery": BigQuerySettingsConfig,
    "ga4": Ga4SettingsConfig,
    "hubspot": HubSpotSettingsConfig,
    "webhook": WebhookSettingsConfig,
}
"""The ``connection_settings`` model of each built-in ``connector_type``."""


def connection_settings_model(connector_type: str) -> type[BaseModel] | None:
    """The model of ``connection_settings`` for ``connector_type``; ``None`` when the type is unknown."""
    if connector_type.startswith(PLUGIN_PREFIX) and len(connector_type) > len(PLUGIN_PREFIX):
        return PluginSettingsConfig
    return CONNECTION_SETTINGS_MODELS.get(connector_type)


class ConnectorRowSpec(StrictConfig):
    """A validated ``connectors`` row (``auth`` and ``settings`` are its parsed JSON columns)."""

    id: NonEmptyStr
    name: NonEmptyStr
    connector_type: NonEmptyStr
    enabled: bool = True
    auth: AuthConfig = Field(alias="auth_settings")
    settings: ConnectionSettingsConfig = Field(alias="connection_settings")
