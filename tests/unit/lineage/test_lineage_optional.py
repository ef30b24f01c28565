"""OpenLineage is optional: Muxly imports, builds its DAGs and collects nothing without the provider."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest

_WITHOUT_PROVIDER = """
import sys

BLOCKED = ("airflow.providers.openlineage.conf", "airflow.providers.openlineage.extractors", "openlineage")
asked = []


class NotInstalled:
    # Muxly's view of an environment without the provider: the modules Muxly uses do not import. (Airflow's
    # provider discovery still sees the installed distribution; hiding that would break Airflow, not Muxly.)
    def find_spec(self, name, path=None, target=None):
        if name.startswith(BLOCKED):
            asked.append(name)
            raise ImportError(f"No module named {name!r}")
        return None


sys.meta_path.insert(0, NotInstalled())
from muxly_provider.dag_factory.builder import build_dag
from muxly_provider.operators.job import MuxlyJobOperator
from muxly_provider.operators.staged import MuxlyDeliverOperator, MuxlyExtractOperator
from muxly_provider.lineage import operators
from muxly_provider.lineage.datasets import connector_sources
from muxly_provider.connectors.base import ConnectorContext

assert asked == [], asked  # importing Muxly imports nothing of OpenLineage
assert not operators.lineage_active()
task = MuxlyExtractOperator(task_id="extract", job_id="j")
assert operators.begin(task, None, {}) is None and task.lineage_run is None
# Naming needs no OpenLineage: the query is kept, its tables are not parsed.
sources = connector_sources(
    ConnectorContext("c", "c", "database", {}, {"connection_string": "sqlite:///x.db"}), {"query": "SELECT 1"}
)
assert sources.datasets == () and sources.query == "SELECT 1"
print("ok")
"""


def test_muxly_works_without_the_openlineage_provider() -> None:
    done = subprocess.run(
        [sys.executable, "-c", _WITHOUT_PROVIDER],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        timeout=120,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")


def test_lineage_is_off_when_the_provider_has_no_transport(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("airflow.providers.openlineage")
    from muxly_provider.lineage import operators

    for name in [k for k in os.environ if k.startswith(("AIRFLOW__OPENLINEAGE__", "OPENLINEAGE_"))]:
        monkeypatch.delenv(name)
    assert not operators.lineage_active()
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__TRANSPORT", '{"type": "console"}')
    assert operators.lineage_active()
    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__DISABLED", "true")
    assert not operators.lineage_active()


def test_the_manifest_carries_the_schemas_to_the_deliveries(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("airflow.providers.openlineage")
    from muxly_provider.lineage import operators

    monkeypatch.setenv("AIRFLOW__OPENLINEAGE__TRANSPORT", '{"type": "console"}')
    extract: Any = type("Task", (), {})()
    run = operators.begin(extract, None, {})  # type: ignore[arg-type]
    assert run is not None and extract.lineage_run is run
    run.inputs.observe([{"a": 1, "s": {"b": "x"}}])
    run.outputs.observe("d", [{"a": 1}])
    manifest = {"records_in": 1, "lineage": run.manifest_entry()}
    deliver: Any = type("Task", (), {})()
    again = operators.begin(deliver, None, {}, manifest)  # type: ignore[arg-type]
    assert again is not None and again.records_in == 1
    assert again.inputs.as_json() == {"a": "integer", "s": {"b": "string"}}
    assert again.outputs.as_json() == {"d": {"a": "integer"}}


def test_each_task_writes_its_own_destinations() -> None:
    from muxly_provider.connectors.base import ConnectorContext
    from muxly_provider.destinations.base import DestinationContext
    from muxly_provider.operators.job import MuxlyJobOperator
    from muxly_provider.operators.staged import (
        MuxlyDeadLetterOperator,
        MuxlyDeliverOperator,
        MuxlyExtractOperator,
    )
    from muxly_provider.routing.route_specs import ErrorHandlingSpec, RouteSpec, RuleSpec
    from muxly_provider.runtime.loading import JobRuntime

    handling = ErrorHandlingSpec(mode="dead_letter", dead_letter_destination_id="dlq")
    rule = RuleSpec(id="r", name="r", condition=None, destination_ids=("a", "b"))
    runtime = JobRuntime(
        job_id="j",
        name="j",
        action_type="sync",
        action_params={},
        connector=ConnectorContext(id="c", name="c", connector_type="api"),
        routes=(RouteSpec(id="route", name="route", rules=(rule,), error_handling=handling),),
        destinations={d: DestinationContext(d, d, "file", {}) for d in ("a", "b", "dlq")},
    )
    assert MuxlyExtractOperator(task_id="e", job_id="j").lineage_outputs(runtime) == []
    assert MuxlyDeliverOperator(task_id="d", job_id="j", destination_id="b").lineage_outputs(runtime) == ["b"]
    assert MuxlyDeadLetterOperator(task_id="l", job_id="j").lineage_outputs(runtime) == ["dlq"]
    assert MuxlyJobOperator(task_id="r", job_id="j").lineage_outputs(runtime) == ["a", "b", "dlq"]
