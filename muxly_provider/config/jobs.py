"""``scheduler_jobs``: the job row and its ``action_params`` JSON column.

The schedule and the timezone are checked by :mod:`muxly_provider.config.schedule`, the one validator the
write paths and the DAG factory share.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from muxly_provider.config.base import NonEmptyStr, NonNegativeInt, PositiveInt, StrictConfig
from muxly_provider.config.schedule import CRON_PRESETS, check_schedule, check_timezone
from muxly_provider.config.webhooks import ENDPOINT_PATH_PATTERN

__all__ = [
    "CRON_PRESETS",
    "ActionParamsConfig",
    "NotificationTargetConfig",
    "NotificationsConfig",
    "SchedulerJobRowSpec",
    "WaitForWebhookConfig",
    "check_schedule",
    "check_timezone",
]


class NotificationTargetConfig(StrictConfig):
    """A notification sent to a destination (email or slack) with an optional message template.

    The template may use ``${job_name}``, ``${job_id}``, ``${completion_time}`` and ``${error_message}``.
    """

    destination_id: NonEmptyStr
    message_template: str | None = None


class NotificationsConfig(StrictConfig):
    """``action_params.notifications``: destinations told about a run's success or failure.

    Items are destination ids or ``{"destination_id", "message_template"}`` objects.
    """

    on_success: list[NonEmptyStr | NotificationTargetConfig] = Field(default_factory=list)
    on_failure: list[NonEmptyStr | NotificationTargetConfig] = Field(default_factory=list)

    def destination_ids(self) -> list[str]:
        """Every destination id named by the notifications."""
        return [
            item if isinstance(item, str) else item.destination_id
            for item in (*self.on_success, *self.on_failure)
        ]


class WaitForWebhookConfig(StrictConfig):
    """``action_params.wait_for_webhook``: the job's DAG starts with a ``wait_for_webhook`` sensor task.

    The task (:class:`muxly_provider.sensors.MuxlyWebhookSensor`) waits, deferred, for a delivery to
    ``/muxly/webhooks/<endpoint_path>`` matching ``condition`` (Muxly's condition language on the body) before
    ``extract``; its return value is the body. ``on_timeout``: ``fail`` the run or ``skip`` it (every later task
    is skipped). ``lookback_seconds`` (default ``[muxly] webhook_sensor_lookback_seconds``): a delivery
    received that long before the wait started still counts.
    """

    endpoint_path: NonEmptyStr
    timeout_seconds: PositiveInt = 3600
    condition: str | None = None
    on_timeout: Literal["fail", "skip"] = "fail"
    lookback_seconds: NonNegativeInt | None = None

    @field_validator("endpoint_path")
    @classmethod
    def _url_path(cls, value: str) -> str:
        if len(value) > 200 or not re.match(ENDPOINT_PATH_PATTERN, value):
            raise ValueError(
                "the endpoint_path of a webhook trigger such as 'orders/created' (letters, digits, '.', '_', "
                "'~', '-' and '/', no leading slash, at most 200 characters)"
            )
        return value


class ActionParamsConfig(StrictConfig):
    """``scheduler_jobs.action_params``.

    String values may hold Muxly's date variables (``${DATE}``, ...) and Airflow Jinja (``{{ ds }}``); they are
    resolved per run, so they are not checked here.
    """

    data_spec: dict[str, Any] = Field(default_factory=dict)
    query: str | None = None
    parameters: dict[str, Any] | list[Any] | None = None
    destination_ids: list[NonEmptyStr] = Field(default_factory=list)
    route_id: NonEmptyStr | None = Field(default=None)
    pipeline_id: NonEmptyStr | None = None
    run_params: dict[str, Any] = Field(default_factory=dict)
    timezone: NonEmptyStr | None = None
    depends_on: NonEmptyStr | None = None
    notifications: NotificationsConfig = Field(default_factory=NotificationsConfig)
    run_condition: dict[str, Any] | str | None = None
    wait_for_webhook: WaitForWebhookConfig | None = None

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        return None if value is None else check_timezone(value)

    @model_validator(mode="after")
    def _pipeline_alias(self) -> ActionParamsConfig:
        # The original service named the route of a pipeline ``pipeline_id``.
        if self.pipeline_id and self.route_id and self.pipeline_id != self.route_id:
            raise ValueError("either 'route_id' or its alias 'pipeline_id', not both")
        if self.pipeline_id and not self.route_id:
            self.route_id = self.pipeline_id
        return self


class SchedulerJobRowSpec(StrictConfig):
    """A validated ``scheduler_jobs`` row."""

    id: NonEmptyStr
    name: NonEmptyStr
    job_type: Literal["cron", "webhook", "manual"]
    schedule: str | None = None
    connector_id: NonEmptyStr
    action_type: Literal["sync", "query", "export", "pipeline"]
    action_params: ActionParamsConfig = Field(default_factory=ActionParamsConfig)
    enabled: bool = True
    max_retries: NonNegativeInt = 3
    backoff_strategy: Literal["exponential", "linear", "fixed"] = "exponential"
    timeout_seconds: PositiveInt = 300
