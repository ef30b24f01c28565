"""One Airflow DAG per enabled Muxly job (rows of ``scheduler_jobs``)."""

from __future__ import annotations

from muxly_provider.dag_factory.register import register_dags

register_dags(globals())
