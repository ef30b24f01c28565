"""Benchmark of a whole staged run: the same records through a job with 1 and with 5 destinations.

Run: ``.venv/bin/python benchmarks/bench_run.py [--records N] [--repeats R]`` (default 200,000 records).

The job: one route of the 5 rules of ``bench_router.py`` (3 transformations each); with 1 destination every rule
delivers to it, with 5 destinations rule ``i`` delivers to destination ``i`` (so both jobs write the same
number of records). Destinations are ``file`` destinations (jsonl) in a temporary folder; staging goes to a
temporary ``[muxly] staging_path``. Each run goes through the tasks' own code paths in this process, as the
operators call them: ``extract`` (:func:`route_and_stage` over the connector's batches of 1,000), the run
manifest through JSON (XCom), one :func:`deliver_share` per destination, :func:`deliver_dead_letters` and the
cleanup. Muxly's database and Airflow's scheduler are not part of it.

Measured in the same run (best of R):

* CPU time (``time.process_time``) of the whole run with 1 and with 5 destinations. Target: 5 destinations at
  most 1.3x the CPU of 1 (each record is routed once whatever the number of destinations);
* the routing part of a run (the extract task's time in ``Router.route_batch``) against ``bench_router.py``'s
  route throughput (a bare ``Router.route_batch`` loop over the same records). Target: at least 0.8x.

``--lineage`` also runs each case with OpenLineage's schema sampling on (as the extract task does when the
OpenLineage provider is enabled: the connector's records and each destination's share) and prints its
overhead on the whole run's CPU time.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

_TMP = Path(tempfile.mkdtemp(prefix="muxly-bench-run-"))
os.environ.setdefault("AIRFLOW_HOME", str(_TMP / "home"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
os.environ["AIRFLOW__MUXLY__STAGING_PATH"] = str(_TMP / "staging")
os.environ["AIRFLOW__MUXLY__FILES_ROOT"] = str(_TMP / "files")
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import airflow.sdk.log  # noqa: E402, F401 - loaded in every task; not part of the timings
from bench_router import RULES, _step, make_records  # noqa: E402

from muxly_provider.connectors.base import ConnectorContext  # noqa: E402
from muxly_provider.destinations.base import DestinationContext, Record, RunInfo  # noqa: E402
from muxly_provider.routing import ErrorHandlingSpec, Router, RouteSpec, RuleSpec  # noqa: E402
from muxly_provider.runtime import staging  # noqa: E402
from muxly_provider.runtime.loading import JobRuntime  # noqa: E402
from muxly_provider.runtime.runner import deliver_dead_letters, deliver_share, route_and_stage  # noqa: E402

FETCH = 1000


class NullStore:
    """The last-resort store: a benchmark run must not dead-letter anything."""

    name = "none"

    def put(self, letter: Any) -> None:
        raise RuntimeError(f"unexpected dead letter: {letter.error}")

    def resolve(self, destination_id: str, failed_batches: Any) -> int:
        return 0


def make_runtime(destinations: int, out: Path) -> JobRuntime:
    """The job: 5 rules x 3 transformations; rule ``i`` -> destination ``i % destinations``."""
    rules = tuple(
        RuleSpec(
            id=f"r{i}",
            name=f"rule {i}",
            condition=condition,
            destination_ids=(f"d{i % destinations}",),
            transformations=tuple(_step(i, j, kind, **config) for j, (kind, config) in enumerate(steps)),
            priority=i,
        )
        for i, (condition, steps) in enumerate(RULES)
    )
    return JobRuntime(
        job_id="bench",
        name="bench",
        action_type="sync",
        action_params={},
        connector=ConnectorContext(id="bench", name="bench", connector_type="api"),
        routes=(RouteSpec(id="route", name="bench", rules=rules, error_handling=ErrorHandlingSpec()),),
        destinations={
            f"d{i}": DestinationContext(
                id=f"d{i}",
                name=f"d{i}",
                destination_type="file",
                config={"output_dir": str(out / f"d{i}"), "file_format": "jsonl", "batch_size": 5000},
            )
            for i in range(destinations)
        },
    )


def fetch(records: list[Record]) -> Iterator[list[Record]]:
    """The connector's batches (copies, as a connector yields fresh objects)."""
    for start in range(0, len(records), FETCH):
        yield [dict(r) for r in records[start : start + FETCH]]


