"""The destination contract: open once per run, receive batches, commit on close (or abort).

The runner (:mod:`muxly_provider.runtime.runner`) cuts each destination's records into batches of the
destination's ``batch_size``, calls :meth:`MuxlyDestination.write_batch` for each one (retrying a failed batch
``retry_count`` times with exponential backoff, unless the error is permanent or the destination retries by
itself) and finally :meth:`MuxlyDestination.commit`. A batch that still fails goes to the dead-letter store.

Errors raised by destinations name the destination and never carry a secret: see :meth:`MuxlyDestination.fail`.
"""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, TypeVar
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from muxly_provider.exceptions import MuxlyDestinationError

Record = dict[str, Any]

DEFAULT_BATCH_SIZE = 500
DEFAULT_RETRY_COUNT = 2
DEFAULT_RETRY_BACKOFF_SECONDS = 1.0

_ConfigT = TypeVar("_ConfigT", bound=BaseModel)


class MuxlyDeliveryError(MuxlyDestinationError):
    """A batch could not be delivered.

    :param message: what went wrong (already naming the destination, never holding a secret)
    :param retryable: whether trying the same batch again may succeed (``False`` for a 4xx answer, a bad
        template, a missing column, ...)
    :param delivered: how many records at the start of the batch were delivered before the failure
    """

    def __init__(self, message: str, *, retryable: bool = True, delivered: int = 0) -> None:
        super().__init__(message)
        self.retryable = retryable
        self.delivered = delivered


@dataclass(frozen=True)
class RunInfo:
    """The Airflow run a delivery belongs to (used for deterministic, retry-safe output names).

    :param dag_id: the job's DAG id
    :param run_id: the DAG run id
    :param job_id: the job's id
    :param connector_id: the job's connector id
    :param logical_date: the run's logical date, or its start when it has none
    """

    dag_id: str
    run_id: str
    job_id: str
    connector_id: str
    logical_date: datetime

    @property
    def run_key(self) -> str:
        """A short stable key of the run: the same run (and its retries) always gets the same key."""
        return hashlib.sha256(f"{self.dag_id}\n{self.run_id}".encode()).hexdigest()[:12]


@dataclass(frozen=True)
class DestinationContext:
    """A destination row ready to run: secrets decrypted, ``config`` parsed and validated."""

    id: str
    name: str
    destination_type: str
    config: Mapping[str, Any] = field(default_factory=dict)


def secret_fragments(config: Mapping[str, Any]) -> list[str]:
    """The secret strings of a destination ``config``, plus the parts of secret URLs a library may quote.

    A client library's error often shows only a URL's path (``/services/T0/B0/XYZ``) or its password, not the
    whole URL: those parts are secrets too. Fragments shorter than 6 characters are left out (redacting ``/``
    would garble every message).

    :param config: the decrypted ``config`` of a destination
    """
    from muxly_provider.crypto import secret_values

    fragments: set[str] = set()
    for value in secret_values("destinations", {"config": dict(config)}):
        fragments.add(value)
        if "://" in value:
            parts = urlsplit(value)
            fragments.update({parts.path, parts.query, parts.password or "", parts.netloc})
            if parts.path:
                fragments.add(parts.path + ("?" + parts.query if parts.query else ""))
    return sorted((f for f in fragments if len(f) >= 6), key=len, reverse=True)


def redact(text: str, fragments: Iterable[str]) -> str:
    """``text`` with every secret fragment replaced by ``***``."""
    for fragment in fragments:
        text = text.replace(fragment, "***")
    return text


class MuxlyDestination(ABC):
    """Base class of every destination type.

    :param context: the destination's validated configuration
    :param run: the run being delivered
    """

    destination_type: ClassVar[str]
    idempotent: bool = True
    """Whether delivering the same run twice leaves the target as delivering it once (files, upserts, keys)."""
    retries_itself: ClassVar[bool] = False
    """Whether :meth:`write_batch` already retries (the runner then tries each batch once)."""

    def __init__(self, context: DestinationContext, run: RunInfo) -> None:
        self.context = context
        self.run = run
        self.delivered = 0
        self.batch_index = 0
        """The number of the batch being written: the runner sets it before each :meth:`write_batch` (a retry
        of a batch gets the same number), and destinations advance it after a successful write."""
        self._secrets = secret_fragments(context.config)

    @property
    def batch_size(self) -> int:
        """Records per :meth:`write_batch` call (``batch_size`` of the config)."""
        return max(1, int(self.context.config.get("batch_size") or DEFAULT_BATCH_SIZE))

    @property
    def retry_count(self) -> int:
        """How many times the runner tries a failed batch again (``retry_count`` of the config)."""
        value = self.context.config.get("retry_count")
        return DEFAULT_RETRY_COUNT if value is None else max(0, int(value))

    @property
    def retry_backoff_seconds(self) -> float:
        """The first delay between tries; it doubles after each try (``retry_backoff_seconds``)."""
        value = self.context.config.get("retry_backoff_seconds")
        return DEFAULT_RETRY_BACKOFF_SECONDS if value is None else max(0.0, float(value))

    def parse_config(self, model: type[_ConfigT]) -> _ConfigT:
        """The config as its pydantic model (defaults applied).

        :raises MuxlyDeliveryError: naming the destination and the field (never a value)
        """
        try:
            return model.model_validate(dict(self.context.config))
        except ValidationError as exc:
            fields = ", ".join(".".join(str(p) for p in err["loc"]) or "config" for err in exc.errors())
            raise self.fail(f"invalid config ({fields})", retryable=False) from None

    def fail(self, message: str, *, retryable: bool = True) -> MuxlyDeliveryError:
        """An error naming this destination, with secrets of its config redacted from ``message``."""
        text = redact(f"destination {self.context.id!r} ({self.destination_type}): {message}", self._secrets)
        return MuxlyDeliveryError(text, retryable=retryable)

    def describe(self, exc: BaseException) -> str:
        """A library exception as text safe for logs and results (secrets redacted)."""
        return redact(f"{type(exc).__name__}: {exc}", self._secrets)

    @abstractmethod
    def write_batch(self, records: list[Record]) -> None:
        """Deliver one batch (may buffer; nothing is final before :meth:`commit`)."""

    @abstractmethod
    def commit(self) -> list[str]:
        """Make the delivery final and return where it went (paths, URLs, table names)."""

    def abort(self) -> None:  # noqa: B027 - optional hook
        """Throw away whatever :meth:`write_batch` left unfinished."""
