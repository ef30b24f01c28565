"""The destination contract: open once per run, receive batches, commit on close (or abort)."""

from __future__ import annotations

import hashlib
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar

Record = dict[str, Any]


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


class MuxlyDestination(ABC):
    """Base class of every destination type.

    :param context: the destination's validated configuration
    :param run: the run being delivered
    """

    destination_type: ClassVar[str]

    def __init__(self, context: DestinationContext, run: RunInfo) -> None:
        self.context = context
        self.run = run
        self.delivered = 0

    @abstractmethod
    def write_batch(self, records: list[Record]) -> None:
        """Deliver one batch (may buffer; nothing is final before :meth:`commit`)."""

    @abstractmethod
    def commit(self) -> list[str]:
        """Make the delivery final and return where it went (paths, URLs, table names)."""

    def abort(self) -> None:  # noqa: B027 - optional hook
        """Throw away whatever :meth:`write_batch` left unfinished."""
