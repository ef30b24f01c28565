"""Preview runs: what a job's run would deliver, per destination, without writing or recording anything.

Used by ``airflow muxly jobs preview`` and ``POST /muxly/api/v1/jobs/{id}/preview`` (``docs/jobs.md``,
"Preview a run").
"""

from __future__ import annotations

from muxly_provider.preview.job import (
    DEFAULT_LIMIT,
    MAX_RECORDS,
    PREVIEW_SECONDS,
    MuxlyPreviewError,
    lookup_connector_ids,
    preview_job,
)
from muxly_provider.preview.results import SHOWN

__all__ = [
    "DEFAULT_LIMIT",
    "MAX_RECORDS",
    "PREVIEW_SECONDS",
    "SHOWN",
    "MuxlyPreviewError",
    "lookup_connector_ids",
    "preview_job",
]
