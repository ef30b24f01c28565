"""The ``file`` destination: JSON, JSONL or CSV files, optionally gzip-compressed, written atomically.

One file per run and destination, named ``{file_prefix}_{stamp}_{run key}.{ext}`` where ``stamp`` follows
``rotation`` (``daily``: the run's date, ``hourly``: date and hour, otherwise date and time) and ``run key`` is a
hash of the DAG id and run id. Records go to a hidden temporary file next to the target, which is renamed into
place on commit: a retried task overwrites its own file and never leaves half a file or a duplicate.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any

from muxly_provider import settings
from muxly_provider.destinations.base import MuxlyDestination, Record
from muxly_provider.exceptions import MuxlyDestinationError

_STAMPS = {"daily": "%Y%m%d", "hourly": "%Y%m%d_%H"}


def _json_default(value: Any) -> str:
    return str(value)


class FileDestination(MuxlyDestination):
    """Write records to a local file."""

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
        output_dir = Path(str(config.get("output_dir", ".")))
        self.output_dir = output_dir if output_dir.is_absolute() else settings.files_root() / output_dir
        stamp = self.run.logical_date.strftime(
            _STAMPS.get(str(config.get("rotation", "none")), "%Y%m%dT%H%M%S")
        )
        prefix = str(config.get("file_prefix") or self.context.id)
        suffix = f".{self.file_format}" + (".gz" if self.compress else "")
        self.path = self.output_dir / f"{prefix}_{stamp}_{self.run.run_key}{suffix}"
        self._tmp = self.output_dir / f".{self.path.name}.tmp"
        self._handle: IO[str] | None = None
        self._columns: dict[str, None] = {}
        self._spool: IO[str] | None = None

    def _open(self) -> IO[str]:
        if self._handle is None:
            try:
                self.output_dir.mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise MuxlyDestinationError(
                    f"destination {self.context.id!r}: cannot create {self.output_dir}: {exc.strerror}"
                ) from exc
            if self.compress:
                self._handle = io.TextIOWrapper(gzip.open(self._tmp, "wb"), encoding="utf-8", newline="")  # noqa: SIM115
            else:
                self._handle = open(self._tmp, "w", encoding="utf-8", newline="")  # noqa: SIM115
            if self.file_format == "json":
                self._handle.write("[")
        return self._handle

    def write_batch(self, records: list[Record]) -> None:
        """Append ``records`` to the temporary file (CSV keeps them until the header is known)."""
        handle = self._open()
        if self.file_format == "csv":
            # The header is the union of all fields, known only at the end: spool to disk, not to memory.
            if self._spool is None:
                self._spool = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115
            for record in records:
                self._columns.update(dict.fromkeys(record))
                self._spool.write(json.dumps(record, default=_json_default, ensure_ascii=False) + "\n")
        elif self.file_format == "jsonl":
            handle.writelines(
                json.dumps(r, default=_json_default, ensure_ascii=False) + "\n" for r in records
            )
        else:
            for record in records:
                handle.write(("," if self.delivered else "") + "\n")
                handle.write(json.dumps(record, default=_json_default, ensure_ascii=False))
                self.delivered += 1
            return
        self.delivered += len(records)

    def _write_csv(self, handle: IO[str]) -> None:
        writer = csv.DictWriter(handle, fieldnames=list(self._columns), extrasaction="ignore")
        writer.writeheader()
        if self._spool is None:
            return
        self._spool.seek(0)
        for line in self._spool:
            record = json.loads(line)
            writer.writerow(
                {
                    k: json.dumps(v, default=_json_default) if isinstance(v, (dict, list)) else v
                    for k, v in record.items()
                }
            )
        self._spool.close()
        self._spool = None

    def commit(self) -> list[str]:
        """Finish the temporary file and move it into place."""
        handle = self._open()
        if self.file_format == "csv":
            self._write_csv(handle)
        elif self.file_format == "json":
            handle.write("\n]\n")
        handle.close()
        self._handle = None
        os.replace(self._tmp, self.path)
        return [str(self.path)]

    def abort(self) -> None:
        """Remove the temporary file."""
        if self._spool is not None:
            self._spool.close()
            self._spool = None
        if self._handle is not None:
            self._handle.close()
            self._handle = None
        self._tmp.unlink(missing_ok=True)
