"""The ``file`` connector: records from CSV, JSON or JSONL files, local or in object storage.

``path`` names one file, ``glob`` a pattern (``*``, ``?``, ``[...]``, ``**``); both may be local paths or
object-storage URLs (``s3://``, ``gs://``, ...) opened through Airflow's :class:`~airflow.sdk.ObjectStoragePath`
(credentials come from the ``conn_id`` option, an Airflow connection, as Airflow's object storage does).
Local paths (and ``file://`` URLs) must resolve, links followed, inside ``[muxly] files_root``
(:mod:`muxly_provider.security.paths`): checked when the row is written and again here, for every file a glob
matches. ``data_spec.path`` or ``data_spec.glob`` overrides the setting for one run; it may switch to object
storage only when the connector has a ``conn_id`` or is on object storage itself. Matching files are read in
sorted order.

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
from pathlib import Path
from typing import IO, Any

from muxly_provider.connectors.base import MuxlyConnector, Record
from muxly_provider.security.errors import MuxlyConfinementError

_SUFFIXES = {".gz": "gzip", ".gzip": "gzip", ".bz2": "bz2", ".xz": "xz", ".zip": "zip"}
_WILDCARD = re.compile(r"[*?\[]")


class FileConnector(MuxlyConnector):
    """Read records from files matched by ``path`` or ``glob``."""

    connector_type = "file"

    def _resolve(self, location: str, field: str) -> Any:
        from airflow.sdk import ObjectStoragePath

        from muxly_provider.security.paths import is_remote, local_path

        try:
            if is_remote(location):
                conn_id = self.context.settings.get("conn_id")
                return (
                    ObjectStoragePath(location, conn_id=conn_id) if conn_id else ObjectStoragePath(location)
                )
            return ObjectStoragePath(f"file://{local_path(location, field)}")
        except MuxlyConfinementError as exc:
            raise self.error(f"{exc.field}: {exc.reason}") from None

    def _location(self, data_spec: Mapping[str, Any]) -> tuple[str, str, bool]:
        """``(location, field, is a pattern)`` of this run: ``data_spec`` overrides the connector's setting."""
        from muxly_provider.security.paths import is_remote

        options = self.context.settings
        for key in ("path", "glob"):
            value = data_spec.get(key)
            if value:
                text = str(value)
                own = str(options.get("path") or options.get("glob") or "")
                try:
                    switches_to_storage = is_remote(text) and not (options.get("conn_id") or is_remote(own))
                except MuxlyConfinementError as exc:
                    raise self.error(f"data_spec.{key}: {exc.reason}") from None
                if switches_to_storage:
                    # Object storage is reached through the connector's conn_id, never the worker's identity.
                    raise self.error(f"data_spec.{key}: object storage needs the connector's 'conn_id'")
                return text, f"data_spec.{key}", key == "glob"
        for key in ("path", "glob"):
            if options.get(key):
                return str(options[key]), key, key == "glob"
        raise self.error("set 'path' or 'glob'")

    def files(self, data_spec: Mapping[str, Any]) -> list[Any]:
        """The files of this run, sorted (an error when none match, or when one is outside ``files_root``)."""
        from muxly_provider.security.paths import ensure_inside, is_remote, split_glob

        text, field, pattern = self._location(data_spec)
        match = _WILDCARD.search(text) if pattern else None
        if match is None:
            target = self._resolve(text, field)
            if not target.is_file():
                raise self.error(f"file {text!r} does not exist")
            return [target]
        try:
            if is_remote(text):
                cut = text.rfind("/", 0, match.start())
                folder, relative = self._resolve(text[: cut + 1], field), text[cut + 1 :]
            else:
                base, relative = split_glob(text, field)
                folder = self._resolve(str(base), field)
        except MuxlyConfinementError as exc:
            raise self.error(f"{exc.field}: {exc.reason}") from None
        try:
            found = sorted((p for p in folder.glob(relative) if p.is_file()), key=str)
        except (OSError, ValueError) as exc:
            raise self.error(f"cannot list {field}: {type(exc).__name__}") from None
        if not found:
            raise self.error(f"no file matches {text!r}")
        if folder.protocol in ("file", "local"):
            try:
                # A match may be a link, or under a linked folder, that leads out of files_root.
                for item in found:
                    ensure_inside(Path(item.path), field)
            except MuxlyConfinementError as exc:
                raise self.error(f"{exc.field}: {exc.reason}") from None
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
