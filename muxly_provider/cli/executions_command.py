"""``airflow muxly executions reconcile``: fill in ``job_executions`` from Airflow's run history."""

from __future__ import annotations

import argparse
import json
import sys


def reconcile_executions(args: argparse.Namespace) -> None:
    """Upsert the execution rows that are missing or disagree with Airflow's runs; print what changed.

    Exits 1 with a message naming ``--since`` when it is not an ISO date-time.
    """
    from muxly_provider.cli.output import print_table
    from muxly_provider.db.engine import get_engine
    from muxly_provider.executions.reconcile import airflow_runs, parse_since, reconcile

    try:
        since = parse_since(getattr(args, "since", None))
    except ValueError as exc:
        print(str(exc), file=sys.stderr)
        sys.exit(1)
    job_id = getattr(args, "job_id", None) or None
    dry_run = bool(getattr(args, "dry_run", False))
    runs = airflow_runs(since, job_id)
    changes = reconcile(get_engine(), runs, dry_run=dry_run)
    counts = {
        action: sum(1 for c in changes if c.action == action) for action in ("create", "update", "skip")
    }
    if getattr(args, "output_format", "table") == "json":
        print(
            json.dumps(
                {
                    "since": since.isoformat(),
                    "dry_run": dry_run,
                    "runs_checked": len(runs),
                    "created": counts["create"],
                    "updated": counts["update"],
                    "skipped": counts["skip"],
                    "changes": [c.as_dict() for c in changes],
                },
                indent=2,
            )
        )
        return
    if changes:
        print_table(
            ("action", "job_id", "run_id", "status", "end_time", "reason"),
            [
                (
                    c.action,
                    c.job_id or "",
                    c.run_id,
                    f"{c.status_before or '-'} -> {c.status_after or '-'}",
                    c.end_time_after or "",
                    c.reason,
                )
                for c in changes
            ],
        )
    verb = "would be" if dry_run else "were"
    print(
        f"{len(runs)} Airflow run(s) of Muxly jobs since {since.isoformat()}: {counts['create']} row(s) "
        f"{verb} created, {counts['update']} {verb} updated, {counts['skip']} skipped (no job row)"
        + (" (dry run: nothing written)" if dry_run else "")
    )
