"""The Airflow plugin of Muxly (entry point ``airflow.plugins``): it carries the job-execution listener."""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from muxly_provider.executions import listener


class MuxlyPlugin(AirflowPlugin):
    """Registers Muxly's DAG-run listener (and, later, the REST API app)."""

    name = "muxly"
    listeners = [listener]  # noqa: RUF012 - Airflow reads this class attribute
