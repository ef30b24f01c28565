"""What Muxly mirrors of an Airflow DAG run, and how it becomes a ``job_executions`` update.

One mapping for every writer that starts from Airflow's ``DagRun``: the listener (scheduler, api-server,
``dag.test()``) and ``airflow muxly executions reconcile`` (Airflow's run history). :class:`DagRunFacts` is a
plain snapshot taken while the ``DagRun`` is at hand (attribute reads only, no database): the listener hands it to
its background writer, which must not touch an ORM object that belongs to the scheduler's session.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from muxly_provider.executions import run_origin
from muxly_provider.executions.recorder import FINAL_STATUSES, ExecutionUpdate


def _text(value: Any) -> str | None:
    """An enum's value (``DagRunState.SUCCESS`` -> ``success``), a string as it is, ``None`` for ``None``."""
    if value is None:
        return None
    return str(getattr(value, "value", value))


@dataclass(frozen=True)
class DagRunFacts:
    """The fields of a DAG run that ``job_executions`` mirrors.

    :param dag_id: the DAG id
    :param run_id: the run id
    :param state: Airflow's state of the run (``queued``, ``running``, ``success``, ``failed``)
    :param start_date: when the run started
    :param end_date: when it ended (``None`` while it runs)
    :param attempt: ``clear_number + 1``
    :param triggered_by: SPEC's trigger when the run's facts decide it, else ``None``
        (see :func:`muxly_provider.executions.run_origin.known_triggered_by`)
    :param is_test: the run was started by ``dag.test()`` / ``airflow dags test`` (not by a scheduler)
    """

    dag_id: str
    run_id: str
    state: str | None
    start_date: datetime | None
    end_date: datetime | None
    attempt: int
    triggered_by: str | None
    is_test: bool = False

    @classmethod
    def of(cls, dag_run: Any) -> DagRunFacts:
        """Snapshot an ORM ``DagRun`` (or any object with its attributes)."""
        airflow_triggered_by = getattr(dag_run, "triggered_by", None)
        return cls(
            dag_id=str(dag_run.dag_id),
            run_id=str(dag_run.run_id),
            state=_text(getattr(dag_run, "state", None)),
            start_date=getattr(dag_run, "start_date", None),
            end_date=getattr(dag_run, "end_date", None),
            attempt=run_origin.attempt(getattr(dag_run, "clear_number", 0)),
            triggered_by=run_origin.known_triggered_by(
                getattr(dag_run, "run_type", None), airflow_triggered_by, getattr(dag_run, "conf", None)
            ),
            is_test=_text(airflow_triggered_by) == "test",
        )


def execution_update(facts: DagRunFacts, job_id: str, status: str, msg: str | None = None) -> ExecutionUpdate:
    """The ``job_executions`` update that says the run is ``status`` (``running``, ``success`` or ``failed``).

    A final status carries the run's end (now when Airflow has not set it yet) and its duration; ``failed``
    records ``msg`` (Airflow's reason: ``task_failure``, ``timed_out``, ...) as the error unless an operator
    recorded a better one; ``success`` drops an earlier try's error.

    :param facts: the run
    :param job_id: the job whose DAG the run belongs to
    :param status: the status to record
    :param msg: Airflow's message of the state change
    """
    final = status in FINAL_STATUSES
    start = facts.start_date
    end = (facts.end_date or datetime.now(UTC)) if final else None
    result: dict[str, Any] = {}
    if start is not None and end is not None:
        result["duration_seconds"] = round((end - start).total_seconds(), 3)
    return ExecutionUpdate(
        job_id=job_id,
        dag_id=facts.dag_id,
        run_id=facts.run_id,
        status=status,
        start_time=start,
        end_time=end,
        attempt=facts.attempt,
        # Known values only: a run Airflow recorded no source for keeps what its row says.
        triggered_by=facts.triggered_by,
        result=result,
        error_if_missing=(msg or "the DAG run failed") if status == "failed" else None,
        clear_error=status == "success",
    )
