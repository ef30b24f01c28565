"""OpenLineage's ``OperatorLineage`` of one Muxly task, built from a :class:`TaskLineage`.

The only module of Muxly that imports OpenLineage (the ``apache-airflow-providers-openlineage`` provider and
its ``openlineage-python`` client); the operators import it only when the provider asks for their facets.
Facets: ``schema`` (fields seen, with nested ``struct`` fields), ``columnLineage`` (per output field, and the
fields that filter or group the records), ``inputStatistics``/``outputStatistics`` (records read and
delivered), and the ``sql`` job facet for query connectors.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from muxly_provider.lineage.columns import DestinationColumns
from muxly_provider.lineage.naming import DatasetName, SourceDatasets, redacted
from muxly_provider.lineage.schema import Schema

if TYPE_CHECKING:
    from airflow.providers.openlineage.extractors import OperatorLineage


@dataclass(frozen=True)
class OutputLineage:
    """One destination a task writes.

    :param dataset: its dataset
    :param schema: the fields of the records routed there (``None``: not known yet)
    :param columns: its column lineage (``None``: not known)
    :param row_count: records delivered (``None``: not known yet)
    """

    dataset: DatasetName
    schema: Schema | None = None
    columns: DestinationColumns | None = None
    row_count: int | None = None


@dataclass(frozen=True)
class TaskLineage:
    """What one task read and wrote, in Muxly's terms.

    :param sources: the connector's datasets
    :param input_schema: the fields of the connector's records (``None``: not known yet)
    :param records_in: records read (``None``: not known yet)
    :param outputs: the destinations written
    :param secrets: values that must not appear in a dataset name
    """

    sources: SourceDatasets
    input_schema: Schema | None = None
    records_in: int | None = None
    outputs: tuple[OutputLineage, ...] = ()
    secrets: tuple[str, ...] = field(default=(), repr=False)


def schema_fields(schema: Schema) -> list[Any]:
    """``SchemaDatasetFacetFields`` of ``schema`` (a ``struct`` lists its fields)."""
    from openlineage.client.generated.schema_dataset import SchemaDatasetFacetFields

    return [
        SchemaDatasetFacetFields(name=name, type="struct", fields=schema_fields(kind))
        if isinstance(kind, dict)
        else SchemaDatasetFacetFields(name=name, type=str(kind))
        for name, kind in schema.items()
    ]


def _schema_facet(schema: Schema | None) -> dict[str, Any]:
    from openlineage.client.generated.schema_dataset import SchemaDatasetFacet

    return {"schema": SchemaDatasetFacet(fields=schema_fields(schema))} if schema else {}


def _input_fields(
    sources: SourceDatasets,
    names: Iterable[tuple[str, str]],
    kind: str,
    names_of: dict[DatasetName, DatasetName],
) -> list[Any]:
    from openlineage.client.generated.column_lineage_dataset import InputField, Transformation

    found = []
    for name, subtype in sorted(names):
        for dataset, column in sources.origins(name):
            shown = names_of.get(dataset, dataset)
            found.append(
                InputField(
                    namespace=shown.namespace,
                    name=shown.name,
                    field=column,
                    transformations=[Transformation(type=kind, subtype=subtype)],
                )
            )
    return found


def _column_facet(
    sources: SourceDatasets, columns: DestinationColumns | None, names_of: dict[DatasetName, DatasetName]
) -> dict[str, Any]:
    from openlineage.client.generated.column_lineage_dataset import ColumnLineageDatasetFacet, Fields

    if columns is None or not sources.datasets:
        return {}
    fields = {}
    for name, origins in columns.fields.items():
        inputs = _input_fields(sources, origins, "DIRECT", names_of)
        if inputs:
            fields[name] = Fields(inputFields=inputs)
    dataset = _input_fields(sources, ((f, "FILTER") for f in columns.filters), "INDIRECT", names_of)
    dataset += _input_fields(sources, ((f, "GROUP_BY") for f in columns.group_by), "INDIRECT", names_of)
    if not fields and not dataset:
        return {}
    return {"columnLineage": ColumnLineageDatasetFacet(fields=fields, dataset=dataset)}


def operator_lineage(task: TaskLineage) -> OperatorLineage[Any, Any]:
    """The ``OperatorLineage`` of ``task`` (dataset names redacted with ``task.secrets``)."""
    from airflow.providers.common.compat.openlineage.facet import InputDataset, OutputDataset, SQLJobFacet
    from airflow.providers.openlineage.extractors import OperatorLineage
    from openlineage.client.generated.input_statistics_input_dataset import InputStatisticsInputDatasetFacet
    from openlineage.client.generated.output_statistics_output_dataset import (
        OutputStatisticsOutputDatasetFacet,
    )

    sources = task.sources
    shown_inputs = redacted(sources.datasets, task.secrets)
    names_of = dict(zip(sources.datasets, shown_inputs, strict=True))
    # The records' fields are those of the one dataset read, not of a query's tables.
    single = len(sources.datasets) == 1 and sources.query is None
    inputs = [
        InputDataset(
            namespace=shown.namespace,
            name=shown.name,
            facets=_schema_facet(task.input_schema) if single else {},
            inputFacets=(
                {"inputStatistics": InputStatisticsInputDatasetFacet(rowCount=task.records_in)}
                if single and task.records_in is not None
                else {}
            ),
        )
        for shown in shown_inputs
    ]
    outputs = []
    for output, shown in zip(
        task.outputs, redacted((o.dataset for o in task.outputs), task.secrets), strict=True
    ):
        outputs.append(
            OutputDataset(
                namespace=shown.namespace,
                name=shown.name,
                facets={
                    **_schema_facet(output.schema),
                    **_column_facet(sources, output.columns, names_of),
                },
                outputFacets=(
                    {"outputStatistics": OutputStatisticsOutputDatasetFacet(rowCount=output.row_count)}
                    if output.row_count is not None
                    else {}
                ),
            )
        )
    job_facets = {"sql": SQLJobFacet(query=sources.query)} if sources.query else {}
    return OperatorLineage(inputs=inputs, outputs=outputs, job_facets=job_facets)
