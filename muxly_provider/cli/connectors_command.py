"""``airflow muxly connectors test ID``: check a connector's reachability and credentials."""

from __future__ import annotations

import argparse
import sys


def test_connector(args: argparse.Namespace) -> None:
    """Load the connector row, run its connection test, print the outcome; exit 1 when it failed.

    :param args: parsed arguments with ``connector_id``
    """
    from muxly_provider.connectors.check import check_connector, load_connector_context
    from muxly_provider.exceptions import MuxlyError

    try:
        context = load_connector_context(str(args.connector_id))
    except MuxlyError as exc:
        print(f"FAILED: {exc}")
        sys.exit(1)
    result = check_connector(context)
    print(f"{'OK' if result.ok else 'FAILED'}: {result.message}")
    if not result.ok:
        sys.exit(1)
