"""Least privilege for configuration rows: local paths stay under ``[muxly] files_root``, databases are never
Muxly's or Airflow's own, ``conn_id`` names only connections ``[muxly] allowed_conn_ids`` allows, and inline
credentials need the ``credentials:create`` permission.

One entry point for every writer (the REST API, the CLI import, any UI): :func:`row_problems`. The runtime
checks live next to what they guard (:mod:`~muxly_provider.security.paths`,
:mod:`~muxly_provider.security.databases`, :mod:`~muxly_provider.security.connections`). Nothing here runs
at import time.
"""

from __future__ import annotations

from muxly_provider.security.errors import MuxlyConfinementError, Problem
from muxly_provider.security.rows import row_problems

__all__ = ["MuxlyConfinementError", "Problem", "row_problems"]
