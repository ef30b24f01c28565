"""``webhook_triggers`` and ``settings`` rows (no JSON columns, but the same validation path)."""

from __future__ import annotations

import re
from urllib.parse import urlsplit

from pydantic import field_validator

from muxly_provider.config.base import NonEmptyStr, StrictConfig

ENDPOINT_PATH_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._~/-]*$"
"""``endpoint_path``: URL-safe segments, no leading slash (the URL is ``/muxly/webhooks/<endpoint_path>``)."""


ASSET_URI_MAX_LENGTH = 1500
"""Airflow's limit on an asset's name and URI."""


def check_asset_uri(value: str) -> str:
    """An asset URI as Airflow accepts it (``s3://bucket/key``, ``x-muxly://orders``, or a plain name).

    Airflow keeps a URI without a scheme as it is, refuses the reserved scheme ``airflow``, and silently drops a
    password from the user info; Muxly refuses one (it would be a secret in a plain column). ASCII only, so that
    the URI is valid on every metadata database Airflow supports.

    :raises ValueError: naming what is wrong
    """
    if not value or value.isspace() or value != value.strip():
        raise ValueError("a non-empty asset URI without surrounding spaces, such as 's3://bucket/orders'")
    if len(value) > ASSET_URI_MAX_LENGTH:
        raise ValueError(f"an asset URI of at most {ASSET_URI_MAX_LENGTH} characters")
    if not value.isascii() or any(ord(char) < 33 or ord(char) == 127 for char in value):
        raise ValueError("an asset URI of printable ASCII characters without spaces")
    parsed = urlsplit(value)
    if parsed.scheme.lower() == "airflow":
        raise ValueError("an asset URI whose scheme is not 'airflow' (Airflow reserves it)")
    if parsed.password:
        raise ValueError("an asset URI without a password (use an Airflow connection for credentials)")
    _check_with_airflow(value)
    return value


def _check_with_airflow(value: str) -> None:
    """Let Airflow's ``Asset(uri)`` check the URI: its normalizers refuse e.g. ``s3://`` without a bucket."""
    import warnings

    from airflow.sdk import Asset

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            Asset(uri=value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"an asset URI Airflow accepts ({exc})") from None


class WebhookTriggerRowSpec(StrictConfig):
    """A validated ``webhook_triggers`` row; ``secret_key`` (stored encrypted) enables HMAC signatures.

    Every valid delivery is stored in ``webhook_events`` for sensors and event triggers. ``job_id`` (optional)
    starts a run of that job, ``asset_uri`` (optional) names the asset a delivery creates an event of; a row
    with neither is a *sensor-only* endpoint (deliveries only release waiting sensors and event triggers).
    """

    id: NonEmptyStr
    job_id: NonEmptyStr | None = None
    endpoint_path: str
    secret_key: str | None = None
    enabled: bool = True
    asset_uri: str | None = None

    @field_validator("endpoint_path")
    @classmethod
    def _url_path(cls, value: str) -> str:
        if len(value) > 200 or not re.match(ENDPOINT_PATH_PATTERN, value):
            raise ValueError(
                "a URL path of at most 200 characters such as 'orders/created' (letters, digits, '.', '_', '~', "
                "'-' and '/', no leading slash)"
            )
        return value

    @field_validator("asset_uri")
    @classmethod
    def _asset_uri(cls, value: str | None) -> str | None:
        return None if value is None else check_asset_uri(value)


class SettingRowSpec(StrictConfig):
    """A validated ``settings`` row: a global key and its text value."""

    key: NonEmptyStr
    value: str
