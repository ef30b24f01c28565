"""The retry policy of Muxly's tasks: the job's ``backoff_strategy``, and no retry for configuration errors.

Airflow's own options cover fixed and exponential delays but not linear ones, and would retry a task that can
never succeed (a malformed row). This policy runs in the worker when a try fails: ``fixed`` waits the base delay,
``linear`` the base delay times the try number, ``exponential`` the base delay doubled per try, each capped.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from airflow.sdk.definitions.retry_policy import RetryDecision, RetryPolicy

from muxly_provider.exceptions import (
    MuxlyConditionError,
    MuxlyConfigError,
    MuxlyConfigErrors,
    MuxlyDatabaseSettingError,
    MuxlySecretError,
)

NOT_RETRYABLE = (
    MuxlyConfigError,
    MuxlyConfigErrors,
    MuxlyConditionError,
    MuxlySecretError,
    MuxlyDatabaseSettingError,
)


class MuxlyTaskRetryPolicy(RetryPolicy):
    """Retry delays from a job's ``backoff_strategy``.

    :param strategy: ``fixed``, ``linear`` or ``exponential``
    :param base_delay: the first delay
    :param max_delay: the longest delay
    """

    def __init__(
        self,
        strategy: str,
        base_delay: timedelta = timedelta(seconds=30),
        max_delay: timedelta = timedelta(minutes=30),
    ) -> None:
        self.strategy = strategy
        self.base_delay = base_delay
        self.max_delay = max_delay

    def delay(self, try_number: int) -> timedelta:
        """The delay before the retry that follows try ``try_number`` (1-based)."""
        tries = max(try_number, 1)
        if self.strategy == "linear":
            delay = self.base_delay * tries
        elif self.strategy == "exponential":
            delay = self.base_delay * (2 ** min(tries - 1, 30))
        else:
            delay = self.base_delay
        return min(delay, self.max_delay)

    def evaluate(
        self, exception: BaseException, try_number: int, max_tries: int, context: Any = None
    ) -> RetryDecision:
        """Fail configuration errors at once; retry anything else after the strategy's delay."""
        if isinstance(exception, MuxlyDatabaseSettingError):
            return RetryDecision.fail(
                reason="a settings error: retrying cannot help; fix the setting it names"
            )
        if isinstance(exception, NOT_RETRYABLE):
            return RetryDecision.fail(reason="a configuration error: retrying cannot help; fix the row")
        return RetryDecision.retry(delay=self.delay(try_number), reason=f"{self.strategy} backoff")

    def serialize(self) -> dict[str, Any]:
        """A JSON form of the policy."""
        return {
            "strategy": self.strategy,
            "base_delay": self.base_delay.total_seconds(),
            "max_delay": self.max_delay.total_seconds(),
        }

    @classmethod
    def deserialize(cls, data: dict[str, Any]) -> MuxlyTaskRetryPolicy:
        """Rebuild a policy written by :meth:`serialize`."""
        return cls(
            str(data["strategy"]),
            timedelta(seconds=float(data["base_delay"])),
            timedelta(seconds=float(data["max_delay"])),
        )
