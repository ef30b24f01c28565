"""Produce the DAGs of all enabled jobs into a DAG file's namespace.

Parse is cheap and survives a config-DB outage: the specs of the last good parse are kept in a JSON file under
AIRFLOW_HOME and used when Muxly's database cannot be read. A worker starting a task builds only the DAG it runs
(``get_parsing_context().dag_id``). A bad row is logged and skipped; it never hides the other DAGs.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from muxly_provider.dag_factory.specs import JobDagSpec, JobProblem, build_job_specs

log = logging.getLogger(__name__)


def _cache_path() -> Path:
    from muxly_provider import settings

    return settings.airflow_home() / "muxly" / "dag_specs.json"


def _write_cache(specs: list[JobDagSpec]) -> None:
    path = _cache_path()
    payload = json.dumps([s.to_json() for s in specs], sort_keys=True)
    try:
        if path.exists() and path.read_text(encoding="utf-8") == payload:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(payload, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("Muxly: could not write the DAG spec cache %s: %s", path, exc)


def _read_cache() -> list[JobDagSpec]:
    path = _cache_path()
    try:
        return [JobDagSpec.from_json(item) for item in json.loads(path.read_text(encoding="utf-8"))]
    except (OSError, ValueError, TypeError) as exc:
        log.error("Muxly: no usable DAG spec cache at %s (%s)", path, exc)
        return []


def load_job_specs() -> tuple[list[JobDagSpec], list[JobProblem]]:
    """Specs and problems from Muxly's database, or the last good specs when it cannot be read."""
    from sqlalchemy.exc import SQLAlchemyError

    from muxly_provider.db.snapshot import load_snapshot

    try:
        snapshot = load_snapshot(
            tables=(
                "connectors",
                "destinations",
                "routes",
                "route_rules",
                "rule_destinations",
                "scheduler_jobs",
            )
        )
    except SQLAlchemyError as exc:
        log.error(
            "Muxly: cannot read its database (%s); keeping the DAGs of the last good parse",
            type(exc).__name__,
        )
        return _read_cache(), []
    specs, problems = build_job_specs(snapshot)
    _write_cache(specs)
    return specs, problems


def register_dags(namespace: MutableMapping[str, Any]) -> list[Any]:
    """Build the DAG of every valid enabled job and put it into ``namespace`` (a DAG file's ``globals()``)."""
    from airflow.sdk import get_parsing_context

    from muxly_provider.dag_factory.builder import build_dag

    only = get_parsing_context().dag_id
    specs, problems = load_job_specs()
    for problem in problems:
        log.warning(
            "Muxly: job %r cannot become DAG %s: %s: %s",
            problem.job_id,
            problem.dag_id,
            problem.field,
            problem.reason,
        )
    dags = []
    for spec in specs:
        if only and spec.dag_id != only:
            continue
        try:
            dag = build_dag(spec)
        except Exception as exc:
            log.error("Muxly: job %r cannot become DAG %s: %s", spec.job_id, spec.dag_id, exc)
            continue
        namespace[spec.dag_id] = dag
        dags.append(dag)
    return dags
