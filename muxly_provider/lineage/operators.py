"""The OpenLineage methods of Muxly's operators (``get_openlineage_facets_on_start/complete/failure``).

Airflow's OpenLineage provider calls them around each task (in a forked child of the task process, or a
thread): on start, before ``execute``, the task knows only its job id, so the job's configuration is loaded
with an engine of its own (never the task process's pooled connections, which a fork must not share) and the
datasets come from the configs; on complete or failure, ``execute`` has left a :class:`LineageRun` on the
operator with the records' schemas and counts.

``execute`` collects schemas only when the provider is installed and enabled (:func:`lineage_active`); the
extract task passes them to the deliveries in the run manifest (``manifest["lineage"]``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from muxly_provider.lineage.schema import OutputSchemas, Schema, SchemaCollector

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage

    from muxly_provider.lineage.facets import TaskLineage
    from muxly_provider.runtime.loading import JobRuntime

log = logging.getLogger(__name__)


@dataclass
class LineageRun:
    """What a task learnt of its run: the job's configuration, the records' schemas and counts.

    :param runtime: the job's loaded configuration
    :param data_spec: the connector's ``data_spec`` of this run (variables resolved)
    :param inputs: the fields of the connector's records
    :param outputs: the fields of the records routed to each destination
    :param records_in: records read (``None``: not known yet)
    :param delivered: records delivered per destination
    """

    runtime: JobRuntime
    data_spec: Mapping[str, Any]
    inputs: SchemaCollector = field(default_factory=SchemaCollector)
    outputs: OutputSchemas = field(default_factory=OutputSchemas)
    records_in: int | None = None
    delivered: dict[str, int] = field(default_factory=dict)

    def manifest_entry(self) -> dict[str, Any]:
        """The schemas for the run manifest (read back by :func:`begin` in the delivery tasks)."""
        return {"input": self.inputs.as_json(), "outputs": self.outputs.as_json()}


def lineage_active() -> bool:
    """Whether Airflow's OpenLineage provider is installed and enabled (a transport is configured)."""
    try:
        from airflow.providers.openlineage import conf
    except ImportError:
        return False
    try:
        return not conf.is_disabled()
    except Exception:  # a broken [openlineage] section: the provider itself will not emit
        return False


def begin(
    task: Any, runtime: JobRuntime, data_spec: Mapping[str, Any], manifest: Mapping[str, Any] | None = None
) -> LineageRun | None:
    """Start collecting for ``task`` (``None`` when lineage is off); a delivery task reads the manifest's.

    :param manifest: the run manifest of the extract task (its schemas and ``records_in``)
    """
    if not lineage_active():
        return None
    run = LineageRun(runtime, data_spec)
    if manifest:
        entry = manifest.get("lineage") or {}
        run.inputs = collector_of(entry.get("input") or {})
        for dest_id, schema in (entry.get("outputs") or {}).items():
            run.outputs.collectors[str(dest_id)] = collector_of(schema)
        run.records_in = int(manifest.get("records_in") or 0)
    task.lineage_run = run
    return run


def collector_of(schema: Schema) -> SchemaCollector:
    """A collector holding ``schema`` (as :meth:`SchemaCollector.as_json` wrote it)."""
    collector = SchemaCollector()
    for name, kind in schema.items():
        if isinstance(kind, dict):
            collector.fields[name] = "struct"
            collector.nested[name] = collector_of(kind)
        else:
            collector.fields[name] = str(kind)
    return collector


def load_lineage_run(job_id: str) -> LineageRun:
    """The job's configuration for a task that has not run yet (on start), with its own engine."""
    from muxly_provider import settings
    from muxly_provider.db.engine import build_engine
    from muxly_provider.runtime.loading import load_job_runtime

    url = settings.sql_alchemy_conn()
    engine = build_engine(url, settings.db_schema(url))
    try:
        runtime = load_job_runtime(job_id, engine)
    finally:
        engine.dispose()
    data_spec: Mapping[str, Any] = runtime.action_params.get("data_spec") or {}
    try:
        from airflow.sdk import get_current_context

        from muxly_provider.operators.job import run_params

        data_spec = run_params(runtime, get_current_context()).get("data_spec") or {}
    except Exception:  # no task context (a thread without it): the unresolved data spec names the data
        log.debug("OpenLineage: no task context for job %s; data_spec unresolved", job_id, exc_info=True)
    return LineageRun(runtime, data_spec)


def task_lineage(run: LineageRun, destination_ids: Iterable[str]) -> TaskLineage:
    """The datasets, schemas and column lineage of a task that reads the connector and writes
    ``destination_ids``."""
    from muxly_provider.lineage.columns import destination_columns
    from muxly_provider.lineage.datasets import connector_sources, destination_dataset
    from muxly_provider.lineage.facets import OutputLineage, TaskLineage

    runtime = run.runtime
    input_schema = run.inputs.as_json() or None
    outputs = []
    for dest_id in destination_ids:
        context = runtime.destinations.get(dest_id)
        if context is None:
            continue
        export = runtime.action_type == "export" and dest_id in runtime.export_destination_ids
        collector = run.outputs.collectors.get(dest_id)
        schema = collector.as_json() if collector is not None else (input_schema if export else None)
        columns = destination_columns(
            runtime.routes,
            dest_id,
            export=export,
            output_fields=schema or (),
            input_fields=input_schema if input_schema is not None else None,
        )
        outputs.append(
            OutputLineage(destination_dataset(context), schema, columns, run.delivered.get(dest_id))
        )
    return TaskLineage(
        sources=connector_sources(runtime.connector, run.data_spec),
        input_schema=input_schema,
        records_in=run.records_in,
        outputs=tuple(outputs),
        secrets=tuple(runtime.secrets),
    )


class MuxlyLineageMixin:
    """OpenLineage methods for an operator with a ``job_id``: the connector is its input dataset and
    :meth:`lineage_outputs` its output datasets."""

    job_id: str
    lineage_run: LineageRun | None = None

    def lineage_outputs(self, runtime: JobRuntime) -> list[str]:
        """The destinations this task writes (none by default)."""
        return []

    def _openlineage(self) -> OperatorLineage[Any, Any]:
        from muxly_provider.lineage.facets import operator_lineage

        run = self.lineage_run if self.lineage_run is not None else load_lineage_run(self.job_id)
        return operator_lineage(task_lineage(run, self.lineage_outputs(run.runtime)))

    def get_openlineage_facets_on_start(self) -> OperatorLineage[Any, Any]:
        """Datasets from the job's configuration (the task has not read anything yet)."""
        return self._openlineage()

    def get_openlineage_facets_on_complete(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """Datasets with the schemas and counts the task saw."""
        return self._openlineage()

    def get_openlineage_facets_on_failure(self, task_instance: Any) -> OperatorLineage[Any, Any]:
        """Datasets with what the task saw before it failed."""
        return self._openlineage()
