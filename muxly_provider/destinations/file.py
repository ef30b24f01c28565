"""The ``file`` destination: JSON, JSONL or CSV files, optionally gzip-compressed, written atomically.

One file per run and destination, named ``{file_prefix}_{stamp}_{run key}.{ext}`` where ``stamp`` follows
``rotation`` (``daily``: the run's date, ``hourly``: date and hour, otherwise date and time) and ``run key`` is a
hash of the DAG id and run id. With ``rotation: size`` a run writes parts of at most ``max_file_size_mb``
(checked after each batch), named ``..._{run key}_0001.{ext}``, ``_0002``, ...

Records go to hidden temporary files next to the target, which are renamed into place on commit: a retried
task overwrites its own files (and removes parts an earlier try wrote beyond the new last part), and never
leaves half a file or a duplicate.

A local ``output_dir`` (relative, absolute or ``file://``) must resolve, links followed, inside ``[muxly]
files_root``, and ``file_prefix`` is a plain name (:mod:`muxly_provider.security.paths`): checked when the row
is written, when the run starts and again before files are moved into place. ``output_dir`` may also be an
object-storage URL (``s3://bucket/path``, ``gs://...``; credentials from ``conn_id``, an Airflow connection):
files are written to a local temporary folder of the delivery task and uploaded on commit, one object per file,
with the same deterministic names. Each upload is all or nothing (a killed or failed try leaves no partial
object), and a retried delivery overwrites its objects and removes parts an earlier try wrote beyond its last.

CSV: the header is the fields of the first batch; when a later record brings a new field, its column is added
at the end and the file is rewritten once on commit with the full header (earlier rows get empty cells).
JSON objects and lists in CSV cells are written as JSON text.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import IO, Any

from muxly_provider.destinations.base import MuxlyDestination, Record
from muxly_provider.exceptions import MuxlyDestinationError
from muxly_provider.security.errors import MuxlyConfinementError
from muxly_provider.security.paths import check_file_name, ensure_inside, is_remote, local_path

_STAMPS = {"daily": "%Y%m%d", "hourly": "%Y%m%d_%H"}
_BUCKET_STORES = frozenset({"s3", "s3a", "s3n", "gs", "gcs"})
"""Object stores whose keys need no folders."""


def _json_default(value: Any) -> str:
    return str(value)


def _cells(records: list[Record]) -> list[Record]:
    """Records whose dict and list values are JSON text (only copied when a batch has such values)."""
    kinds = {type(v) for record in records for v in record.values()}
    if dict not in kinds and list not in kinds:
        return records
    return [
        {k: json.dumps(v, default=_json_default) if isinstance(v, dict | list) else v for k, v in r.items()}
        for r in records
    ]


class FileDestination(MuxlyDestination):
    """Write records to local files or object storage."""

    destination_type = "file"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        config = self.context.config
        self.file_format = str(config.get("file_format", "jsonl")).lower()
        if self.file_format not in {"json", "jsonl", "csv"}:
            raise MuxlyDestinationError(
                f"destination {self.context.id!r}: file_format {self.file_format!r} is not json, jsonl or csv"
            )
        self.compress = bool(config.get("compress", False))
        rotation = str(config.get("rotation", "none"))
        size_mb = config.get("max_file_size_mb")
        self.max_bytes = int(float(size_mb) * 1024 * 1024) if rotation == "size" and size_mb else None
        raw_dir = str(config.get("output_dir", "."))
        try:
            self.remote: str | None = raw_dir.rstrip("/") if is_remote(raw_dir) else None
            self.output_dir = (
                Path(tempfile.mkdtemp(prefix="muxly-file-"))
                if self.remote is not None
                else local_path(raw_dir, "output_dir")
            )
            prefix = check_file_name(str(config.get("file_prefix") or self.context.id), "file_prefix")
        except MuxlyConfinementError as exc:
            raise MuxlyDestinationError(
                f"destination {self.context.id!r}: {exc.field}: {exc.reason}"
            ) from None
        stamp = self.run.logical_date.strftime(_STAMPS.get(rotation, "%Y%m%dT%H%M%S"))
        self.suffix = f".{self.file_format}" + (".gz" if self.compress else "")
        self.stem = f"{prefix}_{stamp}_{self.run.run_key}"
        self.parts: list[Path] = []  # finished temporary parts (size rotation)
        self.path = self._target(1)
        self._tmp = self._temporary(self.path)
        self._handle: IO[str] | None = None
        self._part_records = 0
        self._columns: dict[str, None] = {}
        self._csv: csv.DictWriter[str] | None = None
        self._widened = False

    def _target(self, part: int) -> Path:
        name = f"{self.stem}_{part:04d}{self.suffix}" if self.max_bytes else f"{self.stem}{self.suffix}"
        return self.output_dir / name

    @staticmethod
    def _temporary(path: Path) -> Path:
        return path.with_name(f".{path.name}.tmp")

    def _open(self) -> IO[str]:
        if self._handle is None:
            try:
                self.output_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise MuxlyDestinationError(
                    f"destination {self.context.id!r}: cannot create {self.output_dir}: {exc.strerror}"
                ) from exc
            self._confined()
            if self.compress:
                self._handle = io.TextIOWrapper(gzip.open(self._tmp, "wb"), encoding="utf-8", newline="")  # noqa: SIM115
            else:
                self._handle = open(self._tmp, "w", encoding="utf-8", newline="")  # noqa: SIM115
            if self.file_format == "json":
                self._handle.write("[")
        return self._handle

    def _confined(self) -> None:
        """Check again that the local folder is inside ``files_root`` (a link may have appeared since)."""
        if self.remote is not None:
            return
        try:
            ensure_inside(self.output_dir, "output_dir")
        except MuxlyConfinementError as exc:
            raise MuxlyDestinationError(
                f"destination {self.context.id!r}: {exc.field}: {exc.reason}"
            ) from None

    def _write_csv(self, handle: IO[str], records: list[Record]) -> None:
        if self._csv is None:
            for record in records:
                self._columns.update(dict.fromkeys(record))
            self._csv = csv.DictWriter(handle, fieldnames=list(self._columns), extrasaction="ignore")
            self._csv.writeheader()
        columns = self._columns
        width = len(columns)
        for record in records:
            if len(record) > width or not record.keys() <= columns.keys():
                # A new field: its column goes at the end; the header is completed on commit.
                columns.update(dict.fromkeys(record))
                width = len(columns)
                self._csv.fieldnames = list(columns)
                self._widened = True
        self._csv.writerows(_cells(records))

    def write_batch(self, records: list[Record]) -> None:
        """Append ``records`` to the current temporary file (starting a new part past ``max_file_size_mb``)."""
        handle = self._open()
        if self.file_format == "csv":
            self._write_csv(handle, records)
        elif self.file_format == "jsonl":
            handle.writelines(
                json.dumps(r, default=_json_default, ensure_ascii=False) + "\n" for r in records
            )
        else:
            for record in records:
                handle.write(("," if self._part_records else "") + "\n")
                handle.write(json.dumps(record, default=_json_default, ensure_ascii=False))
                self._part_records += 1
        if self.file_format != "json":
            self._part_records += len(records)
        self.delivered += len(records)
        if self.max_bytes is not None:
            handle.flush()
            if self._tmp.stat().st_size >= self.max_bytes:
                self._finish_part()

    def _finish_part(self) -> None:
        handle = self._open()
        if self.file_format == "json":
            handle.write("\n]\n")
        handle.close()
        self._handle = None
        if self.file_format == "csv" and self._widened:
            self._complete_header(self._tmp)
        self.parts.append(self._tmp)
        self._tmp = self._temporary(self._target(len(self.parts) + 1))
        self._part_records = 0
        self._csv = None
        self._columns = {}
        self._widened = False

    def _complete_header(self, path: Path) -> None:
        """Rewrite a CSV file whose later rows have more columns than its header."""
        opener: Any = gzip.open if self.compress else open
        rewritten = path.with_name(path.name + ".full")
        columns = list(self._columns)
        with (
            opener(path, "rt", encoding="utf-8", newline="") as source,
            opener(rewritten, "wt", encoding="utf-8", newline="") as target,
        ):
            reader = csv.reader(source)
            writer = csv.writer(target)
            next(reader, None)
            writer.writerow(columns)
            padding = [""] * len(columns)
            for row in reader:
                writer.writerow(row + padding[len(row) :])
        os.replace(rewritten, path)

    def _final_names(self) -> list[Path]:
        return [self._target(index) for index in range(1, len(self.parts) + 1)]

    def commit(self) -> list[str]:
        """Finish the temporary files and move (or upload) them into place."""
        if self._handle is not None or not self.parts:
            self._finish_part()
        finals = self._final_names()
        if self.remote is not None:
            return self._upload(finals)
        self._confined()
        for temporary, final in zip(self.parts, finals, strict=True):
            os.replace(temporary, final)
        if self.max_bytes is not None:
            # Parts an earlier try of this run wrote beyond this try's last part.
            for stale in self.output_dir.glob(f"{self.stem}_*{self.suffix}"):
                if stale not in finals:
                    stale.unlink(missing_ok=True)
        self.parts = []
        return [str(path) for path in finals]

    def _upload(self, finals: list[Path]) -> list[str]:
        """Upload each finished file as one object (all or nothing per object: a killed or failed upload
        leaves no partial object), then remove parts an earlier try wrote beyond this try's last part."""
        from airflow.sdk import ObjectStoragePath

        conn_id = self.context.config.get("conn_id")
        remote = str(self.remote)
        folder = ObjectStoragePath(remote, conn_id=conn_id) if conn_id else ObjectStoragePath(remote)
        urls = []
        try:
            if folder.protocol not in _BUCKET_STORES:  # there mkdir would create a missing (mistyped) bucket
                folder.mkdir(parents=True, exist_ok=True)
            for temporary, final in zip(self.parts, finals, strict=True):
                target = folder / final.name
                # put_file sends the whole file (one PUT, or a multipart upload completed only at its end and
                # aborted on error), unlike a stream whose close on error would store what was written so far.
                target.fs.put_file(str(temporary), target.path)
                urls.append(str(target))
            if self.max_bytes is not None:
                names = {final.name for final in finals}
                for stale in folder.glob(f"{self.stem}_*{self.suffix}"):
                    if stale.name not in names:
                        stale.unlink()
        except Exception as exc:
            raise self.fail(f"upload to {self.remote} failed ({self.describe(exc)})") from None
        finally:
            shutil.rmtree(self.output_dir, ignore_errors=True)
        self.parts = []
        return urls

    def abort(self) -> None:
        """Remove the temporary files."""
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        for temporary in [*self.parts, self._tmp]:
            temporary.unlink(missing_ok=True)
        self.parts = []
        if self.remote is not None:
            shutil.rmtree(self.output_dir, ignore_errors=True)
