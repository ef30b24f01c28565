"""Staged records between a job's extract task and its delivery tasks (ARCHITECTURE 5).

The extract task writes the connector's batches as gzip-compressed JSONL files under ``[muxly] staging_path``
(an ``ObjectStoragePath``: a local folder by default, ``s3://...`` when workers run on several machines), one
folder per run, and pushes a small manifest to XCom. Each delivery task reads the batches back one at a time, so
memory stays bounded by the batch size. The cleanup task removes the folder after the run succeeded.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterable, Iterator
from typing import Any

from muxly_provider.destinations.base import Record, RunInfo


def _root(base: str | None = None) -> Any:
    from airflow.sdk import ObjectStoragePath

    from muxly_provider import settings

    location = base or settings.staging_path()
    if "://" not in location:
        location = "file://" + location
    return ObjectStoragePath(location)


def run_folder(run: RunInfo) -> Any:
    """The folder of one run's staged batches."""
    return _root() / run.dag_id / run.run_key


def stage(batches: Iterable[list[Record]], run: RunInfo) -> dict[str, Any]:
    """Write ``batches`` under the run's folder; return the manifest (what XCom carries)."""
    folder = run_folder(run)
    if folder.exists():
        folder.rmdir(recursive=True)  # a retried extract starts over
    folder.mkdir(parents=True, exist_ok=True)
    names: list[str] = []
    records = 0
    for index, batch in enumerate(batches):
        name = f"batch_{index:06d}.jsonl.gz"
        payload = "".join(json.dumps(r, default=str, ensure_ascii=False) + "\n" for r in batch)
        with (folder / name).open("wb") as handle:
            handle.write(gzip.compress(payload.encode("utf-8"), compresslevel=1))
        names.append(name)
        records += len(batch)
    return {"uri": str(folder), "batches": names, "records_in": records}


def read_batches(manifest: dict[str, Any]) -> Iterator[list[Record]]:
    """The staged batches of a manifest, one at a time."""
    from airflow.sdk import ObjectStoragePath

    folder = ObjectStoragePath(manifest["uri"])
    for name in manifest["batches"]:
        with (folder / name).open("rb") as handle:
            text = gzip.decompress(handle.read()).decode("utf-8")
        yield [json.loads(line) for line in text.splitlines() if line]


def cleanup(manifest: dict[str, Any]) -> None:
    """Remove a run's staged batches."""
    from airflow.sdk import ObjectStoragePath

    folder = ObjectStoragePath(manifest["uri"])
    if folder.exists():
        folder.rmdir(recursive=True)
