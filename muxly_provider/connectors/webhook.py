"""The ``webhook`` connector: the records a delivery carried (the counterpart of the original Muxly's push collector).

A job whose connector is of type ``webhook`` fetches nothing: its records are the JSON body of the delivery that
started the run. The extract task hands the body to the connector in ``data_spec`` (:func:`with_run_payload`):

* the return value (XCom) of the run's ``wait_for_webhook`` task, when the job's DAG has one (the delivery the
  run waited for, even when another delivery started the run), and otherwise
* the run's ``conf["payload"]``: set by ``POST /muxly/webhooks/{endpoint_path}``, by ``airflow muxly jobs run
  --payload``, by ``POST /muxly/api/v1/jobs/{id}/run`` or by Airflow's own REST trigger with a ``conf``.

``records_path`` (``data_spec.records_path`` of the job, else ``connection_settings.records_path``, else the
whole body) is a path in Muxly's syntax (:mod:`muxly_provider.routing.paths`: ``data.items``,
``$.batch['records']``, ``events[0].rows``). The value found there is one record when it is an object, many when
it is a list of objects; anything else (a scalar, ``null``, a list holding a non-object, a path that does not
resolve) fails the extract with a message naming the path, where the body came from and what was found.

The body is at most ``[muxly] webhook_max_body_bytes`` as compact UTF-8 JSON: the endpoint refuses larger
deliveries itself (413), and a payload given through Airflow's REST API or the CLI is checked here.

A run without a payload (a scheduled or manual run started without one, or an empty delivery) routes zero
records and says so in the task log. The connection test reaches nothing and says so.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from typing import Any

from muxly_provider.connectors.base import MuxlyConnector, Record
from muxly_provider.routing.paths import MISSING, PathError, get_path, parse_path

log = logging.getLogger(__name__)

CONNECTOR_TYPE = "webhook"
WAIT_TASK_ID = "wait_for_webhook"
"""The task that waits for a delivery before ``extract`` (``action_params.wait_for_webhook``)."""

PAYLOAD_KEY = "payload"
"""The ``data_spec`` key that carries the run's body to the connector (set by the extract task only)."""
SOURCE_KEY = "payload_source"
"""The ``data_spec`` key that says where the body came from (named in every error)."""

__all__ = [
    "CONNECTOR_TYPE",
    "PAYLOAD_KEY",
    "SOURCE_KEY",
    "WAIT_TASK_ID",
    "WebhookConnector",
    "extract_records",
    "json_size",
    "run_payload",
    "with_run_payload",
]


def json_size(payload: Any) -> int:
    """The size of ``payload`` as compact UTF-8 JSON, in bytes (what ``webhook_max_body_bytes`` limits)."""
    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=str)
    return len(text.encode("utf-8"))


