"""Parse cost of Muxly's DAG file against the same DAGs written statically, measured in the same run.

    .venv/bin/python benchmarks/bench_parse.py [--jobs 10 100 1000] [--repeats 3] [--shard-check 10000]

For each job count it seeds a fresh Muxly SQLite database, writes an equivalent static DAG file (same DAG
arguments, the same operators, the same doc_md), and measures in a FRESH process each time, the two files
alternately (best of --repeats each): the DagBag fill (importing the file: the target is at most 1.1x the static
file's at 1,000 jobs) and the serialization of every DAG, reported separately and summed, the number of DB
queries per parse, and the worker-side parse of one DAG (``get_parsing_context().dag_id`` set, as when a task
starts).
``--shard-check N`` also seeds N jobs with ``[muxly] dag_file_shards`` set so that each shard holds about 2,000
jobs and reports every shard file's parse time (target: under 10 s each).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

MEASURE = r"""
import json, os, sys, time
from sqlalchemy import event
from sqlalchemy.engine import Engine
queries = [0]
event.listen(Engine, "before_cursor_execute", lambda *a, **k: queries.__setitem__(0, queries[0] + 1))
from airflow.dag_processing.dagbag import DagBag
from airflow.serialization.serialized_objects import DagSerialization
path = sys.argv[1]
start = time.perf_counter()
bag = DagBag(dag_folder=path, safe_mode=False)
fill = time.perf_counter() - start
assert not bag.import_errors, bag.import_errors
start = time.perf_counter()
for dag in bag.dags.values():
    json.dumps(DagSerialization.to_dict(dag))
serialize = time.perf_counter() - start
print(json.dumps({"dags": len(bag.dags), "fill": fill, "serialize": serialize, "queries": queries[0]}))
"""

STATIC_HEADER = '''"""The same DAGs as Muxly's factory builds, written statically (benchmark baseline)."""
from datetime import UTC, datetime, timedelta

from airflow.sdk import DAG, Asset, CronTriggerTimetable

from muxly_provider.operators.retry import MuxlyTaskRetryPolicy
from muxly_provider.operators.staged import MuxlyCleanupOperator, MuxlyDeliverOperator, MuxlyExtractOperator

