"""The file connector: CSV, JSON and JSONL, compressed or not, one path or a glob, local or file:// URLs."""

from __future__ import annotations

import bz2
import gzip
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from muxly_provider.connectors.base import ConnectorContext
from muxly_provider.connectors.file import FileConnector
from muxly_provider.exceptions import MuxlyConnectorError

pytestmark = pytest.mark.usefixtures("files_root")

ROWS = [{"id": i, "name": f"n{i}"} for i in range(7)]


def _connector(settings: dict[str, Any], batch_size: int = 3) -> FileConnector:
    return FileConnector(
        ConnectorContext(id="files", name="F", connector_type="file", settings=settings),
        batch_size=batch_size,
    )


def _records(connector: FileConnector, data_spec: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    return [r for b in connector.fetch(data_spec or {}) for r in b]


def _jsonl(rows: list[dict[str, Any]]) -> bytes:
    return "".join(json.dumps(r) + "\n" for r in rows).encode()


def _csv(rows: list[dict[str, Any]]) -> bytes:
    return ("id,name\n" + "".join(f"{r['id']},{r['name']}\n" for r in rows)).encode()


@pytest.mark.parametrize(
    ("name", "fmt", "content", "expected"),
    [
        ("a.jsonl", "jsonl", _jsonl(ROWS), ROWS),
        ("a.jsonl.gz", "jsonl", gzip.compress(_jsonl(ROWS)), ROWS),
        ("a.json", "json", json.dumps(ROWS).encode(), ROWS),
        ("a.json.bz2", "json", bz2.compress(json.dumps(ROWS).encode()), ROWS),
        ("a.csv", "csv", _csv(ROWS), [{"id": str(r["id"]), "name": r["name"]} for r in ROWS]),
        (
            "a.csv.gz",
            "csv",
            gzip.compress(b"\xef\xbb\xbf" + _csv(ROWS)),
            [{"id": str(r["id"]), "name": r["name"]} for r in ROWS],
        ),
    ],
)
def test_formats_and_compression(
    tmp_path: Path, name: str, fmt: str, content: bytes, expected: list[Any]
) -> None:
    (tmp_path / name).write_bytes(content)
    batches = list(_connector({"path": str(tmp_path / name), "format": fmt}).fetch({}))
    assert [len(b) for b in batches] == [3, 3, 1]
    assert [r for b in batches for r in b] == expected


def test_glob_reads_matching_files_in_order_and_path_override(tmp_path: Path) -> None:
    (tmp_path / "2026" / "b").mkdir(parents=True)
    (tmp_path / "2026" / "x.jsonl").write_bytes(_jsonl(ROWS[:2]))
    (tmp_path / "2026" / "b" / "y.jsonl.gz").write_bytes(gzip.compress(_jsonl(ROWS[2:5])))
    (tmp_path / "2026" / "skip.txt").write_text("nope")
    connector = _connector({"glob": f"file://{tmp_path}/2026/**/*.jsonl*"})
    assert [r["id"] for r in _records(connector)] == [2, 3, 4, 0, 1]
    only = _records(connector, {"path": str(tmp_path / "2026" / "x.jsonl")})
    assert [r["id"] for r in only] == [0, 1]
    assert "2 file(s) match" in connector.test_connection()


def test_relative_paths_resolve_against_files_root(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW__MUXLY__FILES_ROOT", str(tmp_path))
    (tmp_path / "in").mkdir()
    (tmp_path / "in" / "r.jsonl").write_bytes(_jsonl(ROWS[:1]))
    assert _records(_connector({"glob": "in/*.jsonl"})) == ROWS[:1]


def test_zip_members(tmp_path: Path) -> None:
    with zipfile.ZipFile(tmp_path / "a.zip", "w") as archive:
        archive.writestr("one.jsonl", _jsonl(ROWS[:2]))
        archive.writestr("two.jsonl", _jsonl(ROWS[2:3]))
    assert [r["id"] for r in _records(_connector({"path": str(tmp_path / "a.zip")}))] == [0, 1, 2]


@pytest.mark.parametrize(
    ("settings", "content", "message"),
    [
        ({"path": "missing.jsonl"}, None, "file 'missing.jsonl' does not exist"),
        ({"glob": "nothing/*.csv"}, None, "no file matches"),
        ({"path": "bad.jsonl"}, b'{"a": 1}\n{oops\n', "line 2 of 'bad.jsonl' is not JSON"),
        ({"path": "bad.jsonl"}, b"[1, 2]\n", "line 1 of 'bad.jsonl' is a list"),
        ({"path": "bad.jsonl", "format": "json"}, b"[1]", "item 0 of 'bad.jsonl' is a int"),
        ({"path": "bad.jsonl", "compression": "gzip"}, b"not gzip", "cannot read 'bad.jsonl': BadGzipFile"),
    ],
)
def test_errors_name_the_connector_and_the_file(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    settings: dict[str, Any],
    content: bytes | None,
    message: str,
) -> None:
    monkeypatch.setenv("AIRFLOW__MUXLY__FILES_ROOT", str(tmp_path))
    if content is not None:
        (tmp_path / "bad.jsonl").write_bytes(content)
    with pytest.raises(MuxlyConnectorError, match=f"connector 'files': .*{message}"):
        _records(_connector(settings))


def test_settings_validate_with_object_storage_conn_id() -> None:
    from muxly_provider.config.validation import validate_row

    row = {
        "id": "files",
        "name": "F",
        "connector_type": "file",
        "auth_settings": '{"auth_type": "none"}',
        "connection_settings": '{"glob": "s3://bucket/in/*.csv", "format": "csv", "conn_id": "aws_default"}',
    }
    spec = validate_row("connectors", row)
    assert spec.settings.conn_id == "aws_default"  # type: ignore[attr-defined]
