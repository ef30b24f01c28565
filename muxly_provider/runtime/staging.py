"""Staged records of a run, between its extract task, its delivery tasks and its dead-letter task.

Everything lives under ``[muxly] staging_path`` (an ``ObjectStoragePath``: a local folder by default,
``s3://...`` when workers run on several machines), so any worker can read what another one wrote; nothing is
kept on a local disk between tasks. One folder per run::

    <dag id>/<run key>/
        shares/<destination key>/batch_000000.jsonl.gz ...  one destination's share, routed once by extract
        shares/<destination key>/manifest.json              that share's manifest
        export/batch_000000.jsonl.gz ...                    the records of an ``export`` job (one share for all)
        letters/<destination key>/...                       transformation failures for a dead-letter destination
        failed/<destination key>/batch_<n>.jsonl.gz         what a delivery try dead-lettered (records + error)
        results/<destination key>.json                      the counts of the delivery task's last finished try

Batches are gzip-compressed JSONL files of at most :data:`STAGED_BATCH_RECORDS` records; readers load one
batch at a time, so memory stays bounded by the batch size. The destination key is
:func:`~muxly_provider.dag_factory.naming.safe_id` of the destination id. XCom carries only the run manifest
(the folder, and per share its path, number of batches and records): its size grows with the number of
destinations, never with the data.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from typing import Any

from muxly_provider.dag_factory.naming import safe_id
from muxly_provider.destinations.base import Record, RunInfo

STAGED_BATCH_RECORDS = 5000
"""Records per staged file (each destination's buffer while extract routes)."""

Manifest = dict[str, Any]
"""A share's manifest: ``{"path": <folder under the run folder>, "batches": <count>, "records": <count>}``."""


def _root() -> Any:
    from airflow.sdk import ObjectStoragePath

    from muxly_provider import settings

    location = settings.staging_path()
    if "://" not in location:
        location = "file://" + location
    return ObjectStoragePath(location)


def run_folder(run: RunInfo) -> Any:
    """The folder of one run's staged records."""
    return _root() / run.dag_id / run.run_key


def open_run(uri: str) -> Any:
    """The run folder named in a run manifest."""
    from airflow.sdk import ObjectStoragePath

    return ObjectStoragePath(uri)


def destination_key(destination_id: str) -> str:
    """The folder name of a destination's staged files (stable, collision-free)."""
    return safe_id(destination_id)


def reset(folder: Any) -> None:
    """Remove ``folder`` when it exists (a retried task starts over)."""
    if folder.exists():
        folder.rmdir(recursive=True)


def write_batch(folder: Any, index: int, records: list[Record]) -> None:
    """Write one gzip JSONL batch file ``batch_<index>.jsonl.gz`` into ``folder`` (created when missing)."""
    folder.mkdir(parents=True, exist_ok=True)
    dumps = json.JSONEncoder(default=str, ensure_ascii=False).encode
    payload = "\n".join(map(dumps, records)) + "\n"
    with (folder / f"batch_{index:06d}.jsonl.gz").open("wb") as handle:
        handle.write(gzip.compress(payload.encode("utf-8"), compresslevel=1))


def read_batch(folder: Any, index: int) -> list[Record]:
    """One batch written by :func:`write_batch`."""
    with (folder / f"batch_{index:06d}.jsonl.gz").open("rb") as handle:
        text = gzip.decompress(handle.read()).decode("utf-8")
    loads = json.JSONDecoder().decode
    return [loads(line) for line in text.split("\n") if line]


def read_share(uri: str, manifest: Manifest) -> Iterator[list[Record]]:
    """The batches of a share, one at a time."""
    folder = open_run(uri) / manifest["path"]
    for index in range(int(manifest["batches"])):
        yield read_batch(folder, index)


def write_json(path: Any, data: Any) -> None:
    """Write a small JSON document (a manifest, a delivery result)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as handle:
        handle.write(json.dumps(data, sort_keys=True, default=str))


def read_json(path: Any) -> Any:
    """A document written by :func:`write_json`, or ``None`` when there is none."""
    if not path.exists():
        return None
    with path.open("r") as handle:
        return json.loads(handle.read())


class ShareWriter:
    """Buffers records per share while a run is routed and writes them as batch files.

    :param run_dir: the run folder
    :param kind: the sub-folder (``shares``, ``letters``)
    :param batch_records: records per staged file
    """

    def __init__(self, run_dir: Any, kind: str, batch_records: int = STAGED_BATCH_RECORDS) -> None:
        self.run_dir = run_dir
        self.kind = kind
        self.batch_records = batch_records
        self._buffers: dict[str, list[Record]] = {}
        self._manifests: dict[str, Manifest] = {}

    def _manifest(self, name: str) -> Manifest:
        manifest = self._manifests.get(name)
        if manifest is None:
            path = f"{self.kind}/{destination_key(name)}" if self.kind != "export" else "export"
            manifest = self._manifests[name] = {"path": path, "batches": 0, "records": 0}
            self._buffers[name] = []
        return manifest

    def add(self, name: str, records: list[Record]) -> None:
        """Append ``records`` to the share ``name``; write every full batch."""
        manifest = self._manifest(name)
        buffer = self._buffers[name]
        buffer.extend(records)
        manifest["records"] += len(records)
        size = self.batch_records
        while len(buffer) >= size:
            self._write(name, manifest, buffer[:size])
            del buffer[:size]

    def _write(self, name: str, manifest: Manifest, records: list[Record]) -> None:
        write_batch(self.run_dir / manifest["path"], manifest["batches"], records)
        manifest["batches"] += 1

    def close(self) -> dict[str, Manifest]:
        """Write what is left and each share's ``manifest.json``; return the manifests by share name."""
        for name, manifest in self._manifests.items():
            buffer = self._buffers[name]
            if buffer:
                self._write(name, manifest, buffer)
                buffer.clear()
            write_json(self.run_dir / manifest["path"] / "manifest.json", {"name": name, **manifest})
        return {name: dict(m) for name, m in sorted(self._manifests.items())}


def failed_folder(uri: str, destination_id: str) -> Any:
    """Where a delivery task stages the letters of its failed batches."""
    return open_run(uri) / "failed" / destination_key(destination_id)


def result_path(uri: str, destination_id: str) -> Any:
    """The delivery result of a destination (written when its delivery task's try finished)."""
    return open_run(uri) / "results" / f"{destination_key(destination_id)}.json"


def cleanup(uri: str) -> None:
    """Remove a run's staged records."""
    reset(open_run(uri))
