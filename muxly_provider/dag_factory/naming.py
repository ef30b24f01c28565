"""DAG ids of jobs (SPEC §3): ``muxly__<job id>`` with every character outside ``[A-Za-z0-9_.-]`` -> ``_``."""

from __future__ import annotations

import re

from sqlalchemy import Engine, select

DAG_ID_PREFIX = "muxly__"
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")


def dag_id_for(job_id: str) -> str:
    """The DAG id of a job."""
    return DAG_ID_PREFIX + _UNSAFE.sub("_", job_id)


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
