"""The whole DAG-processor cycle at scale: Muxly's shard files against the same DAGs as static files, one run.

    .venv/bin/python benchmarks/bench_processor.py [--jobs 10000] [--shards 100] [--parsing-processes 2]
        [--changes 5] [--pg postgresql+psycopg2://postgres@127.0.0.1:5432]

Both sides run a real ``airflow dag-processor`` (its own AIRFLOW_HOME, Airflow's default
``[core] dag_discovery_safe_mode``) on PostgreSQL: Airflow's metadata in a fresh database per side (cloned from
one migrated template), Muxly's schema in another database holding ``--jobs`` job rows. The Muxly side's
``[core] dags_folder`` holds the files ``airflow muxly jobs write-shards`` writes; the static side's holds the
same DAGs written as plain Python (generated from the factory's own specs), the same number of files, each
with the jobs of the same shard. Measured per side:

- **first cycle**: from the processor's start until every DAG is serialized in Airflow's database;
- **steady cycle**: then, with nothing changed, until every DAG's ``dag.last_parsed_time`` moved past that
  moment (every file re-parsed and written to Airflow's database again);
- **change**: Muxly: a job row updated (its name, so its DAG's description changes) and
  :func:`muxly_provider.dag_factory.reparse.request_reparse_of_jobs` called, as the REST API and
  ``config import`` do after their commit; static: the DAG's description edited in its file. Time until the
  newest ``serialized_dag`` row of that DAG holds the new description (``--changes`` times, spread over shards);
- **peak PSS**: the processor and all its children (psutil ``memory_full_info().pss``, sampled every 0.25 s).

It prints both sides and the ratio Muxly / static. Databases it creates are named ``bench_proc_*`` and dropped
at the end; the processors run in their own process groups and are killed even on failure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from sqlalchemy import create_engine, text

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_parse import STATIC_DAG, STATIC_HEADER  # noqa: E402

AIRFLOW = str(Path(sys.executable).with_name("airflow"))
FERNET = "Yp4wW0n2qBvF3b2xJx0u6gFqzM7n0rZkWvJc5aQy8sM="
PREFIX = "bench_proc_"
WRITERS: list[subprocess.Popen[str]] = []
"""Processes that changed a row and wait to send the follow-up re-parse request."""


def _admin(pg: str) -> Any:
    return create_engine(f"{pg}/postgres", isolation_level="AUTOCOMMIT")


def _recreate(pg: str, name: str, template: str | None = None) -> str:
    assert name.startswith(PREFIX)
    admin = _admin(pg)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"' + (f' TEMPLATE "{template}"' if template else "")))
    admin.dispose()
    return f"{pg}/{name}"


def _drop(pg: str, name: str) -> None:
    assert name.startswith(PREFIX)
    admin = _admin(pg)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def _env(
    home: Path, airflow_url: str, muxly_url: str, shards: int, processes: int, dags: Path
) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__UNIT_TEST_MODE="False",
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__FERNET_KEY=FERNET,
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=airflow_url,
        AIRFLOW__MUXLY__SQL_ALCHEMY_CONN=muxly_url,
        AIRFLOW__MUXLY__DAG_FILE_SHARDS=str(shards),
        AIRFLOW__DAG_PROCESSOR__PARSING_PROCESSES=str(processes),
        AIRFLOW__API_AUTH__JWT_SECRET="bench-processor-jwt-secret-" + "0" * 40,
        AIRFLOW__LOGGING__LOGGING_LEVEL="INFO",
        PYTHONPATH=str(ROOT),
    )
    return env


SEED = """
import sys
from sqlalchemy import text
from muxly_provider.db.migrate import upgrade
from muxly_provider.db.engine import get_engine
upgrade()
jobs = int(sys.argv[1])
rows = [dict(id=f"job_{i:05d}", name=f"Job {i}", job_type="cron", schedule="*/15 * * * *",
             connector_id="c1", action_type="sync", action_params="{}") for i in range(jobs)]
