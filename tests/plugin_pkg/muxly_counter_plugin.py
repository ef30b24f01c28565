"""A connector plugin installed by the tests through a real ``muxly.connectors`` entry point.

``connection_settings``: ``count`` (records to generate) and ``prefix``; ``data_spec.start`` shifts the ids.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from muxly_provider.connectors.base import MuxlyConnector, Record


class CounterConnector(MuxlyConnector):
    """Generate ``count`` records ``{"n": i, "label": "<prefix>-<i>"}``."""

    connector_type = "plugin:counter"

    def fetch(self, data_spec: Mapping[str, Any]) -> Iterator[list[Record]]:
        start = int(data_spec.get("start", 0))
        count = int(self.context.settings.get("count", 10))
        prefix = str(self.context.settings.get("prefix", "n"))
        batch: list[Record] = []
        for i in range(start, start + count):
            batch.append({"n": i, "label": f"{prefix}-{i}"})
            if len(batch) >= self.batch_size:
                yield batch
                batch = []
        if batch:
            yield batch


class NotAConnector:
    """Registered under a second name to show that the registry refuses classes of the wrong kind."""