'''

STATIC_DAG = """
with DAG(
    dag_id={dag_id!r},
    description={description!r},
    schedule=CronTriggerTimetable({cron!r}, timezone="UTC"),
    start_date=datetime(2024, 1, 1, tzinfo=UTC),
    catchup=False,
    tags={tags!r},
    doc_md={doc_md!r},
    default_args={{"owner": "muxly", "retries": 3, "retry_delay": timedelta(seconds=30),
                  "max_retry_delay": timedelta(minutes=30), "retry_policy": MuxlyTaskRetryPolicy("exponential"),
                  "execution_timeout": timedelta(seconds=300)}},
    max_active_runs=1,
) as dag_{index}:
    extract = MuxlyExtractOperator(task_id="extract", job_id={job_id!r})
    deliver = MuxlyDeliverOperator(task_id="deliver__d1", job_id={job_id!r}, destination_id="d1")
    cleanup = MuxlyCleanupOperator(task_id="cleanup", retries=1,
                                   outlets=[Asset(name={dag_id!r}, uri="x-muxly://jobs/" + {dag_id!r})])
    extract >> deliver >> cleanup
"""


def _env(home: Path, shards: int = 1) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__MUXLY__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'muxly.db'}",
        AIRFLOW__MUXLY__DAG_FILE_SHARDS=str(shards),
        AIRFLOW__CORE__FERNET_KEY="Yp4wW0n2qBvF3b2xJx0u6gFqzM7n0rZkWvJc5aQy8sM=",
        PYTHONPATH=str(ROOT),
    )
    return env


def _seed(home: Path, jobs: int) -> list[str]:
    """Seed ``jobs`` cron jobs (one connector, route, rule, destination) with the real migrations."""
    code = f"""
import json
from sqlalchemy import text
from muxly_provider.db.migrate import upgrade
from muxly_provider.db.engine import get_engine
upgrade()
engine = get_engine()
rows = [dict(id=f"job_{{i:05d}}", name=f"Job {{i}}", job_type="cron", schedule="*/15 * * * *",
             connector_id="c1", action_type="sync", action_params="{{}}") for i in range({jobs})]
with engine.begin() as conn:
    conn.execute(text("INSERT INTO connectors (id, name, connector_type, auth_settings, connection_settings) "
                      "VALUES ('c1', 'API', 'api', '{{\\"auth_type\\": \\"none\\"}}', "
                      "'{{\\"base_url\\": \\"http://127.0.0.1:9/x\\"}}')"))
    conn.execute(text("INSERT INTO destinations (id, name, destination_type, config) "
                      "VALUES ('d1', 'Files', 'file', '{{\\"output_dir\\": \\"out\\"}}')"))
    conn.execute(text("INSERT INTO routing_rules (id, name) VALUES ('r1', 'all')"))
    conn.execute(text("INSERT INTO rule_destinations (rule_id, destination_id) VALUES ('r1', 'd1')"))
    conn.execute(text("INSERT INTO routes (id, name, connector_id) VALUES ('rt1', 'main', 'c1')"))
    conn.execute(text("INSERT INTO route_rules (route_id, rule_id) VALUES ('rt1', 'r1')"))
    conn.execute(text("INSERT INTO scheduler_jobs (id, name, job_type, schedule, connector_id, action_type, "
                      "action_params) VALUES (:id, :name, :job_type, :schedule, :connector_id, :action_type, "
                      ":action_params)"), rows)
"""
    subprocess.run([sys.executable, "-c", code], env=_env(home), check=True, capture_output=True)
    return [f"job_{i:05d}" for i in range(jobs)]


def _write_static(home: Path, jobs: list[str]) -> Path:
    """The static baseline file, generated from the factory's own specs so both define the same DAGs."""
    code = r"""
import json, sys
from muxly_provider.dag_factory.builder import build_dag
from muxly_provider.dag_factory.register import load_job_specs
specs, problems = load_job_specs()
assert not problems, problems
out = []
for spec in specs:
    dag = build_dag(spec)
    out.append({"dag_id": dag.dag_id, "job_id": spec.job_id, "description": dag.description,
                "cron": spec.cron, "tags": sorted(dag.tags), "doc_md": dag.doc_md})
print(json.dumps(out))
"""
    done = subprocess.run(
        [sys.executable, "-c", code], env=_env(home), check=True, capture_output=True, text=True
    )
    specs = json.loads(done.stdout.strip().splitlines()[-1])
    assert len(specs) == len(jobs)
    static_dir = home / "static"
    static_dir.mkdir(exist_ok=True)
    path = static_dir / "static_dags.py"
    path.write_text(STATIC_HEADER + "".join(STATIC_DAG.format(index=i, **s) for i, s in enumerate(specs)))
    return path


def _measure(path: Path, env: dict[str, str], repeats: int) -> dict[str, float]:
    """Best of ``repeats`` fresh processes, for fill and serialization each (and their sum)."""
    best: dict[str, float] | None = None
    for _ in range(repeats):
        done = subprocess.run(
            [sys.executable, "-c", MEASURE, str(path)], env=env, capture_output=True, text=True
        )
        if done.returncode != 0:
            raise SystemExit(f"measuring {path} failed:\n{done.stderr[-3000:]}")
        result = json.loads(done.stdout.strip().splitlines()[-1])
        result["total"] = result["fill"] + result["serialize"]
        if best is None:
            best = result
        else:
            for key in ("fill", "serialize", "total"):
                best[key] = min(best[key], result[key])
    assert best is not None
    return best


def _measure_pair(
    static: Path, muxly: Path, env: dict[str, str], repeats: int
) -> tuple[dict[str, float], dict[str, float]]:
    """Both files measured alternately (static, muxly, static, ...) so that a busy moment hits both."""
    base: dict[str, float] | None = None
    mine: dict[str, float] | None = None
    for _ in range(repeats):
        one, two = _measure(static, env, 1), _measure(muxly, env, 1)
        if base is None or mine is None:
            base, mine = one, two
            continue
        for key in ("fill", "serialize", "total"):
            base[key] = min(base[key], one[key])
            mine[key] = min(mine[key], two[key])
    assert base is not None
    assert mine is not None
    return base, mine


def _factory_file(home: Path, shard: int | None = None) -> Path:
    folder = home / ("factory" if shard is None else f"shard_{shard}")
    folder.mkdir(exist_ok=True)
    path = folder / "muxly_dags.py"
    path.write_text(
        "from muxly_provider.dag_factory.register import register_dags  # airflow DAG\n"
        f"register_dags(globals(), shard={shard!r})\n"
    )
    return path


def run(job_counts: list[int], repeats: int) -> None:
    """Fill (import of the file: DagBag) and serialization separately, each Muxly / static."""
    print(
        f"{'jobs':>6} {'fill static':>11} {'fill muxly':>10} {'ratio':>6} {'ser. static':>11} "
        f"{'ser. muxly':>10} {'ratio':>6} {'total':>6} {'queries':>7} {'worker s':>9} {'worker/static':>13}"
    )
    for count in job_counts:
        with tempfile.TemporaryDirectory(prefix="muxly-bench-parse-") as tmp:
            home = Path(tmp)
            jobs = _seed(home, count)
            static = _write_static(home, jobs)
            env = _env(home)
            base, muxly = _measure_pair(static, _factory_file(home), env, repeats)
            assert base["dags"] == muxly["dags"] == count, (base, muxly)
            worker_env = {
                **env,
                "_AIRFLOW_PARSING_CONTEXT_DAG_ID": f"muxly__{jobs[count // 2]}",
                "_AIRFLOW_PARSING_CONTEXT_TASK_ID": "run_job",
            }
            worker = _measure(_factory_file(home), worker_env, repeats)
            assert worker["dags"] == 1
            print(
                f"{count:>6} {base['fill']:>11.3f} {muxly['fill']:>10.3f} {muxly['fill'] / base['fill']:>5.2f}x "
                f"{base['serialize']:>11.3f} {muxly['serialize']:>10.3f} "
                f"{muxly['serialize'] / base['serialize']:>5.2f}x {muxly['total'] / base['total']:>5.2f}x "
                f"{muxly['queries']:>7} {worker['total']:>9.4f} {worker['total'] / base['total']:>12.3f}x"
            )


def shard_check(jobs: int, repeats: int) -> None:
    shards = max(1, -(-jobs // 2000))
    with tempfile.TemporaryDirectory(prefix="muxly-bench-shards-") as tmp:
        home = Path(tmp)
        _seed(home, jobs)
        env = _env(home, shards)
        total = 0
        print(f"\n{jobs} jobs over {shards} DAG files ([muxly] dag_file_shards={shards}):")
        for shard in range(shards):
            result = _measure(_factory_file(home, shard), env, 1)
            total += int(result["dags"])
            print(
                f"  shard {shard}: {int(result['dags'])} DAGs, fill {result['fill']:.2f} s + "
                f"serialize {result['serialize']:.2f} s = {result['total']:.2f} s"
            )
        assert total == jobs, total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--shard-check", type=int, default=0, metavar="N")
    args = parser.parse_args()
    run(args.jobs, args.repeats)
    if args.shard_check:
        shard_check(args.shard_check, args.repeats)


if __name__ == "__main__":
    main()
