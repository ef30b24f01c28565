"""The Airflow plugin of Muxly (entry point ``airflow.plugins``).

It carries the job-execution listener, mounts Muxly's FastAPI app (webhooks, management API, UI bundle) at
``/muxly`` on the api-server, and declares Muxly's pages in Airflow's UI (``react_apps``). The app is wrapped
lazily so that importing the plugin in other processes builds nothing.
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from muxly_provider.api.asgi import LazyMuxlyApp
from muxly_provider.executions import listener

UI_BUNDLE_URL = "muxly/ui/static/muxly-ui.js"
"""The UI bundle, relative: Airflow's UI resolves it against the page's ``<base href>``, which already holds the
path of ``[api] base_url`` (so no configuration is read when the plugin is imported)."""

UI_ICON_URL = "muxly/ui/static/muxly.svg"

REACT_APPS: list[dict[str, Any]] = [
    # The "Muxly" entry of Airflow's navigation: overview, jobs, connectors... (own sub-routes).
    {
        "name": "Muxly",
        "bundle_url": UI_BUNDLE_URL,
        "destination": "nav",
        "url_route": "muxly",
        "icon": UI_ICON_URL,
        "icon_dark_mode": UI_ICON_URL,
    },
    # A tab on every DAG page (Airflow has no per-DAG filter): the component shows the job of ``muxly__*`` DAGs
    # and a short note on the others. Both entries load the same module; the bundle registers itself under both
    # names because the browser evaluates it only once.
    {
        "name": "Muxly job",
        "bundle_url": UI_BUNDLE_URL,
        "destination": "dag",
        "url_route": "muxly-job",
    },
]
"""Muxly's pages in Airflow's UI; one invalid dict would hide all of them (Airflow drops the whole plugin)."""


class MuxlyPlugin(AirflowPlugin):
    """Registers Muxly's DAG-run listener, its FastAPI app and its pages in Airflow's UI."""

    name = "muxly"
    listeners: list[Any] = [listener]  # noqa: RUF012 - Airflow reads these class attributes
    fastapi_apps: list[Any] = [  # noqa: RUF012
        {"app": LazyMuxlyApp(), "url_prefix": "/muxly", "name": "Muxly"},
    ]
    react_apps: list[Any] = [dict(app) for app in REACT_APPS]  # noqa: RUF012 - Airflow may remove entries
