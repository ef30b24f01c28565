"""Shard files and the DAG file are found by Airflow's own discovery with its default safe mode.

With ``[core] dag_discovery_safe_mode = True`` (the default) Airflow only parses files whose text contains both
"airflow" and "dag"; a shard file without those words is silently skipped ("Found 0 files").
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest

from tests.airflow_helpers import DAGS_DIR


def _write_shards(folder: Path, shards: int, monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    from muxly_provider.cli.jobs_command import write_shards

    monkeypatch.setenv("AIRFLOW__MUXLY__DAG_FILE_SHARDS", str(shards))
    write_shards(argparse.Namespace(folder=str(folder)))
    return sorted(folder.glob("*.py"))


def test_written_shards_are_discovered_in_safe_mode(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.utils.file import list_py_file_paths, might_contain_dag_via_default_heuristic

    written = _write_shards(tmp_path, 4, monkeypatch)
    assert [p.name for p in written] == [f"muxly_dags_shard_{i}.py" for i in range(4)]
    assert all(might_contain_dag_via_default_heuristic(str(p)) for p in written)
    assert sorted(list_py_file_paths(tmp_path, safe_mode=True)) == [str(p) for p in written]


def test_shard_file_text_is_valid_python_naming_its_shard(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    written = _write_shards(tmp_path, 3, monkeypatch)
    for shard, path in enumerate(written):
        text = path.read_text(encoding="utf-8")
        compile(text, str(path), "exec")
        assert f"register_dags(globals(), shard={shard})" in text


def test_the_single_dag_file_is_discovered_in_safe_mode() -> None:
    from airflow.utils.file import list_py_file_paths

    assert str(Path(DAGS_DIR) / "muxly_dags.py") in list_py_file_paths(DAGS_DIR, safe_mode=True)
