"""``webhook_triggers`` and ``settings`` rows (no JSON columns, but the same validation path)."""

from __future__ import annotations

import re

from pydantic import field_validator

from muxly_provider.config.base import NonEmptyStr, StrictConfig

ENDPOINT_PATH_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._~/-]*$"
"""``endpoint_path``: URL-safe segments, no leading slash (the URL is ``/muxly/webhooks/<endpoint_path>``)."""


class WebhookTriggerRowSpec(StrictConfig):
    """A validated ``webhook_triggers`` row; ``secret_key`` (stored encrypted) enables HMAC signatures."""

    id: NonEmptyStr
    job_id: NonEmptyStr
    endpoint_path: str
    secret_key: str | None = None
    enabled: bool = True

    @field_validator("endpoint_path")
    @classmethod
    def _url_path(cls, value: str) -> str:
        if len(value) > 200 or not re.match(ENDPOINT_PATH_PATTERN, value):
            raise ValueError(
                "a URL path of at most 200 characters such as 'orders/created' (letters, digits, '.', '_', '~', "
                "'-' and '/', no leading slash)"
            )
        return value


class SettingRowSpec(StrictConfig):
    """A validated ``settings`` row: a global key and its text value."""

    key: NonEmptyStr
    value: str
