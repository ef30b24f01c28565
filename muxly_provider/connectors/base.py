"""The connector contract: a connector turns one action of a job into a stream of record batches."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

from muxly_provider.exceptions import MuxlyConnectorError

Record = dict[str, Any]


@dataclass(frozen=True)
class ConnectorContext:
    """A connector row ready to run: secrets decrypted, JSON columns parsed and validated.

    :param id: the connector's id (named in every error)
    :param name: its display name
    :param connector_type: its type, the registry key
    :param auth: ``auth_settings`` as a dict (``auth_type`` and ``params``)
    :param settings: ``connection_settings`` as a dict
    """

    id: str
    name: str
    connector_type: str
    auth: Mapping[str, Any] = field(default_factory=dict)
    settings: Mapping[str, Any] = field(default_factory=dict)


class MuxlyConnector(ABC):
    """Base class of every connector type (also the base class for ``plugin:<name>`` connectors).

    A subclass sets ``connector_type``, lists the job actions it can run in ``supported_actions`` (``query``
    only when it can run a query given as ``data_spec["query"]`` with ``data_spec["parameters"]``) and
    implements :meth:`fetch`. ``data_spec`` also carries ``variables`` (Muxly's date variables of the run)
    and ``run_params`` of the job when it has any.

    :param context: the connector's validated configuration
    :param batch_size: the largest number of records yielded at once
    """

    connector_type: ClassVar[str]
    supported_actions: ClassVar[frozenset[str]] = frozenset({"sync", "export", "pipeline"})

    def __init__(self, context: ConnectorContext, *, batch_size: int = 1000) -> None:
        self.context = context
        self.batch_size = batch_size

    @abstractmethod
    def fetch(self, data_spec: Mapping[str, Any]) -> Iterator[list[Record]]:
        """Yield the records of one run in batches of at most ``batch_size``.

        :param data_spec: what the job asks for (``action_params.data_spec``), date variables resolved
        """

    def test_connection(self) -> str:
        """Check reachability and credentials; return what was checked.

        The default fetches the first batch of an empty ``data_spec``; connector types override it with a
        cheaper probe.

        :raises MuxlyConnectorError: saying what is wrong
        """
        batches = self.fetch({})
        try:
            first = next(iter(batches), [])
        finally:
            close = getattr(batches, "close", None)
            if close is not None:
                close()
            self.close()
        return f"{self.connector_type} connector {self.context.id!r}: fetched {len(first)} record(s)"

    def error(self, message: str) -> MuxlyConnectorError:
        """An error naming this connector (messages must never hold a secret)."""
        return MuxlyConnectorError(f"connector {self.context.id!r}: {message}")

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections (called once the run has consumed every batch)."""
