"""Staged records of a run, between its extract task, its delivery tasks and its dead-letter task.

Everything lives under ``[muxly] staging_path`` (an ``ObjectStoragePath``: a local folder by default,
``s3://...`` when workers run on several machines, through the Airflow connection ``[muxly] staging_conn_id``),
so any worker can read what another one wrote; nothing is kept on a local disk between tasks. One folder per
run::

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

The manifest names the run folder by its plain URL, never with a connection: the reading worker attaches its
own ``staging_conn_id`` (:func:`open_run`) and refuses a folder that is not below its own ``staging_path``, so a
manifest cannot make a task read or delete elsewhere. Staging on S3 needs the ``airflow-provider-muxly[s3]``
extra; errors of the store name ``staging_path`` and ``staging_conn_id`` (:class:`MuxlyStagingError`).
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import importlib
import json
import os
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from muxly_provider.dag_factory.naming import safe_id
from muxly_provider.destinations.base import Record, RunInfo
from muxly_provider.exceptions import MuxlyError

STAGED_BATCH_RECORDS = 5000
"""Records per staged file (each destination's buffer while extract routes)."""

Manifest = dict[str, Any]
"""A share's manifest: ``{"path": <folder under the run folder>, "batches": <count>, "records": <count>}``."""


class MuxlyStagingError(MuxlyError):
    """Staging cannot be reached or used from this machine; the message names ``[muxly] staging_path`` and
    ``staging_conn_id`` (or the missing extra)."""


S3_SCHEMES = frozenset({"s3", "s3a", "s3n"})
S3_EXTRA = "airflow-provider-muxly[s3]"


def _settings() -> tuple[str, str | None]:
    from muxly_provider import settings

    location = settings.staging_path()
    if "://" not in location:  # a local folder (made absolute: "file://" + a relative path names a host)
        location = "file://" + os.path.abspath(os.path.expanduser(location))
    return location, settings.staging_conn_id()


def _describe_setting(location: str, conn_id: str | None) -> str:
    conn = f"staging_conn_id = {conn_id!r}" if conn_id else "staging_conn_id unset"
    return f"[muxly] staging_path = {location!r}, {conn}"


def _require_filesystem(location: str, conn_id: str | None) -> None:
    """Fail with the extra to install when ``location`` is on S3 and the S3 filesystem is missing."""
    if urlsplit(location).scheme.lower() not in S3_SCHEMES:
        return
    try:
        for module in ("s3fs", "airflow.providers.amazon.aws.fs.s3"):
            importlib.import_module(module)
    except ImportError as exc:
        raise MuxlyStagingError(
            f"{_describe_setting(location, conn_id)}: staging on S3 needs the s3 extra, "
            f"pip install '{S3_EXTRA}' (apache-airflow-providers-amazon with s3fs); "
            f"missing here: {exc.name or exc}"
        ) from None


@functools.lru_cache(maxsize=8)
def _checked_connection(conn_id: str) -> None:
    """Fail when ``conn_id`` names no Airflow connection (the S3 filesystem would silently go anonymous)."""
    from airflow.sdk import BaseHook

    try:
        BaseHook.get_connection(conn_id)
    except Exception as exc:
        raise MuxlyStagingError(
            f"[muxly] staging_conn_id = {conn_id!r}: no such Airflow connection here ({type(exc).__name__}); "
            f"define it on every machine (AIRFLOW_CONN_{conn_id.upper()} or a secrets backend; a connection "
            "stored in Airflow's database is read by tasks, not by other processes such as a CLI)"
        ) from None


def _root() -> Any:
    """The staging root, ``[muxly] staging_path`` with ``[muxly] staging_conn_id``'s connection."""
    from airflow.sdk import ObjectStoragePath

    location, conn_id = _settings()
    _require_filesystem(location, conn_id)
    if conn_id:
        _checked_connection(conn_id)
        return ObjectStoragePath(location, conn_id=conn_id)
    return ObjectStoragePath(location)


def uri_of(folder: Any) -> str:
    """The plain URL of a staging folder, for a run manifest (never the connection: readers use their own)."""
    return f"{folder.protocol or 'file'}://{folder.path}"


def _segments(path: str) -> list[str]:
    return [part for part in path.split("/") if part]


@contextlib.contextmanager
def _errors(action: str, where: Any) -> Iterator[None]:
    """Turn a filesystem error into a :class:`MuxlyStagingError` naming the staging settings."""
    try:
        yield
    except MuxlyError:
        raise
    except Exception as exc:
        location, conn_id = _settings()
        raise MuxlyStagingError(
            f"staging: cannot {action} {uri_of(where)} ({type(exc).__name__}: {exc}); check "
            f"{_describe_setting(location, conn_id)}: is the store reachable from this machine, does the "
            "bucket exist, and are the connection's credentials right?"
        ) from exc


def run_folder(run: RunInfo) -> Any:
    """The folder of one run's staged records."""
    return _root() / run.dag_id / run.run_key


def run_uri(run: RunInfo) -> str:
    """The URL of a run folder as a run manifest carries it (:func:`open_run` reads it back)."""
    return uri_of(run_folder(run))


def open_run(uri: str) -> Any:
    """The run folder named in a run manifest, with this machine's ``staging_conn_id``.

    :raises MuxlyStagingError: when ``uri`` is not a folder below this machine's ``[muxly] staging_path`` (a
        manifest never chooses where a task reads or deletes, nor with which connection)
    """
    from airflow.sdk import ObjectStoragePath

    root = _root()
    parts = urlsplit(uri)
    netloc = parts.netloc.rpartition("@")[2]  # a connection named in the URL is never used
    plain = urlunsplit((parts.scheme, netloc, parts.path, "", ""))
    folder = ObjectStoragePath(plain, conn_id=root.conn_id) if root.conn_id else ObjectStoragePath(plain)
    inside, below = _segments(root.path), _segments(folder.path)
    if (
        (folder.protocol or "file") != (root.protocol or "file")
        or parts.query
        or parts.fragment
        or any(part in {".", ".."} for part in below)
        or len(below) <= len(inside)
        or below[: len(inside)] != inside
    ):
        location, conn_id = _settings()
        raise MuxlyStagingError(
            f"run manifest folder {uri_of(folder)!r} is not below this machine's "
            f"{_describe_setting(location, conn_id)}: every worker needs the same staging_path"
        )
    return folder


def probe() -> str:
    """Write, read and remove a small object under the staging root; return the root's URL.

    :raises MuxlyStagingError: naming the settings when staging is not readable and writable from here
    """
    root = _root()
    path = root / ".muxly-probe" / f"{uuid.uuid4().hex}.json"
    with _errors("write", path):
        make_folder(path.parent)
        with path.open("w") as handle:
            handle.write('{"probe": true}')
    with _errors("read", path), path.open("r") as handle:
        if json.loads(handle.read()) != {"probe": True}:
            raise MuxlyStagingError(f"staging: {uri_of(path)} did not read back what was written")
    with _errors("remove", path):
        path.unlink()
    return uri_of(root)


def child(folder: Any, relative: str) -> Any:
    """``folder / relative`` for a relative path read from a manifest (no ``..``: it stays inside ``folder``)."""
    parts = _segments(relative)
    if (
        not parts
        or any(part in {".", ".."} for part in parts)
        or relative.startswith("/")
        or "\\" in relative
    ):
        raise MuxlyStagingError(f"run manifest share path {relative!r} is not a plain relative path")
    return folder.joinpath(*parts)


def destination_key(destination_id: str) -> str:
    """The folder name of a destination's staged files (stable, collision-free)."""
    return safe_id(destination_id)


def reset(folder: Any) -> None:
    """Remove ``folder`` when it exists (a retried task starts over)."""
    with _errors("remove", folder):
        if folder.exists():
            folder.rmdir(recursive=True)


def make_folder(folder: Any) -> None:
    """Create a local folder; nothing on object storage, where keys need no folders (and where s3fs would
    create a missing bucket: a mistyped ``staging_path`` must fail, not create one)."""
    if (folder.protocol or "file") in {"file", "local"}:
        with _errors("create", folder):
            folder.mkdir(parents=True, exist_ok=True)


def remove_file(path: Any) -> None:
    """Remove the file ``path`` when it exists."""
    with _errors("remove", path):
        if path.exists():
            path.unlink()


def write_batch(folder: Any, index: int, records: list[Record]) -> None:
    """Write one gzip JSONL batch file ``batch_<index>.jsonl.gz`` into ``folder`` (created when missing)."""
    dumps = json.JSONEncoder(default=str, ensure_ascii=False).encode
    payload = gzip.compress(("\n".join(map(dumps, records)) + "\n").encode("utf-8"), compresslevel=1)
    path = folder / f"batch_{index:06d}.jsonl.gz"
    with _errors("write", path):
        make_folder(folder)
        with path.open("wb") as handle:
            handle.write(payload)


def read_batch(folder: Any, index: int) -> list[Record]:
    """One batch written by :func:`write_batch`."""
    path = folder / f"batch_{index:06d}.jsonl.gz"
    with _errors("read", path), path.open("rb") as handle:
        data = handle.read()
    text = gzip.decompress(data).decode("utf-8")
    loads = json.JSONDecoder().decode
    return [loads(line) for line in text.split("\n") if line]


def read_share(uri: str, manifest: Manifest) -> Iterator[list[Record]]:
    """The batches of a share, one at a time."""
    folder = child(open_run(uri), str(manifest["path"]))
    for index in range(int(manifest["batches"])):
        yield read_batch(folder, index)


def write_json(path: Any, data: Any) -> None:
    """Write a small JSON document (a manifest, a delivery result)."""
    text = json.dumps(data, sort_keys=True, default=str)
    with _errors("write", path):
        make_folder(path.parent)
        with path.open("w") as handle:
            handle.write(text)


def read_json(path: Any) -> Any:
    """A document written by :func:`write_json`, or ``None`` when there is none."""
    with _errors("read", path):
        if not path.exists():
            return None
        with path.open("r") as handle:
            text = handle.read()
    return json.loads(text)


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
