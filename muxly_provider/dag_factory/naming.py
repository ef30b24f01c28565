"""Names derived from row ids: DAG ids of jobs (SPEC §3) and task ids of destinations.

* DAG id: ``muxly__<job id>`` with every character outside ``[A-Za-z0-9_.-]`` -> ``_`` (two job ids that clean to
  the same DAG id are reported by the factory and ``jobs validate``).
* Task ids and staging folder names of destinations: :func:`safe_id`, the cleaned id plus a short stable hash
  of the original when cleaning changed it or it was too long, so ``crm:eu`` and ``crm@eu`` never collide.
"""

from __future__ import annotations

import hashlib
import re

from sqlalchemy import Engine, select

DAG_ID_PREFIX = "muxly__"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
DELIVERY_TASK_PREFIX = "deliver__"
MAX_SAFE_ID_LENGTH = 200
"""Airflow task ids are at most 250 characters; the longest prefix Muxly puts before a safe id is 9."""


def dag_id_for(job_id: str) -> str:
    """The DAG id of a job."""
    return DAG_ID_PREFIX + _UNSAFE.sub("_", job_id)


def safe_id(value: str, max_length: int = MAX_SAFE_ID_LENGTH) -> str:
    """A stable, collision-free name for ``value`` made of ``[A-Za-z0-9_.-]`` only.

    ``value`` itself when it is already safe and short enough; otherwise the cleaned value (cut to fit) plus
    ``_`` and the first 8 hex digits of the SHA-256 of the original, e.g. ``crm:eu`` -> ``crm_eu_5d1b2f3a``.

    :param value: a row id
    :param max_length: the longest name returned
    """
    cleaned = _UNSAFE.sub("_", value)
    if cleaned == value and 0 < len(value) <= max_length:
        return value
    digest = hashlib.sha256(value.encode("utf-8")).hexdigest()[:8]
    return f"{cleaned[: max_length - len(digest) - 1]}_{digest}"


def delivery_task_id(destination_id: str) -> str:
    """The task id of a destination's delivery task: ``deliver__<safe_id(destination id)>``."""
    return DELIVERY_TASK_PREFIX + safe_id(destination_id)


def job_id_for_dag_id(engine: Engine, dag_id: str) -> str | None:
    """The id of the job whose DAG is ``dag_id`` (``None`` when no job row has that DAG id).

    Most job ids are already safe, so the direct lookup answers in one indexed query; ids with replaced
    characters fall back to scanning the ids.
    """
    from muxly_provider.db.models import SchedulerJob

    if not dag_id.startswith(DAG_ID_PREFIX):
        return None
    candidate = dag_id[len(DAG_ID_PREFIX) :]
    with engine.connect() as conn:
        if conn.execute(select(SchedulerJob.id).where(SchedulerJob.id == candidate)).first():
            return candidate
        for (job_id,) in conn.execute(select(SchedulerJob.id).order_by(SchedulerJob.id)):
            if dag_id_for(job_id) == dag_id:
                return str(job_id)
    return None
