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
    from muxly_provider.dag_factory.specs import build_job_specs
    from muxly_provider.db.snapshot import load_snapshot

    snapshot = load_snapshot()
    _, problems = build_job_specs(snapshot)
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
    """Print every enabled job row that cannot become a DAG, with the reason; exit 1 when there is one."""
    from muxly_provider.dag_factory.specs import build_job_specs
    from muxly_provider.db.snapshot import load_snapshot

    specs, problems = build_job_specs(load_snapshot())
    if args.output_format == "json":
        print(json.dumps([p.__dict__ for p in problems], indent=2))
    elif problems:
        _print_table(
            ("job_id", "dag_id", "field", "reason"),
            [(p.job_id, p.dag_id, p.field, p.reason) for p in problems],
        )
    else:
        print(f"All {len(specs)} enabled jobs can become DAGs.")
    if problems:
        sys.exit(1)
