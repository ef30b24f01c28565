"""Preview one run of a job: what each destination would receive, with nothing written and nothing recorded.

:func:`preview_job` takes the job's loaded configuration (:func:`~muxly_provider.runtime.loading.load_job_runtime`)
and either reads at most ``limit`` records from the job's connector (in a thread, within ``seconds``: the
bound of ``POST /connectors/{id}/sample``, :func:`muxly_provider.api.v1.bounded.read_sample`) or takes the
records it is given. The records go through the same :class:`~muxly_provider.routing.Router` a run builds from
the same route specs (conditions, transformations, joins, defaults, error handling), with the run's
classification of the output (disabled destinations skipped, transformation failures of a ``dead_letter``
route sent to its dead-letter destination: :mod:`muxly_provider.preview.shares`). Each destination's share is
then rendered as it would write it (:mod:`muxly_provider.preview.render`); the answer's shape is
:mod:`muxly_provider.preview.results`.

Differences from a run, on purpose:

* every transformation failure is kept with its error (a run counts ``continue`` failures only); a route in
  ``fail`` mode, or past ``max_failed_records``, stops the preview with ``error`` saying that the run would fail;
* a join's lookup connector is read through the same bound (at most :data:`LOOKUP_MAX_RECORDS` rows, within
  what is left of ``seconds``); a cut lookup is named in ``warnings``;
* ``run_condition`` is not evaluated and ``notifications`` are not sent;
* nothing is staged, delivered, dead-lettered or recorded: no ``job_executions`` row, no DAG run, no file, row,
  request or message. Destinations are never opened (their connections, files and sockets are left alone).

The answer holds no secret: URLs and headers are shown masked, and every secret value of the job's connector
and destinations is replaced by ``***`` wherever it appears in the answer.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from muxly_provider.destinations.base import RunInfo
from muxly_provider.exceptions import MuxlyError
from muxly_provider.preview.results import SHOWN, DestinationPreview, JobPreview
from muxly_provider.preview.shares import Shares, route_records
from muxly_provider.routing.transform_join import LookupLoader
from muxly_provider.runtime.loading import JobRuntime

DEFAULT_LIMIT = 10
"""Records read from the connector when no ``limit`` is given."""
MAX_RECORDS = 100
"""The most records a preview reads from the connector or takes as a sample (as ``/connectors/{id}/sample``)."""
PREVIEW_SECONDS = 20.0
"""The longest a preview reads (connector and join lookups); then it routes what it has, ``timed_out``."""
LOOKUP_MAX_RECORDS = 10_000
"""Rows of a join's lookup connector a preview reads at most."""


class MuxlyPreviewError(MuxlyError):
    """The preview cannot run (bad sample records, a template of ``action_params`` that does not render)."""


def preview_run(job_id: str, connector_id: str, when: datetime) -> RunInfo:
    """The run a preview renders templates for (``run_id`` ``preview__<time>``; nothing is recorded under it)."""
    from muxly_provider.dag_factory.naming import dag_id_for

    return RunInfo(
        dag_id=dag_id_for(job_id),
        run_id=f"preview__{when.strftime('%Y%m%dT%H%M%S')}",
        job_id=job_id,
        connector_id=connector_id,
        logical_date=when,
    )


def preview_data_spec(runtime: JobRuntime, run: RunInfo, payload: Any = None) -> dict[str, Any]:
    """The connector's ``data_spec`` as a run at ``run.logical_date`` would have it.

    Date variables resolved and templates rendered like the operator does (with the preview's run id, no DAG
    params); ``payload`` is the delivery's body of a ``webhook`` connector.

    :raises TemplateRenderError: naming the field of ``action_params`` that does not render
    """
    from muxly_provider.connectors.webhook import with_run_payload
    from muxly_provider.runtime import variables

    when = run.logical_date
    dag_run = SimpleNamespace(
        dag_id=run.dag_id,
        run_id=run.run_id,
        conf={"payload": payload} if payload is not None else {},
        data_interval_start=None,
        data_interval_end=None,
    )
    params = variables.resolve(dict(runtime.action_params), variables.date_variables(when))
    params = variables.render_action_params(params, variables.template_variables(dag_run, when, {}))
    data_spec = params.get("data_spec") or {}
    return with_run_payload(runtime.connector.connector_type, data_spec, {"dag_run": dag_run})


def lookup_connector_ids(runtime: JobRuntime) -> list[str]:
    """The connectors a preview of ``runtime`` reads for its joins (``join_connector_id`` of its rules' steps)."""
    found: set[str] = set()
    for route in runtime.routes:
        for rule in route.rules:
            for step in rule.transformations:
                connector_id = step.config.get("join_connector_id")
                if step.transformation_type == "join" and connector_id:
                    found.add(str(connector_id))
    return sorted(found)


def bounded_lookup_loader(deadline: float, warnings: list[str]) -> LookupLoader:
    """A join's lookup read like a sample: at most :data:`LOOKUP_MAX_RECORDS` rows, until ``deadline``."""
    from muxly_provider.api.v1.bounded import read_sample
    from muxly_provider.connectors.registry import get_connector_class
    from muxly_provider.runtime.loading import connector_context

    def load(connector_id: str, data_spec: Mapping[str, Any]) -> list[dict[str, Any]]:
        context = connector_context(connector_id)
        connector = get_connector_class(context.connector_type)(context)
        seconds = max(0.0, deadline - time.monotonic())
        sample = read_sample(connector, data_spec, limit=LOOKUP_MAX_RECORDS, seconds=seconds)
        if sample.timed_out:
            warnings.append(
                f"join lookup connector {connector_id!r}: the time bound stopped the read after "
                f"{len(sample.records)} row(s); records may miss their match"
            )
        elif sample.truncated:
            warnings.append(
                f"join lookup connector {connector_id!r}: only its first {LOOKUP_MAX_RECORDS} rows were read; "
                "records may miss their match"
            )
        return sample.records

    return load


