"""Templates of destinations (subjects, bodies, messages, keys), rendered in a sandboxed Jinja environment.

Placeholders are Jinja expressions: ``{{connector_id}}``, ``{{date}}``, ``{{count}}``, record fields
(``{{customer_name}}``, ``{{user.country}}``) and the names of ``template_variables`` (name -> path into the
record). They render in Muxly's one sandbox (:mod:`muxly_provider.templating`): no access to Python internals,
no mutation, no Airflow ``conn``/``var``, and an output bounded by ``[muxly] template_max_bytes``.

Variables of every template (:func:`template_context`):

``connector_id``, ``job_id``, ``dag_id``, ``run_id``, ``run_key``, ``destination_id``, ``destination_name``,
``date`` (``YYYY-MM-DD`` of the run's logical date), ``timestamp`` (``YYYYMMDD_HHMMSS``), ``logical_date``
(ISO 8601), ``count`` (records in the batch), ``records`` (the batch), ``record`` (the record; in a batch
template the first one), ``batch`` (0-based batch number), the fields of ``record`` at the top level, and the
``template_variables``. Missing names render as an empty string.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from muxly_provider.destinations.base import RunInfo
from muxly_provider.templating import TemplateRenderError, check_template, render, render_value

__all__ = ["TemplateRenderError", "check_template", "render", "render_value", "template_context"]


def template_context(
    run: RunInfo,
    *,
    destination_id: str,
    destination_name: str = "",
    records: Sequence[Mapping[str, Any]] = (),
    record: Mapping[str, Any] | None = None,
    batch: int = 0,
    variables: Mapping[str, str] | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The variables of a template (see the module docstring).

    :param run: the run being delivered
    :param destination_id: the destination's id
    :param destination_name: the destination's name
    :param records: the batch
    :param record: the record of a per-record template (default: the batch's first record)
    :param batch: the batch number
    :param variables: ``template_variables``: name -> path into ``record``
    :param extra: more variables (they win over everything else)
    """
    from muxly_provider.routing.paths import MISSING, PathError, get_path

    current = record if record is not None else (records[0] if records else {})
    context: dict[str, Any] = dict(current) if isinstance(current, Mapping) else {}
    when = run.logical_date
    context.update(
        connector_id=run.connector_id,
        job_id=run.job_id,
        dag_id=run.dag_id,
        run_id=run.run_id,
        run_key=run.run_key,
        destination_id=destination_id,
        destination_name=destination_name,
        date=when.strftime("%Y-%m-%d"),
        timestamp=when.strftime("%Y%m%d_%H%M%S"),
        logical_date=when.isoformat(),
        count=len(records) if record is None else 1,
        records=list(records) if record is None else [record],
        record=current,
        batch=batch,
    )
    for name, path in (variables or {}).items():
        try:
            value = get_path(current, path)
        except PathError:
            value = None
        context[name] = None if value is MISSING else value
    if extra:
        context.update(extra)
    return context
