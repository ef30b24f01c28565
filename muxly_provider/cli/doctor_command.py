"""``airflow muxly doctor``: this machine's readiness, one line per check (see :mod:`muxly_provider.doctor`).

Exits with 1 when a check failed; each failed or warning line says what to fix, naming the setting.
"""

from __future__ import annotations

import argparse
import json


def doctor(args: argparse.Namespace) -> None:
    """Run the checks and print them as a table (or JSON with ``--output-format json``).

    :param args: parsed arguments of ``airflow muxly doctor``
    :raises SystemExit: with 1 when a check failed
    """
    from muxly_provider.doctor import run_checks

    report = run_checks()
    if getattr(args, "output_format", "table") == "json":
        print(json.dumps(report.as_dict(), indent=2, sort_keys=True))
    else:
        _print(report.as_dict())
    if report.failed:
        raise SystemExit(1)


def _print(report: dict[str, object]) -> None:
    checks = report["checks"]
    assert isinstance(checks, list)
    width = max(len(check["name"]) for check in checks)
    for check in checks:
        print(f"{check['name'].ljust(width)}  {check['status'].upper():<7}  {check['detail']}")
        if check["fix"] and check["status"] in {"failed", "warning"}:
            print(f"{' ' * width}  {'':<7}  fix: {check['fix']}")
    print()
    print(
        "Muxly is ready on this machine"
        if report["ok"]
        else "Muxly is NOT ready on this machine: fix the FAILED lines"
    )
