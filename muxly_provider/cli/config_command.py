"""``airflow muxly config export|import``: configuration as code (see ``docs/configuration-as-code.md``)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def export_config(args: argparse.Namespace) -> None:
    """Write every configuration table as YAML to ``args.output`` (default: standard output).

    Secrets are written as ``"***"`` unless ``args.include_secrets``.
    """
    from muxly_provider import config_io
    from muxly_provider.db.engine import get_engine

    data = config_io.export_config(get_engine(), include_secrets=bool(args.include_secrets))
    text = config_io.dump_yaml(data)
    if args.output:
        Path(args.output).write_text(text, encoding="utf-8")
        print(f"Wrote the configuration to {args.output}", file=sys.stderr)
    else:
        sys.stdout.write(text)


def _load_file(path: str) -> Any:
    import yaml

    try:
        return yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    except OSError as exc:
        print(f"Cannot read {path}: {exc.strerror}", file=sys.stderr)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
        print(f"{path} is not valid YAML{where}: {getattr(exc, 'problem', None) or exc}", file=sys.stderr)
    raise SystemExit(1)


def import_config(args: argparse.Namespace) -> None:
    """Validate ``args.file`` and upsert its rows (``args.dry_run``: only show the plan).

    On validation errors every error is printed (table, row id, field, expected) and the command exits 1
    without writing anything.
    """
    from muxly_provider import config_io
    from muxly_provider.db.engine import get_engine
    from muxly_provider.exceptions import MuxlyConfigErrors, MuxlySecretError

    data = _load_file(args.file)
    try:
        plan = config_io.import_config(get_engine(), data or {}, dry_run=bool(args.dry_run))
    except MuxlyConfigErrors as exc:
        print(f"{args.file}: {len(exc.errors)} error(s); nothing was written:", file=sys.stderr)
        for error in exc.errors:
            print(
                f"  table={error.table} id={error.row_id} field={error.field}: expected {error.expected}",
                file=sys.stderr,
            )
        raise SystemExit(1) from None
    except MuxlySecretError as exc:
        print(f"{args.file}: nothing was written: {exc}", file=sys.stderr)
        raise SystemExit(1) from None
    print(plan.summary())