def _destinations(runtime: JobRuntime, run: RunInfo, shares: Shares) -> list[DestinationPreview]:
    from pydantic import ValidationError

    from muxly_provider.preview.render import render_share
    from muxly_provider.runtime.runner import dead_letter_targets

    targets = dead_letter_targets(runtime)
    found: list[DestinationPreview] = []
    for dest_id in sorted(set(runtime.destinations) | set(runtime.disabled_destinations)):
        context = runtime.destinations.get(dest_id)
        if context is None:
            found.append(
                DestinationPreview(
                    id=dest_id,
                    name=dest_id,
                    destination_type="",
                    enabled=False,
                    routed=shares.skipped.get(dest_id, 0),
                    error="destination is disabled: a run skips its records",
                )
            )
            continue
        share = shares.records.get(dest_id, [])
        entry = DestinationPreview(
            id=dest_id,
            name=context.name,
            destination_type=context.destination_type,
            enabled=True,
            routed=len(share),
            records=[dict(r) for r in share[:SHOWN]],
            dead_letter_destination_id=targets.get(dest_id),
        )
        if share:
            try:
                rendered = render_share(context, run, share, SHOWN)
            except ValidationError as exc:
                problems = "; ".join(
                    f"{'.'.join(str(p) for p in e['loc']) or 'config'}: {e['msg']}" for e in exc.errors()
                )
                entry.error = f"destination {dest_id!r}: invalid config ({problems})"
            except (MuxlyError, ValueError) as exc:  # a template, a config the destination refuses
                entry.error = str(exc)
            else:
                entry.rendered_as, entry.rendered = rendered.rendered_as, rendered.items
                entry.rendered_total, entry.target = rendered.total, rendered.target
        found.append(entry)
    return found


def _redacted(value: Any, secrets: Sequence[str]) -> Any:
    if isinstance(value, str):
        for secret in secrets:
            if secret in value:
                value = value.replace(secret, "***")
        return value
    if isinstance(value, Mapping):
        return {_redacted(k, secrets): _redacted(v, secrets) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_redacted(v, secrets) for v in value]
    return value


def preview_job(
    runtime: JobRuntime,
    *,
    records: Sequence[Any] | None = None,
    payload: Any = None,
    limit: int = DEFAULT_LIMIT,
    seconds: float | None = None,
    lookup_loader: LookupLoader | None = None,
    when: datetime | None = None,
) -> dict[str, Any]:
    """What a run of the job would deliver, per destination, with nothing written (see the module docstring).

    :param runtime: the job's loaded configuration
    :param records: sample records to route instead of reading the connector (at most :data:`MAX_RECORDS`)
    :param payload: for a ``webhook`` connector, the body of a delivery (read through its ``records_path``)
    :param limit: the most records read from the connector (1 to :data:`MAX_RECORDS`)
    :param seconds: the time bound of the reads (default: :data:`PREVIEW_SECONDS`)
    :param lookup_loader: how a join's lookup connector is read (default: :func:`bounded_lookup_loader`)
    :param when: the run's logical date (default: now)
    :returns: :meth:`JobPreview.as_dict`, secrets replaced by ``***``
    :raises MuxlyPreviewError: bad sample records or limit
    :raises MuxlyError: the connector or a lookup failed (its message names it), a template does not render
    """
    from muxly_provider.api.v1.bounded import read_sample
    from muxly_provider.connectors.registry import get_connector_class
    from muxly_provider.secret_urls import MIN_FRAGMENT

    if not 1 <= limit <= MAX_RECORDS:
        raise MuxlyPreviewError(f"limit must be between 1 and {MAX_RECORDS} (got {limit})")
    seconds = PREVIEW_SECONDS if seconds is None else seconds
    started = time.monotonic()
    deadline = started + seconds
    when = when or datetime.now(UTC)
    run = preview_run(runtime.job_id, runtime.connector.id, when)
    preview = JobPreview(
        job_id=runtime.job_id,
        action_type=runtime.action_type,
        source="connector" if records is None else "records",
    )
    if records is not None:
        if len(records) > MAX_RECORDS:
            raise MuxlyPreviewError(f"at most {MAX_RECORDS} sample records (got {len(records)})")
        for index, record in enumerate(records):
            if not isinstance(record, Mapping):
                raise MuxlyPreviewError(f"sample record {index} is not a JSON object")
        inputs = [dict(record) for record in records]
    else:
        data_spec = preview_data_spec(runtime, run, payload)
        connector_class = get_connector_class(runtime.connector.connector_type)
        connector = connector_class(runtime.connector, batch_size=limit + 1)
        sample = read_sample(connector, data_spec, limit=limit, seconds=seconds)
        inputs, preview.truncated, preview.timed_out = sample.records, sample.truncated, sample.timed_out
        if runtime.connector.connector_type == "webhook" and payload is None:
            preview.warnings.append(
                "a webhook connector's records come with a delivery: give 'records' (or a 'payload')"
            )
    preview.records_in = len(inputs)
    shares = Shares(runtime, run, preview)
    loader = lookup_loader or bounded_lookup_loader(deadline, preview.warnings)
    route_records(runtime, inputs, shares, loader)
    preview.destinations = _destinations(runtime, run, shares)
    preview.duration_seconds = round(time.monotonic() - started, 3)
    secrets = sorted({s for s in runtime.secrets if len(s) >= MIN_FRAGMENT}, key=len, reverse=True)
    answer: dict[str, Any] = _redacted(preview.as_dict(), secrets)
    return answer
