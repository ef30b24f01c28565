"""``airflow muxly jobs list|validate|run|history|preview|write-shards``."""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from muxly_provider.cli.output import print_table


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
    print_table(
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
        print_table(
            ("job_id", "dag_id", "field", "reason"),
            [(p.job_id, p.dag_id, p.field, p.reason) for p in problems],
        )
    else:
        print(f"All {len(dags)} enabled jobs can become DAGs.")
    if problems:
        sys.exit(1)


def run_job(args: argparse.Namespace) -> None:
    """Trigger a run of a job now, like the UI's trigger button (``triggered_by = manual``)."""
    from muxly_provider.executions.start_run import JobTriggerError, trigger_job_run

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
    print_table(
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


def _sample_records(path: str, limit: int | None) -> tuple[list[Any], bool]:
    """The records of a JSON (list of objects, or one object) or JSONL file, cut to ``limit``."""
    from pathlib import Path

    from muxly_provider.preview import MAX_RECORDS

    try:
        text = Path(path).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"--sample {path}: cannot be read ({type(exc).__name__}: {exc})") from None
    try:
        loaded = json.loads(text)
        records = loaded if isinstance(loaded, list) else [loaded]
    except ValueError:
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise ValueError(f"--sample {path}: line {number} is not JSON ({exc.msg})") from None
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise ValueError(f"--sample {path}: record {index} is not a JSON object")
    cut = limit is not None and len(records) > limit
    records = records[:limit] if limit is not None else records
    if len(records) > MAX_RECORDS:
        raise ValueError(
            f"--sample {path}: {len(records)} records; a preview routes at most {MAX_RECORDS} (use --limit)"
        )
    return records, cut


def _print_preview(preview: dict[str, Any]) -> None:
    """The preview as text: counts, then per destination what it would write, failures and unmatched."""
    source = "sample records" if preview["source"] == "records" else "record(s) from the connector"
    more = " (more were there)" if preview["truncated"] else ""
    late = ", cut by the time bound" if preview["timed_out"] else ""
    print(
        f"Preview of job {preview['job_id']} ({preview['action_type']}): {preview['records_in']} {source}{more}{late}"
    )
    print(
        f"unmatched: {preview['unmatched']}, filtered: {preview['filtered']}, "
        f"transformation failures: {preview['failures_total']}"
    )
    if preview["matched_per_rule"]:
        print(
            "rules matched: " + ", ".join(f"{k} {v}" for k, v in sorted(preview["matched_per_rule"].items()))
        )
    for dest in preview["destinations"]:
        print()
        if not dest["enabled"]:
            print(f"destination {dest['id']}: disabled, {dest['routed']} record(s) skipped")
            continue
        target = f", {dest['target']}" if dest["target"] else ""
        print(
            f"destination {dest['id']} ({dest['destination_type']}): {dest['routed']} record(s), "
            f"{dest['rendered_total']} {dest['rendered_as']}(s){target}"
        )
        if dest["error"]:
            print(f"  ERROR: {dest['error']}")
        for item in dest["rendered"]:
            print("  " + (item if isinstance(item, str) else json.dumps(item, default=str)))
        if dest["rendered_total"] > len(dest["rendered"]):
            print(f"  ... {dest['rendered_total'] - len(dest['rendered'])} more")
    if preview["failures"]:
        print("\ntransformation failures:")
        for failure in preview["failures"]:
            where = f"route {failure['route_id']}, rule {failure['rule_id']}"
            then = failure["mode"] + (
                f" -> {failure['dead_letter_destination_id']}"
                if failure["dead_letter_destination_id"]
                else ""
            )
            print(f"  {where}: {failure['error']} ({then})")
            print(f"    {json.dumps(failure['record'], default=str)}")
    if preview["unmatched_records"]:
        print("\nunmatched records:")
        for record in preview["unmatched_records"]:
            print(f"  {json.dumps(record, default=str)}")
    for warning in preview["warnings"]:
        print(f"\nwarning: {warning}")
    if preview["error"]:
        print(f"\n{preview['error']}")
    print("\nNothing was written and no execution was recorded.")


def preview_job(args: argparse.Namespace) -> None:
    """Print what a run of the job would deliver per destination (``docs/jobs.md``, "Preview a run").

    Reads at most ``--limit`` records from the job's connector (or routes the records of ``--sample``) within
    20 s, writes nothing and records no execution. Exits 1 when the run would fail or the preview cannot run.
    """
    from muxly_provider.exceptions import MuxlyError
    from muxly_provider.preview import DEFAULT_LIMIT
    from muxly_provider.preview import preview_job as preview
    from muxly_provider.runtime.loading import load_job_runtime

    try:
        records, cut = _sample_records(args.sample, args.limit) if args.sample else (None, False)
        runtime = load_job_runtime(args.job_id)
        answer = preview(
            runtime, records=records, limit=args.limit if args.limit is not None else DEFAULT_LIMIT
        )
    except (ValueError, MuxlyError) as exc:  # Muxly's messages name the row and never hold a secret
        print(f"cannot preview job {args.job_id!r}: {exc}", file=sys.stderr)
        sys.exit(1)
    answer["truncated"] = answer["truncated"] or cut
    if args.output_format == "json":
        print(json.dumps(answer, indent=2, default=str))
    else:
        _print_preview(answer)
    if answer["error"]:
        sys.exit(1)


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
