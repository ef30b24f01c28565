"""``scheduler_jobs``: the job row and its ``action_params`` JSON column.

The schedule check here is a shape check (five fields or a preset); the DAG factory additionally parses the
expression with Airflow's cron support before it builds a DAG.
"""

from __future__ import annotations

import zoneinfo
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from muxly_provider.config.base import NonEmptyStr, NonNegativeInt, PositiveInt, StrictConfig

CRON_PRESETS: frozenset[str] = frozenset(
    {"@hourly", "@daily", "@midnight", "@weekly", "@monthly", "@yearly", "@annually"}
)
"""Schedule presets accepted besides five-field cron expressions (case-insensitive)."""

_CRON_CHARS = frozenset("0123456789*,-/?LW#ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")


def check_schedule(schedule: str) -> str:
    """Check the shape of a schedule: a preset or five cron fields of cron characters.

    :param schedule: the ``scheduler_jobs.schedule`` value
    :returns: the schedule, stripped
    :raises ValueError: naming what was expected
    """
    text = schedule.strip()
    if text.startswith("@"):
        if text.lower() not in CRON_PRESETS:
            raise ValueError(f"a preset among {', '.join(sorted(CRON_PRESETS))}")
        return text
    fields = text.split()
    if len(fields) != 5:
        raise ValueError(
            "a five-field cron expression (minute hour day-of-month month day-of-week) or a preset such as "
            f"@daily; got {len(fields)} field(s)"
        )
    for field in fields:
        if not set(field) <= _CRON_CHARS:
            raise ValueError(
                f"a five-field cron expression; field {field!r} holds characters cron does not use"
            )
    return text


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

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                zoneinfo.ZoneInfo(value)
            except (zoneinfo.ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"an IANA timezone name such as 'Europe/Paris', got {value!r}") from exc
        return value

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
