"""``airflow muxly dead-letters list|show|replay``: the stored dead letters, and re-driving them.

The logic (claims, idempotence, marking) lives in :mod:`muxly_provider.destinations.replay`, shared with the
REST API.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from muxly_provider.cli.output import print_table


def _filters(args: argparse.Namespace, replayed: bool | None) -> Any:
    from muxly_provider.destinations.replay import DeadLetterFilter

    return DeadLetterFilter(
        job_id=args.job_id,
        dag_id=args.dag_id,
        run_id=args.run_id,
        destination_id=args.destination_id,
        replayed=replayed,
    )


def list_dead_letters(args: argparse.Namespace) -> None:
    """Print the dead letters matching the filters, newest first (without their records)."""
    from muxly_provider.db.engine import get_engine
    from muxly_provider.destinations.replay import list_letters

    replayed = None if args.replayed is None else args.replayed == "true"
    with get_engine().connect() as conn:
        rows, total = list_letters(conn, _filters(args, replayed), limit=args.limit)
    if args.output_format == "json":
        print(json.dumps({"items": rows, "total": total}, indent=2, default=str))
        return
    print_table(
        ("id", "dag_id", "run_id", "destination_id", "batch", "records", "created_at", "replayed", "error"),
        [
            (
                str(r["id"]),
                str(r["dag_id"]),
                str(r["run_id"]),
                str(r["destination_id"]),
                str(r["batch_index"]),
                str(r["record_count"]),
                str(r["created_at"]),
                f"{r['replayed_at']} -> {r['replayed_to']}" if r["replayed_at"] else "no",
                str(r["replay_error"] or r["error"])[:120],
            )
            for r in rows
        ],
    )
    print(f"{len(rows)} of {total} dead letter(s)")


def show_dead_letter(args: argparse.Namespace) -> None:
    """Print one dead letter with its records (exit 1 when there is none of that id)."""
    from muxly_provider.db.engine import get_engine
    from muxly_provider.destinations.replay import get_letter

    with get_engine().connect() as conn:
        letter = get_letter(conn, args.letter_id)
    if letter is None:
        print(f"dead letter {args.letter_id!r} does not exist", file=sys.stderr)
        sys.exit(1)
    if args.output_format == "json":
        print(json.dumps(letter, indent=2, default=str))
        return
    for key, value in letter.items():
        if key != "records":
            print(f"{key}: {'' if value is None else value}")
    print("records:")
    for record in letter["records"]:
        print("  " + json.dumps(record, default=str, ensure_ascii=False))


def replay_dead_letters(args: argparse.Namespace) -> None:
    """Replay the letters named, or the un-replayed letters matching the filters; exit 1 when one failed."""
    from muxly_provider.db.engine import get_engine
    from muxly_provider.destinations.replay import matching_ids, replay_letters
    from muxly_provider.exceptions import MuxlyConfigError

    filters = _filters(args, None)
    if bool(args.letter_ids) == (not filters.is_empty()):
        print(
            "name the letters to replay: their ids, or filters (--job-id, --dag-id, --run-id, --destination-id)"
            ", not both",
            file=sys.stderr,
        )
        sys.exit(2)
    engine = get_engine()
    ids = list(args.letter_ids) or matching_ids(engine, filters, args.limit)
    try:
        results = replay_letters(engine, ids, args.to)
    except MuxlyConfigError as exc:
        print(f"cannot replay to --to {args.to!r}: {exc}", file=sys.stderr)
        sys.exit(1)
    if args.output_format == "json":
        print(json.dumps([r.__dict__ for r in results], indent=2))
    else:
        print_table(
            ("id", "status", "destination_id", "delivered", "error"),
            [(r.id, r.status, str(r.destination_id or ""), str(r.delivered), r.error or "") for r in results],
        )
    if any(r.status in ("failed", "not_found") for r in results):
        sys.exit(1)