def run_once(
    runtime: JobRuntime, records: list[Record], attempt: int, lineage: bool = False
) -> tuple[float, float, int]:
    """One whole run; returns (CPU seconds, routing seconds, records delivered).

    :param lineage: sample the schemas for OpenLineage, as the extract task does when it is enabled
    """
    from muxly_provider.lineage.schema import OutputSchemas, SchemaCollector, observed

    run = RunInfo(
        dag_id="muxly__bench",
        run_id=f"bench__{len(runtime.destinations)}_{attempt}",
        job_id="bench",
        connector_id="bench",
        logical_date=datetime(2026, 12, 2, tzinfo=UTC),
    )
    started = time.process_time()
    inputs, outputs = SchemaCollector(), OutputSchemas()
    batches = observed(fetch(records), inputs) if lineage else fetch(records)
    manifest, routing = route_and_stage(
        runtime, run, batches, letter_table=NullStore(), observe=outputs.observe if lineage else None
    )
    if lineage:
        manifest["lineage"] = {"input": inputs.as_json(), "outputs": outputs.as_json()}
    manifest = json.loads(json.dumps(manifest))  # through XCom
    delivered = 0
    for dest_id in manifest["shares"]:
        counts = deliver_share(runtime, run, manifest, dest_id, NullStore())
        assert not counts.error, counts
        assert counts.delivered == counts.routed, counts
        delivered += counts.delivered
    deliver_dead_letters(runtime, run, manifest, NullStore())
    staging.cleanup(manifest["uri"])
    return time.process_time() - started, routing.route_seconds, delivered


def router_throughput(records: list[Record], repeats: int) -> float:
    """``bench_router.py`` case (b): a bare ``Router.route_batch`` loop, records per second (best of R)."""
    runtime = make_runtime(5, _TMP)
    best = float("inf")
    for _ in range(repeats):
        router = Router(runtime.routes)
        started = time.perf_counter()
        for start in range(0, len(records), FETCH):
            router.route_batch(records[start : start + FETCH])
        best = min(best, time.perf_counter() - started)
    return len(records) / best


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--records", type=int, default=200_000, help="records per run (default 200,000)")
    parser.add_argument("--repeats", type=int, default=3, help="runs per case, the best counts (default 3)")
    parser.add_argument("--lineage", action="store_true", help="also measure OpenLineage's schema sampling")
    args = parser.parse_args()
    records = make_records(args.records)
    # A task holds one batch at a time, not the whole input: keep the 200,000 source records out of the
    # garbage collector's full passes, which would otherwise scan them again and again during the timings.
    gc.freeze()
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(
        f"Python {sys.version.split()[0]}, {len(records):,} records, best of {args.repeats}, load {load:.2f}\n"
    )

    # Warm up (imports, first-call caches) outside the timings, as a worker that ran a task before.
    run_once(make_runtime(5, _TMP / "files" / "warmup"), records[:5000], -1)
    router_throughput(records[:5000], 1)

    cpu: dict[int, float] = {}
    routing: dict[int, float] = {}
    outputs: dict[int, int] = {}
    for destinations in (1, 5):
        runtime = make_runtime(destinations, _TMP / "files" / f"job{destinations}")
        results = [run_once(runtime, records, attempt) for attempt in range(args.repeats)]
        cpu[destinations] = min(r[0] for r in results)
        routing[destinations] = min(r[1] for r in results)
        outputs[destinations] = results[0][2]
        print(
            f"{destinations} destination(s): whole run {cpu[destinations]:7.2f} s CPU "
            f"({len(records) / cpu[destinations]:>9,.0f} rec/s), routing {routing[destinations]:6.2f} s, "
            f"{outputs[destinations]:,} records delivered"
        )
    assert outputs[1] == outputs[5], outputs
    if args.lineage:
        for destinations in (1, 5):
            runtime = make_runtime(destinations, _TMP / "files" / f"lineage{destinations}")
            # Interleaved, so that a change of the machine's load hits both alike.
            plain, sampled = [], []
            for attempt in range(args.repeats):
                plain.append(run_once(runtime, records, 100 + attempt)[0])
                sampled.append(run_once(runtime, records, 200 + attempt, lineage=True)[0])
            overhead = min(sampled) / min(plain) - 1
            print(
                f"{destinations} destination(s) with OpenLineage schema sampling: {min(sampled):7.2f} s CPU vs "
                f"{min(plain):7.2f} s without: {overhead:+.1%}"
            )
    ratio = cpu[5] / cpu[1]
    print(
        f"\nCPU 5 destinations / 1 destination: {ratio:.2f}x {'OK' if ratio <= 1.3 else 'ABOVE TARGET 1.3x'}"
    )

    bare = router_throughput(records, args.repeats)
    for destinations in (1, 5):
        in_run = len(records) / routing[destinations]
        share = in_run / bare
        print(
            f"routing in a run with {destinations} destination(s): {in_run:>9,.0f} rec/s vs bench_router "
            f"{bare:>9,.0f} rec/s: {share:.2f}x {'OK' if share >= 0.8 else 'BELOW TARGET 0.8x'}"
        )


if __name__ == "__main__":
    main()