def _kind(value: Any) -> str:
    """A JSON name of ``value``'s type, for messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return f"a number ({value!r})"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:40] + "..."
        return f"a string ({shown!r})"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, Mapping):
        return "an object"
    return f"a {type(value).__name__}"


def extract_records(payload: Any, records_path: str | None, source: str) -> list[Record]:
    """The records at ``records_path`` of ``payload``: one object is one record, a list of objects is many.

    :param payload: the decoded JSON body
    :param records_path: a path in Muxly's syntax; ``None`` or empty for the whole body
    :param source: where the body came from, for messages (``conf['payload']``, ...)
    :raises ValueError: naming the path, the source and what was found (the connector adds its id)
    """
    where = f"records_path {records_path!r}" if records_path else "the whole body (no records_path)"
    node = payload
    if records_path:
        try:
            segments = parse_path(records_path)
        except PathError as exc:
            raise ValueError(f"records_path {records_path!r} is not a path: {exc}") from None
        node = get_path(payload, segments)
        if node is MISSING:
            raise ValueError(
                f"records_path {records_path!r} does not resolve in the payload from {source} "
                f"(the body is {_kind(payload)}): expected an object or a list of objects there"
            )
    if isinstance(node, Mapping):
        return [dict(node)]
    if isinstance(node, list):
        for index, item in enumerate(node):
            if not isinstance(item, Mapping):
                raise ValueError(
                    f"item {index} of the list at {where} of the payload from {source} is {_kind(item)}: "
                    "every item must be an object (one record each)"
                )
        return [item if type(item) is dict else dict(item) for item in node]
    raise ValueError(
        f"{where} of the payload from {source} is {_kind(node)}: expected an object (one record) "
        "or a list of objects"
    )


class WebhookConnector(MuxlyConnector):
    """Records pushed to Muxly: the body of the delivery that started the run (see the module docstring)."""

    connector_type = CONNECTOR_TYPE

    def fetch(self, data_spec: Mapping[str, Any]) -> Iterator[list[Record]]:
        """Yield the body's records in batches of at most ``batch_size``."""
        from muxly_provider import settings

        source = data_spec.get(SOURCE_KEY)
        if not source:
            log.warning(
                "Muxly: connector %r (webhook) has no payload in this run (a scheduled run, a manual run "
                "without a payload, or an empty delivery): no records",
                self.context.id,
            )
            return
        payload = data_spec.get(PAYLOAD_KEY)
        limit = settings.webhook_max_body_bytes()
        size = json_size(payload)
        if size > limit:
            raise self.error(
                f"the payload from {source} is {size} bytes as JSON, over [muxly] webhook_max_body_bytes "
                f"({limit} bytes)"
            )
        path = data_spec.get("records_path")
        field = "data_spec.records_path"
        if path is None:
            path = self.context.settings.get("records_path")
            field = "connection_settings.records_path"
        if path is not None and not isinstance(path, str):
            raise self.error(f"{field} must be a path (text), got {_kind(path)}")
        try:
            records = extract_records(payload, path or None, str(source))
        except ValueError as exc:
            raise self.error(str(exc)) from None
        log.info(
            "Muxly: connector %r (webhook): %d record(s) from %s%s",
            self.context.id,
            len(records),
            source,
            f" at {field} {path!r}" if path else "",
        )
        size_of_batch = max(1, self.batch_size)
        for start in range(0, len(records), size_of_batch):
            yield records[start : start + size_of_batch]

    def test_connection(self) -> str:
        """Nothing to reach: the records arrive with the delivery."""
        return (
            f"webhook connector {self.context.id!r}: nothing to reach; its records are the body of the "
            "delivery that starts a run (conf['payload'] or the wait_for_webhook task)"
        )


def run_payload(context: Mapping[str, Any]) -> tuple[Any, str] | None:
    """The body of the delivery that started this run, and where it came from; ``None`` when there is none.

    When the DAG has a ``wait_for_webhook`` task, its return value (XCom) is the body: the delivery the run
    waited for, even when the run was started by another one. Otherwise the run's ``conf["payload"]``. A
    ``null`` body counts as none.

    :param context: the Airflow task context
    """
    task = context.get("task")
    dag = getattr(task, "dag", None)
    if dag is not None and WAIT_TASK_ID in getattr(dag, "task_ids", ()):
        body = context["ti"].xcom_pull(task_ids=WAIT_TASK_ID)
        return None if body is None else (body, f"the return value of task {WAIT_TASK_ID!r}")
    conf = getattr(context.get("dag_run"), "conf", None)
    if isinstance(conf, Mapping) and conf.get("payload") is not None:
        return conf["payload"], "conf['payload']"
    return None


def with_run_payload(
    connector_type: str, data_spec: Mapping[str, Any], context: Mapping[str, Any]
) -> dict[str, Any]:
    """``data_spec`` for the run's connector: for a ``webhook`` connector, with the run's body added.

    The body is added after the job's templates were rendered, so nothing in a delivery is ever rendered as a
    template. Keys of the job's own ``data_spec`` with the reserved names are dropped (a job cannot fake a
    delivery).

    :param connector_type: the job's connector type (other types get ``data_spec`` unchanged)
    :param data_spec: the job's rendered ``data_spec``
    :param context: the Airflow task context
    """
    if connector_type != CONNECTOR_TYPE:
        return dict(data_spec)
    spec = {k: v for k, v in data_spec.items() if k not in (PAYLOAD_KEY, SOURCE_KEY)}
    found = run_payload(context)
    if found is not None:
        spec[PAYLOAD_KEY], spec[SOURCE_KEY] = found
    return spec
