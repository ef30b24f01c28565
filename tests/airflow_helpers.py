"""Helpers for tests that need Muxly's DAGs in Airflow's own database (the api-server's view)."""

from __future__ import annotations

from pathlib import Path

DAGS_DIR = Path(__file__).resolve().parents[1] / "dags"


def sync_muxly_dags() -> list[str]:
    """Parse ``dags/`` like the DAG processor and write the DAGs to Airflow's database; return their ids."""
    from airflow.dag_processing.bundles.manager import DagBundlesManager
    from airflow.dag_processing.dagbag import DagBag, sync_bag_to_db

    DagBundlesManager().sync_bundles_to_db()
    bag = DagBag(dag_folder=DAGS_DIR, bundle_path=DAGS_DIR, bundle_name="dags-folder")
    assert not bag.import_errors, bag.import_errors
    sync_bag_to_db(bag, "dags-folder", None)
    return sorted(bag.dags)


def set_paused(dag_id: str, paused: bool) -> None:
    """Pause or unpause a DAG in Airflow's database."""
    from airflow.models.dag import DagModel
    from airflow.utils.session import create_session
    from sqlalchemy import update

    with create_session() as session:
        session.execute(update(DagModel).where(DagModel.dag_id == dag_id).values(is_paused=paused))
