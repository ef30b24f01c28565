"""The Airflow plugin of Muxly (entry point ``airflow.plugins``).

It carries the job-execution listener and mounts Muxly's FastAPI app (webhooks, management API) at ``/muxly``
on the api-server. The app is wrapped lazily so that importing the plugin in other processes builds nothing.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from muxly_provider.api.asgi import LazyMuxlyApp
from muxly_provider.executions import listener


class MuxlyPlugin(AirflowPlugin):
    """Registers Muxly's DAG-run listener and its FastAPI app."""

    name = "muxly"
    listeners: list[Any] = [listener]  # noqa: RUF012 - Airflow reads these class attributes
    fastapi_apps: list[Any] = [  # noqa: RUF012
        {"app": LazyMuxlyApp(), "url_prefix": "/muxly", "name": "Muxly"},
    ]
