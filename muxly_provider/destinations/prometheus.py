"""The ``prometheus`` destination: gauges, counters and histograms from record fields, pushed to a Pushgateway.

Options (REFERENCE.md): ``metrics``, a list of ``name``, ``type`` (gauge, counter, histogram),
``description``, ``value_field`` (a path into the record) and ``labels`` (label -> a path into the record,
or a constant when no such field exists); (new) ``pushgateway_url`` (or ``conn_id``, an Airflow HTTP connection:
its base URL, and its login and password as basic auth) and ``job``.

For each record and metric: a gauge is set to the value (the last record of a label set wins), a counter is
increased by the value (by 1 without ``value_field``), a histogram observes the value. A record without the
value (or with a value that is not a number) leaves that metric alone. After every batch the whole registry of
the run is pushed (``PUT``) to the group ``job=<job>, muxly_destination=<destination id>``: pushes replace the
group, so a retried run ends with the same values as one clean run (pushes are idempotent), and the group holds
the latest run's metrics.
"""

from __future__ import annotations

from functools import partial
from typing import Any

from muxly_provider.config.destinations import PrometheusDestinationConfig, PrometheusMetricConfig
from muxly_provider.destinations.base import MuxlyDestination, Record

_BUCKETS = (
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    25.0,
    50.0,
    100.0,
    250.0,
    500.0,
    1000.0,
)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _getter(path: str) -> Any:
    """A reader of ``path``; a text that is no path is a constant (the reader never finds it)."""
    from muxly_provider.routing.paths import MISSING, PathError, compile_getter, parse_path

    try:
        return compile_getter(parse_path(path))
    except PathError:
        return lambda _record: MISSING


class _Metric:
    def __init__(self, spec: PrometheusMetricConfig, registry: Any) -> None:
        from prometheus_client import Counter, Gauge, Histogram
        from prometheus_client.registry import CollectorRegistry

        from muxly_provider.routing.paths import compile_getter, parse_path

        assert isinstance(registry, CollectorRegistry)
        self.spec = spec
        self.labels = sorted(spec.labels)
        self.value = compile_getter(parse_path(spec.value_field)) if spec.value_field else None
        self.label_getters = [(spec.labels[name], _getter(spec.labels[name])) for name in self.labels]
        kind = {"gauge": Gauge, "counter": Counter, "histogram": Histogram}[spec.type]
        options: dict[str, Any] = {"registry": registry}
        if spec.type == "histogram":
            options["buckets"] = _BUCKETS
        self.metric: Any = kind(spec.name, spec.description or spec.name, self.labels, **options)

    def observe(self, record: Record) -> None:
        from muxly_provider.routing.paths import MISSING

        if self.value is None:
            value: float | None = 1.0
        else:
            value = _number(self.value(record))
        if value is None:
            return
        label_values = []
        for constant, getter in self.label_getters:
            found = getter(record)
            label_values.append(constant if found is MISSING or found is None else str(found))
        metric = self.metric.labels(*label_values) if self.labels else self.metric
        if self.spec.type == "gauge":
            metric.set(value)
        elif self.spec.type == "counter":
            if value >= 0:
                metric.inc(value)
        else:
            metric.observe(value)


class PrometheusDestination(MuxlyDestination):
    """Turn records into metrics and push them to a Pushgateway."""

    destination_type = "prometheus"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        from prometheus_client.registry import CollectorRegistry

        self.settings = self.parse_config(PrometheusDestinationConfig)
        if bool(self.settings.pushgateway_url) == bool(self.settings.conn_id):
            raise self.fail(
                "exactly one of pushgateway_url or conn_id (an Airflow HTTP connection) is required",
                retryable=False,
            )
        self._gateway: tuple[str, Any] | None = None
        self.registry = CollectorRegistry()
        try:
            self.metrics = [_Metric(spec, self.registry) for spec in self.settings.metrics]
        except ValueError as exc:
            raise self.fail(f"invalid metrics: {exc}", retryable=False) from None
        self.pushes = 0
        self._observed: int | None = None  # the batch already counted (a retried push must not count twice)

    def gateway(self) -> tuple[str, Any]:
        """The Pushgateway's URL and the session to push with (``None``: a new one): ``pushgateway_url``, or the
        base URL and the session (basic auth, headers) of the Airflow HTTP connection ``conn_id``."""
        if self._gateway is None:
            if self.settings.conn_id:
                from muxly_provider.hooks import providers as provider_hooks

                try:
                    self._gateway = provider_hooks.http_session(self.settings.conn_id)
                except provider_hooks.MuxlyConnectionError as exc:
                    raise self.fail(str(exc), retryable=not exc.permanent) from None
            else:
                self._gateway = (str(self.settings.pushgateway_url), None)
        return self._gateway

    @property
    def grouping_key(self) -> dict[str, str]:
        """The Pushgateway group of this destination (besides ``job``)."""
        return {"muxly_destination": self.context.id}

    def write_batch(self, records: list[Record]) -> None:
        """Update the metrics from the batch and push the registry."""
        from prometheus_client import push_to_gateway

        from muxly_provider.http.client import pushgateway_handler

        if self._observed != self.batch_index:
            for record in records:
                for metric in self.metrics:
                    metric.observe(record)
            self._observed = self.batch_index
        gateway, session = self.gateway()
        try:
            push_to_gateway(
                gateway,
                job=self.settings.job,
                registry=self.registry,
                grouping_key=self.grouping_key,
                timeout=30,
                # Muxly's HTTP layer: the request guard (docs/security.md); a conn_id's session (its auth)
                handler=partial(pushgateway_handler, session=session),
            )
        except OSError as exc:
            status = getattr(exc, "code", None)
            retryable = not (isinstance(status, int) and 400 <= status < 500)
            raise self.fail(
                f"push to the Pushgateway failed ({type(exc).__name__} {status or ''})".strip(),
                retryable=retryable,
            ) from None
        self.pushes += 1
        self.batch_index += 1
        self.delivered += len(records)

    def commit(self) -> list[str]:
        """Every batch was pushed by :meth:`write_batch`."""
        return [f"pushgateway job={self.settings.job} muxly_destination={self.context.id}"]
