"""The file destination writes real files atomically, one per run, in json, jsonl or csv."""

from __future__ import annotations

import csv
import gzip
import io
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from muxly_provider.destinations.base import DestinationContext, RunInfo
from muxly_provider.destinations.file import FileDestination
from muxly_provider.destinations.registry import get_destination_class
from muxly_provider.exceptions import MuxlyDestinationError

pytestmark = pytest.mark.usefixtures("files_root")

RUN = RunInfo(
    dag_id="muxly__j1",
    run_id="manual__1",
    job_id="j1",
    connector_id="c1",
    logical_date=datetime(2026, 11, 26, 6, 0, tzinfo=UTC),
)
RECORDS = [{"id": 1, "name": "a", "tags": ["x"]}, {"id": 2, "name": 'b, "quoted"', "extra": {"k": 1}}]


def _dest(tmp_path: Path, **config: Any) -> FileDestination:
    ctx = DestinationContext(
        id="d1", name="D1", destination_type="file", config={"output_dir": str(tmp_path), **config}
    )
    return FileDestination(ctx, RUN)


def _read(path: Path) -> str:
    if path.suffix == ".gz":
        return gzip.decompress(path.read_bytes()).decode()
    return path.read_text()


@pytest.mark.parametrize("compress", [False, True])
def test_jsonl(tmp_path: Path, compress: bool) -> None:
    dest = _dest(tmp_path, file_format="jsonl", file_prefix="sales", compress=compress)
    dest.write_batch(RECORDS[:1])
    dest.write_batch(RECORDS[1:])
    [out] = dest.commit()
    path = Path(out)
    assert path.name.startswith("sales_20261126T060000_") and path.name.endswith(
        ".jsonl" + (".gz" * compress)
    )
    assert [json.loads(line) for line in _read(path).splitlines()] == RECORDS
    assert dest.delivered == 2
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temporary file left


def test_json_array(tmp_path: Path) -> None:
    dest = _dest(tmp_path, file_format="json")
    dest.write_batch(RECORDS)
    assert json.loads(_read(Path(dest.commit()[0]))) == RECORDS


def test_empty_run_writes_a_valid_empty_file(tmp_path: Path) -> None:
    dest = _dest(tmp_path, file_format="json")
    assert json.loads(_read(Path(dest.commit()[0]))) == []


def test_csv_header_is_the_union_of_fields(tmp_path: Path) -> None:
    dest = _dest(tmp_path, file_format="csv")
    dest.write_batch(RECORDS)
    with open(dest.commit()[0], newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["id", "name", "tags", "extra"]
    assert rows[1]["name"] == 'b, "quoted"'
    assert json.loads(rows[0]["tags"]) == ["x"] and rows[0]["extra"] == ""


def test_retry_overwrites_the_same_file(tmp_path: Path) -> None:
    first = _dest(tmp_path, file_format="jsonl")
    first.write_batch(RECORDS)
    path = first.commit()[0]
    again = _dest(tmp_path, file_format="jsonl")
    again.write_batch(RECORDS[:1])
    assert again.commit()[0] == path
    assert len(_read(Path(path)).splitlines()) == 1
    assert len(list(tmp_path.iterdir())) == 1


def test_abort_leaves_nothing(tmp_path: Path) -> None:
    dest = _dest(tmp_path, file_format="jsonl")
    dest.write_batch(RECORDS)
    dest.abort()
    assert list(tmp_path.iterdir()) == []


def test_rotation_names(tmp_path: Path) -> None:
    assert "_20261126_" in _dest(tmp_path, rotation="daily").path.name
    assert "_20261126_06_" in _dest(tmp_path, rotation="hourly").path.name


def test_relative_output_dir_resolves_against_files_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AIRFLOW__MUXLY__FILES_ROOT", str(tmp_path / "root"))
    ctx = DestinationContext(id="d1", name="D1", destination_type="file", config={"output_dir": "out"})
    assert FileDestination(ctx, RUN).output_dir == tmp_path / "root" / "out"


def test_bad_format_and_unwritable_dir(tmp_path: Path) -> None:
    with pytest.raises(MuxlyDestinationError, match="file_format 'xml'"):
        _dest(tmp_path, file_format="xml")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    dest = _dest(blocker / "sub", file_format="jsonl")
    with pytest.raises(MuxlyDestinationError, match="cannot create"):
        dest.write_batch(RECORDS)


def test_registry() -> None:
    assert get_destination_class("file") is FileDestination
    with pytest.raises(MuxlyDestinationError, match="not supported"):
        get_destination_class("fax")


@pytest.mark.parametrize("compress", [False, True])
def test_csv_new_fields_in_later_batches_complete_the_header(tmp_path: Path, compress: bool) -> None:
    dest = _dest(tmp_path, file_format="csv", compress=compress)
    dest.write_batch([{"id": 1, "name": "a"}])
    dest.write_batch([{"id": 2, "late": "x", "name": "b"}, {"id": 3}])
    rows = list(csv.DictReader(io.StringIO(_read(Path(dest.commit()[0])))))
    assert rows == [
        {"id": "1", "name": "a", "late": ""},
        {"id": "2", "name": "b", "late": "x"},
        {"id": "3", "name": "", "late": ""},
    ]


def test_size_rotation_writes_parts_and_a_retry_removes_stale_parts(tmp_path: Path) -> None:
    big = [{"id": i, "text": "x" * 1000} for i in range(300)]
    dest = _dest(tmp_path, file_format="jsonl", rotation="size", max_file_size_mb=0.05)
    for start in range(0, 300, 50):
        dest.write_batch(big[start : start + 50])
    paths = [Path(p) for p in dest.commit()]
    assert [p.name[-11:] for p in paths] == ["_0001.jsonl", "_0002.jsonl", "_0003.jsonl"]
    assert [json.loads(line)["id"] for p in paths for line in _read(p).splitlines()] == list(range(300))
    again = _dest(tmp_path, file_format="jsonl", rotation="size", max_file_size_mb=0.05)
    again.write_batch(big[:10])
    again.commit()
    assert sorted(p.name for p in tmp_path.iterdir()) == [paths[0].name]


def test_object_storage_output_dir(tmp_path: Path) -> None:
    # file:// URLs are local paths (confined to files_root); object storage here is fsspec's in-memory store.
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem  # type: ignore[import-untyped]  # no py.typed

    attach("memory", fs=MemoryFileSystem())
    dest = _dest(
        tmp_path, output_dir=f"memory://{tmp_path.name}/exports", file_format="json", file_prefix="sales"
    )
    dest.write_batch(RECORDS)
    [url] = dest.commit()
    [path] = ObjectStoragePath(f"memory://{tmp_path.name}/exports").iterdir()
    assert url.endswith(path.name) and json.loads(path.read_text()) == RECORDS
    assert not dest.output_dir.exists()  # the local staging folder is gone
