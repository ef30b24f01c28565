"""``airflow muxly jobs list|validate``."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from typing import Any


def _print_table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(headers)]
    print("  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in rows:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


def list_jobs(args: argparse.Namespace) -> None:
    """Print every job with its DAG id, type, schedule and whether it can become a DAG."""
    from muxly_provider.dag_factory.naming import dag_id_for
    from muxly_provider.dag_factory.register import check_jobs
    from muxly_provider.db.snapshot import load_snapshot

    snapshot = load_snapshot()
    _, problems = check_jobs(snapshot)
    bad = {p.job_id for p in problems}
    rows: list[dict[str, Any]] = [
        {
            "id": str(job["id"]),
            "dag_id": dag_id_for(str(job["id"])),
            "name": str(job["name"]),
            "job_type": str(job["job_type"]),
            "schedule": str(job["schedule"] or ""),
            "enabled": bool(job["enabled"]),
            "valid": str(job["id"]) not in bad,
        }
        for job in snapshot.rows("scheduler_jobs")
    ]
    if args.output_format == "json":
        print(json.dumps(rows, indent=2))
        return
    _print_table(
        ("id", "dag_id", "name", "type", "schedule", "enabled", "valid"),
        [
            (
                r["id"],
                r["dag_id"],
                r["name"],
                r["job_type"],
                r["schedule"],
                str(r["enabled"]),
                str(r["valid"]),
            )
            for r in rows
        ],
    )


def validate_jobs(args: argparse.Namespace) -> None:
    """Print every enabled job row that cannot become a DAG, with the reason; exit 1 when there is one.

    It runs the DAG factory's own steps (:func:`muxly_provider.dag_factory.register.check_jobs`: validate the
    rows, build each DAG and run Airflow's ``dag.validate()`` and ``dag.check_cycle()``), so every job the
    DAG file would skip is named here.
    """
    from muxly_provider.dag_factory.register import check_jobs
    from muxly_provider.db.snapshot import load_snapshot

    dags, problems = check_jobs(load_snapshot())
    if args.output_format == "json":
        print(json.dumps([p.__dict__ for p in problems], indent=2))
    elif problems:
        _print_table(
            ("job_id", "dag_id", "field", "reason"),
            [(p.job_id, p.dag_id, p.field, p.reason) for p in problems],
        )
    else:
        print(f"All {len(dags)} enabled jobs can become DAGs.")
    if problems:
        sys.exit(1)


def run_job(args: argparse.Namespace) -> None:
    """Trigger a run of a job now, like the UI's trigger button (``triggered_by = manual``)."""
    from muxly_provider.executions.trigger import JobTriggerError, trigger_job_run

    payload = None
    if args.payload:
        try:
            payload = json.loads(args.payload)
        except ValueError:
            print("--payload is not JSON", file=sys.stderr)
            sys.exit(2)
    try:
        run = trigger_job_run(args.job_id, triggered_by="manual", payload=payload, user="cli")
    except JobTriggerError as exc:
        print(f"cannot run job {args.job_id!r}: {exc.message}", file=sys.stderr)
        sys.exit(1)
    if args.output_format == "json":
        print(json.dumps(run.__dict__, indent=2))
    else:
        print(f"queued run {run.run_id} of {run.dag_id} (execution {run.execution_id})")


def job_history(args: argparse.Namespace) -> None:
    """Print the most recent job executions (newest first)."""
    from sqlalchemy import select

    from muxly_provider.db.engine import get_engine
    from muxly_provider.db.models import JobExecution

    query = select(JobExecution).order_by(JobExecution.start_time.desc(), JobExecution.id).limit(args.limit)
    if args.job_id:
        query = query.where(JobExecution.job_id == args.job_id)
    with get_engine().connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
    for row in rows:
        try:
            row["result"] = json.loads(row["result"] or "{}")
        except ValueError:
            row["result"] = {}
    if args.output_format == "json":
        print(json.dumps(rows, indent=2, default=str))
        return
    _print_table(
        ("job_id", "status", "attempt", "triggered_by", "start_time", "end_time", "records_in", "run_id"),
        [
            (
                str(r["job_id"]),
                str(r["status"]),
                str(r["attempt"]),
                str(r["triggered_by"]),
                str(r["start_time"]),
                str(r["end_time"] or ""),
                str(r["result"].get("records_in", "")),
                str(r["result"].get("run_id", "")),
            )
            for r in rows
        ],
    )


SHARD_TEMPLATE = '''"""Airflow DAG file: Muxly DAG shard {shard} of {shards}, the jobs whose stable hash falls in this shard.

Written by ``airflow muxly jobs write-shards``. The words "airflow" and "dag" in this docstring keep the file
visible to Airflow's DAG discovery under its default ``[core] dag_discovery_safe_mode = True``.
"""

from __future__ import annotations

from muxly_provider.dag_factory.register import register_dags

register_dags(globals(), shard={shard})
'''


def write_shards(args: argparse.Namespace) -> None:
    """Write ``muxly_dags_shard_<i>.py`` for every shard of ``[muxly] dag_file_shards``."""
    from pathlib import Path

    from muxly_provider import settings

    shards = settings.dag_file_shards()
    folder = Path(args.folder)
    folder.mkdir(parents=True, exist_ok=True)
    for shard in range(shards if shards > 1 else 0):
        path = folder / f"muxly_dags_shard_{shard}.py"
        path.write_text(SHARD_TEMPLATE.format(shard=shard, shards=shards), encoding="utf-8")
        print(f"wrote {path}")
    stale = sorted(
        p
        for p in folder.glob("muxly_dags_shard_*.py")
        if shards == 1 or int(p.stem.rsplit("_", 1)[1]) >= shards
    )
    for path in stale:
        path.unlink()
        print(f"removed {path} (beyond {shards} shards)")
    if shards == 1:
        print("[muxly] dag_file_shards is 1: dags/muxly_dags.py builds every job; no shard file is needed")
