"""A Muxly database setting that cannot work is the DAG file's import error, never a silent last-good cache.

With Airflow on PostgreSQL and no ``[muxly] sql_alchemy_conn`` every machine would read its own SQLite file; the
DAG file must say so (Airflow shows a file's import error in its UI and ``airflow dags list-import-errors``)
instead of building the DAGs of the last good parse as during an outage.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from muxly_provider.exceptions import MuxlyDatabaseSettingError

AIRFLOW_ON_POSTGRES = "postgresql+psycopg2://airflow:pw@db.example:5432/airflow"


@pytest.fixture
def airflow_on_postgres(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Airflow on a (never contacted) PostgreSQL server, ``[muxly] sql_alchemy_conn`` unset."""
    monkeypatch.setenv("AIRFLOW_HOME", str(tmp_path))
    monkeypatch.setenv("AIRFLOW__DATABASE__SQL_ALCHEMY_CONN", AIRFLOW_ON_POSTGRES)
    monkeypatch.delenv("AIRFLOW__MUXLY__SQL_ALCHEMY_CONN", raising=False)
    return tmp_path


def test_load_job_specs_raises_instead_of_using_the_last_good_cache(airflow_on_postgres: Path) -> None:
    from muxly_provider.dag_factory.register import load_job_specs

    cache = airflow_on_postgres / "muxly" / "dag_specs.json"
    cache.parent.mkdir()
    cache.write_text(json.dumps([]), encoding="utf-8")

    with pytest.raises(MuxlyDatabaseSettingError, match=r"set \[muxly\] sql_alchemy_conn"):
        load_job_specs(cache=cache)
    assert not (airflow_on_postgres / "muxly.db").exists()


def test_dag_file_import_error_names_the_setting(airflow_on_postgres: Path) -> None:
    from airflow.dag_processing.dagbag import DagBag

    from tests.airflow_helpers import DAGS_DIR

    bag: Any = DagBag(dag_folder=DAGS_DIR, bundle_path=DAGS_DIR, bundle_name="dags-folder")

    errors = {Path(path).name: message for path, message in bag.import_errors.items()}
    assert "muxly_dags.py" in errors, errors
    assert "Airflow runs on postgresql" in errors["muxly_dags.py"]
    assert "AIRFLOW__MUXLY__SQL_ALCHEMY_CONN" in errors["muxly_dags.py"]
    assert "pw@" not in errors["muxly_dags.py"]
    assert not bag.dags
