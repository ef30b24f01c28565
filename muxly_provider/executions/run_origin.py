"""Derive a run's ``triggered_by`` and ``attempt`` from what Airflow knows about the DAG run.

What each process sees of a DAG run (Airflow 3.3):

- the scheduler, the api-server and ``dag.test()`` hold the ORM ``DagRun``: ``run_type`` (``scheduled``,
  ``manual``, ``backfill``, ``asset_triggered``, ...), ``triggered_by`` (:class:`DagRunTriggeredByType`:
  ``timetable``, ``ui``, ``rest_api``, ``cli``, ``operator``, ``asset``, ``backfill``, ``test``) and ``conf``;
- a task sees the execution API's ``DagRun``: ``run_type`` and ``conf`` but **no** ``triggered_by``. Airflow's
  REST endpoint and the UI's trigger button create the same ``manual`` run (the UI is told apart only by the
  request's ``Referer``, stored in ``triggered_by``), so a task cannot tell a REST-triggered run from a click.

:func:`known_triggered_by` therefore answers ``None`` when the facts at hand do not decide, and writers pass
only known values to the recorder (the listener's, from the ORM ``DagRun``, decide ``api`` versus ``manual``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CONF_KEY = "muxly"
"""Key of ``dag_run.conf`` where Muxly's own triggers (webhooks, dependencies) say who they are."""

_CONF_TRIGGERS = frozenset({"webhook", "dependency", "api", "manual"})

_BY_RUN_TYPE = {"scheduled": "schedule", "backfill": "backfill", "asset_triggered": "dependency"}
"""Run types that say who started the run whoever created it (an asset-triggered run is scheduled on the asset
of the job it depends on)."""

_BY_SOURCE = {
    "rest_api": "api",
    "ui": "manual",
    "cli": "manual",
    "test": "manual",
    "operator": "manual",
    "timetable": "schedule",
    "backfill": "backfill",
    "asset": "dependency",
}
"""``DagRun.triggered_by`` of a run whose run type does not decide (``manual``, ``asset_materialization``)."""


def _text(value: Any) -> str:
    return str(getattr(value, "value", value) or "")


def known_triggered_by(
    run_type: Any, airflow_triggered_by: Any, conf: Mapping[str, Any] | None
) -> str | None:
    """SPEC's ``schedule|manual|api|webhook|dependency|backfill`` of a DAG run, or ``None`` when unknown.

    :param run_type: ``DagRun.run_type``
    :param airflow_triggered_by: ``DagRun.triggered_by``, or ``None`` where it is not available (in a task)
    :param conf: ``DagRun.conf``
    :return: ``None`` for a ``manual`` run without Muxly's marker in ``conf`` when ``airflow_triggered_by``
        is unknown: it may come from the UI, the CLI or the REST API
    """
    marker = (conf or {}).get(CONF_KEY)
    if isinstance(marker, Mapping) and marker.get("triggered_by") in _CONF_TRIGGERS:
        return str(marker["triggered_by"])
    by_type = _BY_RUN_TYPE.get(_text(run_type))
    if by_type is not None:
        return by_type
    return _BY_SOURCE.get(_text(airflow_triggered_by))


def triggered_by(run_type: Any, airflow_triggered_by: Any, conf: Mapping[str, Any] | None) -> str:
    """Like :func:`known_triggered_by`, with ``manual`` when unknown (for a row that must say something).

    :param run_type: ``DagRun.run_type`` (``scheduled``, ``manual``, ``backfill``, ...)
    :param airflow_triggered_by: ``DagRun.triggered_by`` (``ui``, ``cli``, ``rest_api``, ``test``, ...) or None
    :param conf: ``DagRun.conf``
    """
    return known_triggered_by(run_type, airflow_triggered_by, conf) or "manual"


def attempt(clear_number: int | None) -> int:
    """How many times a run has been started: a cleared and re-run DAG run counts up."""
    return (clear_number or 0) + 1
