"""The ``file`` connector: records from CSV, JSON or JSONL files, local or in object storage.

``path`` names one file, ``glob`` a pattern (``*``, ``?``, ``[...]``, ``**``); both may be local paths
(relative ones resolve against ``[muxly] files_root``) or object-storage URLs (``s3://``, ``gs://``,
``file://``, ...) opened through Airflow's :class:`~airflow.sdk.ObjectStoragePath` (credentials come from the
``conn_id`` option, an Airflow connection, as Airflow's object storage does). ``data_spec.path`` or
``data_spec.glob`` overrides the setting for one run. Matching files are read in sorted order.

``compression`` is ``infer`` (from the suffix: ``.gz``, ``.bz2``, ``.xz``, ``.zip``), ``none`` or a codec.
CSV rows become records of strings (the header names the fields); JSONL is read line by line; a JSON file
holds a list of objects (or one object) and is decoded whole, so big data belongs in JSONL or CSV.
"""

from __future__ import annotations

import bz2
import csv
import gzip
import io
import json
import lzma
import re
import zipfile
from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from typing import IO, Any

from muxly_provider.connectors.base import MuxlyConnector, Record

_SUFFIXES = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bz2", ".xz": "xz", ".zip": "zip"}
_WILDCARD = re.compile(r"[*?\[]")


class FileConnector(MuxlyConnector):
    """Read records from files matched by ``path`` or ``glob``."""

    connector_type = "file"

    def _resolve(self, location: str) -> Any:
        from airflow.sdk import ObjectStoragePath

        from muxly_provider import settings

        conn_id = self.context.settings.get("conn_id")
        if "://" in location:
            return ObjectStoragePath(location, conn_id=conn_id) if conn_id else ObjectStoragePath(location)
        if not location.startswith("/"):
            location = str(settings.files_root() / location)
        return ObjectStoragePath(f"file://{location}")

    def files(self, data_spec: Mapping[str, Any]) -> list[Any]:
        """The files of this run, sorted (an error when none match)."""
        options = self.context.settings
        path = data_spec.get("path") or (None if data_spec.get("glob") else options.get("path"))
        pattern = data_spec.get("glob") or (None if path else options.get("glob"))
        if path:
            target = self._resolve(str(path))
            if not target.is_file():
                raise self.error(f"file {str(path)!r} does not exist")
            return [target]
        if not pattern:
            raise self.error("set 'path' or 'glob'")
        text = str(pattern)
        match = _WILDCARD.search(text)
        if match is None:
            return self.files({"path": text})
        cut = text.rfind("/", 0, match.start())
        base, relative = (text[: cut + 1] or "/", text[cut + 1 :]) if cut >= 0 else (".", text)
        try:
            found = sorted((p for p in self._resolve(base).glob(relative) if p.is_file()), key=str)
        except (OSError, ValueError) as exc:
            raise self.error(f"cannot list {base!r}: {type(exc).__name__}") from None
        if not found:
            raise self.error(f"no file matches {text!r}")
        return found

    def fetch(self, data_spec: Mapping[str, Any]) -> Iterator[list[Record]]:
        """Yield the records of every matching file, in batches."""
        batch: list[Record] = []
        for file in self.files(data_spec):
            for record in self._records(file):
                batch.append(record)
                if len(batch) >= self.batch_size:
                    yield batch
                    batch = []
        if batch:
            yield batch

    def _records(self, file: Any) -> Iterator[Record]:
        fmt = str(self.context.settings.get("format") or "jsonl")
        name = file.name
        with ExitStack() as stack:
            try:
                raw: IO[bytes] = stack.enter_context(file.open("rb"))
                streams = list(self._decompress(raw, name, stack))
            except (OSError, zipfile.BadZipFile) as exc:
                raise self.error(f"cannot open {name!r}: {type(exc).__name__}") from None
            for member, stream in streams:
                label = f"{name}!{member}" if member else name
                try:
                    yield from self._parse(fmt, stream, label)
                except (OSError, EOFError, UnicodeDecodeError, csv.Error) as exc:
                    raise self.error(f"cannot read {label!r}: {type(exc).__name__}") from None

    def _decompress(self, raw: IO[bytes], name: str, stack: ExitStack) -> Iterator[tuple[str, IO[bytes]]]:
        codec = str(self.context.settings.get("compression") or "infer")
        if codec == "infer":
            suffix = name[name.rfind(".") :].lower() if "." in name else ""
            codec = _SUFFIXES.get(suffix, "none")
        openers: dict[str, Any] = {"gzip": gzip.open, "bz2": bz2.open, "xz": lzma.open}
        if codec in openers:
            yield "", stack.enter_context(openers[codec](raw, "rb"))
        elif codec == "zip":
            archive = stack.enter_context(zipfile.ZipFile(raw))
            for member in sorted(n for n in archive.namelist() if not n.endswith("/")):
                yield member, stack.enter_context(archive.open(member))
        else:
            yield "", raw

    def _parse(self, fmt: str, stream: IO[bytes], label: str) -> Iterator[Record]:
        text = io.TextIOWrapper(stream, encoding="utf-8-sig", newline="")
        if fmt == "csv":
            yield from csv.DictReader(text)
        elif fmt == "jsonl":
            for number, line in enumerate(text, start=1):
                if not line.strip():
                    continue
                try:
                    item = json.loads(line)
                except ValueError:
                    raise self.error(f"line {number} of {label!r} is not JSON") from None
                if not isinstance(item, dict):
                    raise self.error(f"line {number} of {label!r} is a {type(item).__name__}, not an object")
                yield item
        elif fmt == "json":
            try:
                payload = json.load(text)
            except ValueError:
                raise self.error(f"{label!r} is not JSON") from None
            items = payload if isinstance(payload, list) else [payload]
            for index, item in enumerate(items):
                if not isinstance(item, dict):
                    raise self.error(f"item {index} of {label!r} is a {type(item).__name__}, not an object")
                yield item
        else:
            raise self.error(f"format {fmt!r} is not supported (csv, json, jsonl)")

    def test_connection(self) -> str:
        """List the matching files (nothing is read)."""
        found = self.files({})
        return f"file connector {self.context.id!r}: {len(found)} file(s) match, first {found[0].name!r}"