with get_engine().begin() as conn:
    conn.execute(text("INSERT INTO connectors (id, name, connector_type, auth_settings, connection_settings) "
                      "VALUES ('c1', 'API', 'api', '{\\"auth_type\\": \\"none\\"}', "
                      "'{\\"base_url\\": \\"http://127.0.0.1:9/x\\"}')"))
    conn.execute(text("INSERT INTO destinations (id, name, destination_type, config) "
                      "VALUES ('d1', 'Files', 'file', '{\\"output_dir\\": \\"out\\"}')"))
    conn.execute(text("INSERT INTO routing_rules (id, name) VALUES ('r1', 'all')"))
    conn.execute(text("INSERT INTO rule_destinations (rule_id, destination_id) VALUES ('r1', 'd1')"))
    conn.execute(text("INSERT INTO routes (id, name, connector_id) VALUES ('rt1', 'main', 'c1')"))
    conn.execute(text("INSERT INTO route_rules (route_id, rule_id) VALUES ('rt1', 'r1')"))
    conn.execute(text("INSERT INTO scheduler_jobs (id, name, job_type, schedule, connector_id, action_type, "
                      "action_params) VALUES (:id, :name, :job_type, :schedule, :connector_id, :action_type, "
                      ":action_params)"), rows)
"""

SPECS = r"""
import json
from muxly_provider.dag_factory.builder import build_dag
from muxly_provider.dag_factory.register import load_job_specs, shard_of
from muxly_provider import settings
shards = settings.dag_file_shards()
specs, problems = load_job_specs(cache=None)
assert not problems, problems
out = []
for spec in specs:
    dag = build_dag(spec)
    out.append({"dag_id": dag.dag_id, "job_id": spec.job_id, "description": dag.description,
                "cron": spec.cron, "tags": sorted(dag.tags), "doc_md": dag.doc_md,
                "shard": shard_of(spec.job_id, shards)})
print(json.dumps(out))
"""

CHANGE = r"""
import sys, time
from sqlalchemy import text
from muxly_provider.db.engine import get_engine
from muxly_provider.dag_factory import reparse
job_id, name = sys.argv[1], sys.argv[2]
get_engine()
import airflow.models.dagbag, airflow.utils.session  # loaded in the api-server already
start = time.time()
with get_engine().begin() as conn:
    conn.execute(text("UPDATE scheduler_jobs SET name = :n WHERE id = :i"), {"n": name, "i": job_id})
reparse.request_reparse_of_jobs([job_id])
print(start, flush=True)
time.sleep(reparse.FOLLOW_UP_SECONDS + 2)  # a long-lived api-server sends the follow-up request too
"""


def _static_text(specs: list[dict[str, Any]]) -> str:
    return STATIC_HEADER + "".join(STATIC_DAG.format(index=i, **s) for i, s in enumerate(specs))


@dataclass
class Side:
    name: str
    home: Path
    dags: Path
    env: dict[str, str]
    airflow_db: str
    airflow_url: str
    figures: dict[str, Any] = field(default_factory=dict)


class PssSampler(threading.Thread):
    """Peak summed PSS of a process and its children, sampled until stopped."""

    def __init__(self, pid: int, interval: float = 0.25) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval, self.peak, self.stop_event = pid, interval, 0, threading.Event()

    def run(self) -> None:
        try:
            root = psutil.Process(self.pid)
        except psutil.NoSuchProcess:
            return
        while not self.stop_event.is_set():
            total = 0
            try:
                procs = [root, *root.children(recursive=True)]
            except psutil.NoSuchProcess:
                return
            for proc in procs:
                with suppress(psutil.NoSuchProcess, psutil.AccessDenied):
                    total += proc.memory_full_info().pss
            self.peak = max(self.peak, total)
            self.stop_event.wait(self.interval)


@contextmanager
def processor(side: Side) -> Iterator[subprocess.Popen[bytes]]:
    """``airflow dag-processor`` in its own process group, killed (group) on exit."""
    log = open(side.home / "dag-processor.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen(
        [AIRFLOW, "dag-processor"], env=side.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        yield proc
    finally:
        try:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=30)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def _wait(predicate: Any, timeout: float, proc: subprocess.Popen[bytes], what: str, side: Side) -> float:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            tail = (side.home / "dag-processor.log").read_text(errors="replace")[-3000:]
            raise SystemExit(
                f"{side.name}: the dag-processor exited ({proc.returncode}) while {what}:\n{tail}"
            )
        if predicate():
            return time.time()
        time.sleep(0.2)
    tail = (side.home / "dag-processor.log").read_text(errors="replace")[-3000:]
    raise SystemExit(f"{side.name}: timed out after {timeout:.0f} s {what}:\n{tail}")


def _description_of(conn: Any, dag_id: str) -> str:
    row = conn.execute(
        text(
            "SELECT data::json->'dag'->>'description' FROM serialized_dag WHERE dag_id = :d "
            "ORDER BY last_updated DESC LIMIT 1"
        ),
        {"d": dag_id},
    ).first()
    return "" if row is None else str(row[0])


def measure(side: Side, jobs: int, changes: list[dict[str, Any]], timeout: float) -> None:
    """Run one processor; fill ``side.figures``."""
    engine = create_engine(side.airflow_url, pool_pre_ping=True)

    def count() -> int:
        with engine.connect() as conn:
            return int(conn.execute(text("SELECT count(DISTINCT dag_id) FROM serialized_dag")).scalar_one())

    with processor(side) as proc:
        sampler = PssSampler(proc.pid)
        sampler.start()
        start = time.time()
        full = _wait(lambda: count() >= jobs, timeout, proc, "waiting for the first full cycle", side)
        side.figures["first"] = full - start
        print(f"  {side.name}: first full cycle {full - start:.1f} s", flush=True)
        from datetime import UTC, datetime

        mark = datetime.fromtimestamp(full, UTC)

        def passed() -> bool:
            with engine.connect() as conn:
                oldest = conn.execute(
                    text(
                        "SELECT min(last_parsed_time) FROM dag WHERE NOT is_stale AND dag_id LIKE 'muxly__%'"
                    )
                ).scalar_one()
            return oldest is not None and oldest > mark

        steady_end = _wait(passed, timeout, proc, "waiting for a steady cycle", side)
        side.figures["steady"] = steady_end - full
        print(
            f"  {side.name}: steady cycle {steady_end - full:.1f} s, peak PSS so far {sampler.peak / 2**20:.0f} MB",
            flush=True,
        )
        latencies = []
        for number, change in enumerate(changes):
            marker = f"changed {number} {time.time():.0f}"
            begun = change_dag(side, change, marker)
            seen = _wait(
                lambda c=change, m=marker: m in _description_of_engine(engine, c["dag_id"]),
                max(60.0, timeout / 2),
                proc,
                f"waiting for the change of {change['dag_id']}",
                side,
            )
            latencies.append(seen - begun)
        side.figures["changes"] = latencies
        for writer in WRITERS:
            writer.wait(timeout=60)
        WRITERS.clear()
        sampler.stop_event.set()
        sampler.join()
        side.figures["pss"] = sampler.peak
    engine.dispose()


def _description_of_engine(engine: Any, dag_id: str) -> str:
    with engine.connect() as conn:
        return _description_of(conn, dag_id)


def change_dag(side: Side, change: dict[str, Any], marker: str) -> float:
    """Change one DAG's description the side's way; return when the change was made (epoch seconds)."""
    if side.name == "static":
        path = side.dags / f"static_dags_shard_{change['shard']}.py"
        old = f"description={change['description']!r},"
        new = f"description={('Muxly job ' + change['job_id'] + ': ' + marker)[:200]!r},"
        content = path.read_text()
        assert old in content, old
        begun = time.time()
        tmp = path.with_suffix(".tmp")
        tmp.write_text(content.replace(old, new))
        os.replace(tmp, path)
        change["description"] = new[len("description=") : -1].strip("'")
        return begun
    writer = subprocess.Popen(
        [sys.executable, "-c", CHANGE, change["job_id"], marker],
        env=side.env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert writer.stdout is not None
    for line in writer.stdout:  # log lines may come first; the start time is the line that is a number
        try:
            started = float(line)
        except ValueError:
            continue
        WRITERS.append(writer)
        return started
    writer.wait()
    raise SystemExit(
        f"changing {change['job_id']} failed:\n{writer.stderr.read()[-3000:] if writer.stderr else ''}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--jobs", type=int, default=10000)
    parser.add_argument("--shards", type=int, default=0, help="default: one shard per 100 jobs")
    parser.add_argument("--parsing-processes", type=int, default=2)
    parser.add_argument("--changes", type=int, default=5)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--pg", default="postgresql+psycopg2://postgres@127.0.0.1:5432")
    parser.add_argument("--order", choices=("static-first", "muxly-first"), default="static-first")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder (logs)")
    args = parser.parse_args()
    shards = args.shards or max(1, args.jobs // 100)
    tmp = Path(tempfile.mkdtemp(prefix="muxly-bench-processor-"))
    created: list[str] = []
    try:
        muxly_url = _recreate(args.pg, PREFIX + "muxly")
        created.append(PREFIX + "muxly")
        template_url = _recreate(args.pg, PREFIX + "airflow_tpl")
        created.append(PREFIX + "airflow_tpl")
        setup_env = _env(tmp / "setup", template_url, muxly_url, shards, args.parsing_processes, tmp / "none")
        (tmp / "setup").mkdir()
        t0 = time.perf_counter()
        subprocess.run([AIRFLOW, "db", "migrate"], env=setup_env, check=True, capture_output=True)
        subprocess.run(
            [sys.executable, "-c", SEED, str(args.jobs)], env=setup_env, check=True, capture_output=True
        )
        done = subprocess.run(
            [sys.executable, "-c", SPECS], env=setup_env, check=True, capture_output=True, text=True
        )
        specs: list[dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
        assert len(specs) == args.jobs, len(specs)
        print(
            f"{args.jobs} jobs, {shards} shard files, [dag_processor] parsing_processes={args.parsing_processes}"
            f" (setup {time.perf_counter() - t0:.0f} s)",
            flush=True,
        )
        sides: dict[str, Side] = {}
        for name in ("static", "muxly"):
            home = tmp / name
            dags = home / "dags"
            dags.mkdir(parents=True)
            db = PREFIX + f"airflow_{name}"
            url = _recreate(args.pg, db, template=PREFIX + "airflow_tpl")
            created.append(db)
            sides[name] = Side(
                name, home, dags, _env(home, url, muxly_url, shards, args.parsing_processes, dags), db, url
            )
        subprocess.run(
            [AIRFLOW, "muxly", "jobs", "write-shards", "--folder", str(sides["muxly"].dags)],
            env=sides["muxly"].env,
            check=True,
            capture_output=True,
        )
        by_shard: dict[int, list[dict[str, Any]]] = {}
        for spec in specs:
            by_shard.setdefault(spec["shard"], []).append(spec)
        for shard in range(shards):
            path = sides["static"].dags / f"static_dags_shard_{shard}.py"
            path.write_text(_static_text(by_shard.get(shard, [])))
        step = max(1, len(specs) // max(1, args.changes))
        picked = [specs[(i * step + step // 2) % len(specs)] for i in range(args.changes)]
        order = ["static", "muxly"] if args.order == "static-first" else ["muxly", "static"]
        for name in order:
            print(f"measuring {name} ...", flush=True)
            measure(sides[name], args.jobs, [dict(p) for p in picked], args.timeout)
            print(f"  {name}: {json.dumps(sides[name].figures)}", flush=True)
        report(sides["static"].figures, sides["muxly"].figures)
    finally:
        for name in reversed(created):
            try:
                _drop(args.pg, name)
            except Exception as exc:  # report and go on dropping the others
                print(f"could not drop {name}: {exc}", file=sys.stderr)
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


def report(static: dict[str, Any], muxly: dict[str, Any]) -> None:
    """Print both sides and the ratios."""
    print(f"\n{'measure':<34} {'static':>10} {'muxly':>10} {'ratio':>7}  target")
    for key, label, target in (
        ("first", "first full cycle (s)", "<= 1.0x"),
        ("steady", "steady cycle (s)", "<= 1.0x"),
    ):
        print(
            f"{label:<34} {static[key]:>10.1f} {muxly[key]:>10.1f} {muxly[key] / static[key]:>6.2f}x  {target}"
        )
    mb = 1024 * 1024
    print(
        f"{'peak PSS, processor + children (MB)':<34} {static['pss'] / mb:>10.0f} {muxly['pss'] / mb:>10.0f} "
        f"{muxly['pss'] / static['pss']:>6.2f}x  <= 1.0x"
    )
    for key, label in (("max", "change visible, max (s)"), ("median", "change visible, median (s)")):
        fn = max if key == "max" else statistics.median
        print(
            f"{label:<34} {fn(static['changes']):>10.1f} {fn(muxly['changes']):>10.1f} {'':>7}  muxly <= 10 s"
        )
    print("changes (s): static " + ", ".join(f"{v:.1f}" for v in static["changes"]))
    print("changes (s): muxly  " + ", ".join(f"{v:.1f}" for v in muxly["changes"]))


if __name__ == "__main__":
    main()
