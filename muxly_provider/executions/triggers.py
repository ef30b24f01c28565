"""Derive a run's ``triggered_by`` and ``attempt`` from what Airflow knows about the DAG run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CONF_KEY = "muxly"
"""Key of ``dag_run.conf`` where Muxly's own triggers (webhooks, dependencies) say who they are."""

_CONF_TRIGGERS = frozenset({"webhook", "dependency", "api", "manual"})


def triggered_by(run_type: Any, airflow_triggered_by: Any, conf: Mapping[str, Any] | None) -> str:
    """Map a DAG run to SPEC's ``schedule|manual|api|webhook|dependency|backfill``.

    :param run_type: ``DagRun.run_type`` (``scheduled``, ``manual``, ``backfill``, ...)
    :param airflow_triggered_by: ``DagRun.triggered_by`` (``ui``, ``cli``, ``rest_api``, ``test``, ...) or None
    :param conf: ``DagRun.conf``
    """
    marker = (conf or {}).get(CONF_KEY)
    if isinstance(marker, Mapping) and marker.get("triggered_by") in _CONF_TRIGGERS:
        return str(marker["triggered_by"])
    kind = str(getattr(run_type, "value", run_type) or "")
    if kind == "scheduled":
        return "schedule"
    if kind == "backfill":
        return "backfill"
    if kind == "asset_triggered":
        return "dependency"  # scheduled on the asset of the job it depends on
    source = str(getattr(airflow_triggered_by, "value", airflow_triggered_by) or "")
    if source == "rest_api":
        return "api"
    return "manual"


def attempt(clear_number: int | None) -> int:
    """How many times a run has been started: a cleared and re-run DAG run counts up."""
    return (clear_number or 0) + 1
