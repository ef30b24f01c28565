"""Local paths resolve inside ``files_root`` (links followed); object-storage URLs are told apart."""

from __future__ import annotations

from pathlib import Path

import pytest

from muxly_provider.security.errors import MuxlyConfinementError
from muxly_provider.security.paths import (
    check_file_name,
    check_location,
    ensure_inside,
    is_remote,
    local_path,
    split_glob,
)


@pytest.fixture
def root(files_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    outside = tmp_path_factory.mktemp("outside")
    (outside / "secret").write_text("x")
    (files_root / "data").mkdir()
    (files_root / "data" / "a.jsonl").write_text("{}\n")
    (files_root / "out").symlink_to(outside)
    (files_root / "data" / "inner").symlink_to(files_root / "data")
    return files_root


@pytest.mark.parametrize(
    "value",
    [
        "data/a.jsonl",
        "data/../data/a.jsonl",
        "./data",
        "new/folder",
        "data/inner/a.jsonl",
        "file://data/a.jsonl",
    ],
)
def test_inside_is_accepted(root: Path, value: str) -> None:
    assert local_path(value, "path").is_relative_to(root)


def test_absolute_inside_is_accepted(root: Path) -> None:
    assert local_path(str(root / "data" / "a.jsonl"), "path") == root / "data" / "a.jsonl"
    assert local_path(f"file://{root}/data", "path") == root / "data"


@pytest.mark.parametrize(
    "value",
    ["..", "../x", "data/../../x", "/etc/passwd", "out/secret", "out", "file:///etc/passwd", "data/\x00"],
)
def test_outside_is_refused(root: Path, value: str) -> None:
    with pytest.raises(MuxlyConfinementError) as caught:
        local_path(value, "path")
    assert caught.value.field == "path"


def test_a_link_that_appears_later_is_caught_at_use(
    root: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    folder = local_path("later", "output_dir")
    folder.symlink_to(tmp_path_factory.mktemp("elsewhere"))
    with pytest.raises(MuxlyConfinementError):
        ensure_inside(folder, "output_dir")


def test_globs(root: Path) -> None:
    assert split_glob("data/*.jsonl", "glob") == (root / "data", "*.jsonl")
    assert split_glob(f"{root}/**/*.jsonl", "glob") == (root, "**/*.jsonl")
    for bad in ("/root/.*", "../*", "data/*/../../../*", "out/*"):
        with pytest.raises(MuxlyConfinementError):
            split_glob(bad, "glob")


def test_urls(root: Path) -> None:
    assert is_remote("s3://bucket/key") and is_remote("gs://b/k") and not is_remote("file:///x")
    assert check_location("s3://bucket/*.json", "glob", pattern=True) == "remote"
    for bad in ("zip::file:///etc/x.zip", "simplecache::s3://b/k", "http://example.com/x", "dir://x"):
        with pytest.raises(MuxlyConfinementError):
            check_location(bad, "path")


@pytest.mark.parametrize("name", ["sales", "sales.v2", "a-b_c"])
def test_plain_names(name: str) -> None:
    assert check_file_name(name, "file_prefix") == name


@pytest.mark.parametrize("name", ["../x", "a/b", "a\\b", "..", ".", ""])
def test_names_with_separators_are_refused(name: str) -> None:
    with pytest.raises(MuxlyConfinementError):
        check_file_name(name, "file_prefix")
