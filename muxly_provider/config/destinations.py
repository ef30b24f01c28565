"""``destinations.config`` per ``destination_type``, and the validated destination row.

The options are those of the original Muxly documentation (REFERENCE.md) plus ``batch_size`` for every type.
Unknown keys are errors (the message lists the allowed ones); free-form maps such as ``headers``,
``column_mapping`` and ``template_variables`` take any keys.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from muxly_provider.config.base import (
    ConnIdStr,
    NonEmptyStr,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    StrictConfig,
    UrlStr,
)


class DestinationSettingsConfig(StrictConfig):
    """Options every destination type takes: ``batch_size`` records per write, and how often a failed batch is
    tried again (``retry_count``) after ``retry_backoff_seconds`` (doubling) before it goes to the dead-letter
    store (see docs/destinations.md)."""

    batch_size: PositiveInt = 500
    retry_count: NonNegativeInt = 2
    retry_backoff_seconds: float = Field(default=1.0, ge=0)


class FileDestinationConfig(DestinationSettingsConfig):
    """``file``: files under ``output_dir`` (a path inside ``[muxly] files_root``, or an object-storage URL
    reached through ``conn_id``); ``file_prefix`` is a plain name."""

    output_dir: NonEmptyStr = "."
    conn_id: ConnIdStr | None = None
    file_prefix: NonEmptyStr | None = None
    file_format: Literal["json", "jsonl", "csv"] = "jsonl"
    max_file_size_mb: PositiveFloat | None = None
    rotation: Literal["none", "daily", "hourly", "size"] = "none"
    compress: bool = False

    @model_validator(mode="after")
    def _size_rotation(self) -> FileDestinationConfig:
        if self.rotation == "size" and self.max_file_size_mb is None:
            raise ValueError("'max_file_size_mb' when rotation is 'size'")
        return self


class DatabaseDestinationConfig(DestinationSettingsConfig):
    """``database``: rows of ``table`` through an Airflow connection (``conn_id``: its common-sql hook's
    SQLAlchemy engine) or a SQLAlchemy URL (``connection_string``, a secret)."""

    db_type: Literal["postgres", "mysql", "sqlite"] | None = None
    conn_id: ConnIdStr | None = None
    connection_string: NonEmptyStr | None = None
    table: NonEmptyStr
    schema_: NonEmptyStr | None = Field(default=None, alias="schema")
    upsert_key: NonEmptyStr | list[NonEmptyStr] | None = None
    create_table: bool = False
    column_mapping: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _one_source(self) -> DatabaseDestinationConfig:
        if bool(self.conn_id) == bool(self.connection_string):
            raise ValueError("exactly one of 'conn_id' or 'connection_string'")
        return self


class WebhookDestinationConfig(DestinationSettingsConfig):
    """``webhook``: an HTTP request per batch (``body_template`` renders ``{{name}}`` placeholders), to ``url``
    or to ``endpoint`` below an Airflow HTTP connection (``conn_id``: base URL, login and password, headers in
    its extras, as the HTTP provider's ``HttpHook`` reads them)."""

    url: UrlStr | None = None
    conn_id: ConnIdStr | None = None
    endpoint: str = ""
    method: Literal["GET", "POST", "PUT", "PATCH"] = "POST"
    headers: dict[str, str] = Field(default_factory=dict)
    body_template: Any = None
    timeout_seconds: PositiveFloat = 30.0
    retry_count: NonNegativeInt = 3
    send_mode: Literal["batch", "record"] = "batch"

    @model_validator(mode="before")
    @classmethod
    def _upper_method(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("method"), str):
            return {**data, "method": data["method"].upper()}
        return data

    @model_validator(mode="after")
    def _target(self) -> WebhookDestinationConfig:
        if bool(self.url) == bool(self.conn_id):
            raise ValueError("exactly one of 'url' or 'conn_id' (an Airflow HTTP connection)")
        if self.endpoint and not self.conn_id:
            raise ValueError("'endpoint' goes with 'conn_id' (with 'url', the path is part of the URL)")
        return self


class EmailDestinationConfig(DestinationSettingsConfig):
    """``email``: one message per batch through the SMTP provider's hook, on an Airflow SMTP connection
    (``conn_id``: server, login and the ``from_email`` extra) or on the inline ``smtp_*`` options."""

    smtp_host: NonEmptyStr | None = None
    smtp_port: int = Field(default=587, gt=0, lt=65536)
    smtp_username: str | None = None
    smtp_password: str | None = None
    use_tls: bool = True
    conn_id: ConnIdStr | None = None
    from_email: NonEmptyStr | None = None
    from_name: str | None = None
    to_emails: list[NonEmptyStr] = Field(min_length=1)
    cc_emails: list[NonEmptyStr] = Field(default_factory=list)
    bcc_emails: list[NonEmptyStr] = Field(default_factory=list)
    subject_template: str = "Muxly: {{count}} records from {{connector_id}}"
    body_template: str | None = None
    template_variables: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _server(self) -> EmailDestinationConfig:
        if not self.smtp_host and not self.conn_id:
            raise ValueError("'smtp_host' or 'conn_id' (an Airflow SMTP connection)")
        if not self.from_email and not self.conn_id:
            raise ValueError(
                "'from_email' (or 'conn_id', an Airflow SMTP connection with a from_email extra)"
            )
        return self


class SlackDestinationConfig(DestinationSettingsConfig):
    """``slack``: an incoming webhook through the Slack provider's hook: an Airflow ``slackwebhook``
    connection (``conn_id``) or ``webhook_url`` (the URL is the credential: stored encrypted)."""

    webhook_url: UrlStr | None = None
    conn_id: ConnIdStr | None = None
    channel: str | None = None
    username: str | None = None
    icon: str | None = None
    message_template: str = "{{count}} records from {{connector_id}}"
    include_data: bool = False
    color: str | None = None
    template_variables: dict[str, str] = Field(default_factory=dict)
    retry_count: NonNegativeInt = 3

    @model_validator(mode="after")
    def _target(self) -> SlackDestinationConfig:
        if bool(self.webhook_url) == bool(self.conn_id):
            raise ValueError("exactly one of 'webhook_url' or 'conn_id'")
        return self


class S3CredentialsConfig(StrictConfig):
    """Static S3 credentials (``secret_access_key`` is stored encrypted)."""

    access_key_id: NonEmptyStr
    secret_access_key: NonEmptyStr


class S3DestinationConfig(DestinationSettingsConfig):
    """``s3``: objects under ``key_prefix`` through the Amazon provider's ``S3Hook``: an Airflow ``aws``
    connection (``conn_id``; its ``service_config.s3.bucket_name`` extra may name the bucket), inline
    ``credentials``, or the worker's own identity when both are absent."""

    bucket: NonEmptyStr | None = None
    key_prefix: str = ""
    region: str | None = None
    output_format: Literal["json", "jsonl", "csv"] = "json"
    key_template: str | None = None
    credentials: S3CredentialsConfig | None = None
    content_type: str | None = None
    endpoint_url: UrlStr | None = None
    conn_id: ConnIdStr | None = None

    @model_validator(mode="after")
    def _bucket(self) -> S3DestinationConfig:
        if not self.bucket and not self.conn_id:
            raise ValueError("'bucket' (or 'conn_id', an Airflow aws connection naming its bucket)")
        return self


class PrometheusMetricConfig(StrictConfig):
    """One metric: its value comes from ``value_field`` of each record (counters may count records)."""

    name: str = Field(pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
    type: Literal["gauge", "counter", "histogram"] = "gauge"
    description: str = ""
    value_field: NonEmptyStr | None = None
    labels: dict[str, str] = Field(default_factory=dict)


class PrometheusDestinationConfig(DestinationSettingsConfig):
    """``prometheus``: metrics pushed to a Pushgateway (``pushgateway_url`` or an HTTP ``conn_id``)."""

    metrics: list[PrometheusMetricConfig] = Field(min_length=1)
    pushgateway_url: UrlStr | None = None
    conn_id: ConnIdStr | None = None
    """An Airflow HTTP connection naming the Pushgateway (its base URL; login and password as basic auth)."""
    job: NonEmptyStr = "muxly"


DestinationConfig = (
    FileDestinationConfig
    | DatabaseDestinationConfig
    | WebhookDestinationConfig
    | EmailDestinationConfig
    | SlackDestinationConfig
    | S3DestinationConfig
    | PrometheusDestinationConfig
)
"""``destinations.config`` of any type (the row's ``destination_type`` selects the model)."""

DESTINATION_CONFIG_MODELS: dict[str, type[DestinationSettingsConfig]] = {
    "file": FileDestinationConfig,
    "database": DatabaseDestinationConfig,
    "webhook": WebhookDestinationConfig,
    "email": EmailDestinationConfig,
    "slack": SlackDestinationConfig,
    "s3": S3DestinationConfig,
    "prometheus": PrometheusDestinationConfig,
}
"""The ``config`` model of each ``destination_type``."""


class DestinationRowSpec(StrictConfig):
    """A validated ``destinations`` row (``config`` is its parsed JSON column)."""

    id: NonEmptyStr
    name: NonEmptyStr
    destination_type: NonEmptyStr
    enabled: bool = True
    config: DestinationConfig
