"""Ask Airflow's DAG processor to re-parse the DAG files a configuration write affects, right away.

Airflow re-parses a DAG file when its turn in the processor's queue comes (a full pass over every file: about
two minutes at 10,000 jobs), or when someone asks for it: ``PUT /api/v2/parseDagFile/{file_token}`` inserts a
``DagPriorityParsingRequest`` (bundle name and relative file location) into Airflow's database, and the DAG
processor moves that file to the front of its queue at its next loop. Muxly does the same after it committed a
write that can change a DAG (the REST API's writes through :mod:`muxly_provider.api.v1.crud`, ``airflow muxly
config import``), so a changed job shows in Airflow within seconds.

Which files: a ``scheduler_jobs`` row asks for the file that holds the job's DAG now (from Airflow's ``dag``
table; it goes when the job is disabled or deleted) and the shard file of the job
(``muxly_dags_shard_<shard_of(job id)>.py`` as ``airflow muxly jobs write-shards`` names it, found as the file
of any Muxly DAG of that shard; with one shard, the file of every Muxly DAG). A ``connectors`` row asks for the
shards of its jobs; a destination, route, routing rule or one of their links can change any job's DAG, so it
asks for every file that holds a Muxly DAG. A file that holds no Muxly DAG yet (a new deployment) is unknown
here and waits for its turn.

Airflow's default ``[dag_processor] file_parsing_sort_mode = modified_time`` sorts the queue again by the files'
modification times at every bundle refresh, and a priority request forces one, so the requested file would lose
its place: Muxly touches the file where it is on this machine's disk, and recommends ``alphabetical`` for shard
files (``airflow muxly doctor`` warns; docs/deployment.md).

Airflow drops a request for a file that is being parsed at that very moment (the parse that is running may
have read the rows before the commit), so the request is sent again :data:`FOLLOW_UP_SECONDS` later from a
background thread (in a short-lived CLI process the thread ends with the process; the next pass then shows the
change).

It never fails the write: any error (Airflow's database unreachable, not migrated, ...) is logged and the
DAGs change at the processor's next pass, as without this module.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterable
from typing import Any

log = logging.getLogger(__name__)

DAG_TABLES = frozenset(
    {
        "scheduler_jobs",
        "connectors",
        "destinations",
        "routes",
        "route_rules",
        "routing_rules",
        "rule_destinations",
    }
)
"""Muxly tables whose rows the DAG factory reads (or whose writes change the links it reads)."""

FOLLOW_UP_SECONDS = 5.0
"""When the request is sent a second time (0: never); longer than a shard file's parse."""

_SHARD_FILE = re.compile(r"muxly_dags_shard_(\d+)\.py$")
_PENDING = "muxly_reparse_pending"
_LISTENING = "muxly_reparse_listening"

File = tuple[str, str]
"""A DAG file as Airflow's ``dag`` table names it: (bundle name, relative file location)."""


def note_write(session: Any, table: str, key: str) -> None:
    """Remember that ``session`` wrote row ``key`` of ``table``; ask for the re-parse after it commits.

    Rows of tables the DAG factory does not read are ignored. A rollback forgets the noted rows.

    :param session: a SQLAlchemy session on Muxly's database
    """
    if table not in DAG_TABLES:
        return
    if not session.info.get(_LISTENING):
        from sqlalchemy import event

        # registered once per session and left in place: removing a listener while SQLAlchemy runs the
        # after_commit listeners would change the list it iterates
        event.listen(session, "after_commit", _after_commit)
        event.listen(session, "after_rollback", _after_rollback)
        session.info[_LISTENING] = True
    session.info.setdefault(_PENDING, set()).add((table, str(key)))


def _after_commit(session: Any) -> None:
    pending = session.info.pop(_PENDING, None)
    if pending:
        request_reparse(pending)


def _after_rollback(session: Any) -> None:
    session.info.pop(_PENDING, None)


def request_reparse_of_jobs(job_ids: Iterable[str]) -> int:
    """Ask for the re-parse of the files of ``job_ids`` (after their rows were committed); never raises.

    :returns: how many files were asked for
    """
    return request_reparse(("scheduler_jobs", job_id) for job_id in job_ids)


def request_reparse(changes: Iterable[tuple[str, str]]) -> int:
    """Ask for the re-parse of every file the committed ``(table, row id)`` writes affect; never raises.

    :returns: how many files were asked for (0 when none is known or on error, which is logged)
    """
    changes = {(table, key) for table, key in changes if table in DAG_TABLES}
    if not changes:
        return 0
    try:
        asked = _request(changes)
    except Exception as exc:  # the write is committed; the files are then parsed at their turn
        log.warning(
            "Muxly: could not ask Airflow to re-parse the DAG files of %d changed row(s) (%s: %s); "
            "the DAGs change at the DAG processor's next pass",
            len(changes),
            type(exc).__name__,
            exc,
        )
        return 0
    if asked and FOLLOW_UP_SECONDS > 0:
        import threading

        timer = threading.Timer(FOLLOW_UP_SECONDS, _follow_up, args=(changes,))
        timer.daemon = True
        timer.start()
    return asked


def _follow_up(changes: set[tuple[str, str]]) -> None:
    try:
        _request(changes)
    except Exception as exc:  # the first request went through; this one only covers a parse in flight
        log.info("Muxly: the follow-up re-parse request failed (%s: %s)", type(exc).__name__, exc)


def _request(changes: set[tuple[str, str]]) -> int:
    from airflow.models.dag import DagModel
    from airflow.models.dagbag import DagPriorityParsingRequest
    from airflow.utils.session import create_session
    from sqlalchemy import select

    from muxly_provider import settings
    from muxly_provider.dag_factory.naming import DAG_ID_PREFIX, dag_id_for
    from muxly_provider.dag_factory.register import shard_of

    shards = settings.dag_file_shards()
    job_ids = {key for table, key in changes if table == "scheduler_jobs"}
    everything = any(table not in ("scheduler_jobs", "connectors") for table, _ in changes)
    connectors = {key for table, key in changes if table == "connectors"}
    if connectors and not everything:
        job_ids |= _jobs_of_connectors(connectors)
    with create_session() as session:
        files: dict[File, int | None] = {}
        paths: dict[File, str] = {}
        query = (
            select(DagModel.bundle_name, DagModel.relative_fileloc, DagModel.fileloc)
            .where(DagModel.dag_id.startswith(DAG_ID_PREFIX, autoescape=True), DagModel.is_stale.is_(False))
            .distinct()
        )
        for bundle, relative, fileloc in session.execute(query):
            if relative is not None:
                match = _SHARD_FILE.search(relative)
                files[(bundle, relative)] = int(match.group(1)) if match else None
                if fileloc:
                    paths[(bundle, relative)] = fileloc
        wanted: set[File] = set()
        if everything:
            wanted = set(files)
        else:
            shards_wanted = {shard_of(job_id, shards) for job_id in job_ids}
            for file, shard in files.items():
                if (shards <= 1 and shard is None) or shard in shards_wanted:
                    wanted.add(file)
            if job_ids:
                own = select(DagModel.bundle_name, DagModel.relative_fileloc, DagModel.fileloc).where(
                    DagModel.dag_id.in_(sorted(dag_id_for(j) for j in job_ids))
                )
                for bundle, relative, fileloc in session.execute(own):
                    if relative is not None:
                        wanted.add((bundle, relative))
                        if fileloc:
                            paths[(bundle, relative)] = fileloc
        for bundle, relative in sorted(wanted):
            request_id = hashlib.md5(f"{bundle}:{relative}".encode(), usedforsecurity=False).hexdigest()
            if session.get(DagPriorityParsingRequest, request_id) is None:
                request = DagPriorityParsingRequest(bundle_name=bundle, relative_fileloc=relative)
                request.id = request_id
                session.add(request)
    if wanted:
        log.info("Muxly: asked Airflow to re-parse %s", ", ".join(f"{b}:{r}" for b, r in sorted(wanted)))
        _touch(paths[file] for file in wanted if file in paths)
    return len(wanted)


def _touch(filelocs: Iterable[str]) -> None:
    """Give the requested files a new modification time, where they are on this machine's disk.

    With Airflow's default ``[dag_processor] file_parsing_sort_mode = modified_time``, the processor sorts its
    queue again by modification time at every bundle refresh, and a priority request forces one: the requested
    file loses its place at the front unless it is the newest. Where the DAG files are not on this machine (an
    api-server without the bundle), nothing is touched; ``file_parsing_sort_mode = alphabetical`` then keeps
    the request's place (docs/deployment.md).
    """
    import os

    for fileloc in filelocs:
        try:
            if os.path.isfile(fileloc):
                os.utime(fileloc)
        except OSError as exc:  # read-only DAG folder: the request alone still counts
            log.debug("Muxly: could not touch %s: %s", fileloc, exc)


def _jobs_of_connectors(connector_ids: set[str]) -> set[str]:
    from sqlalchemy import column, select, table

    from muxly_provider.db.engine import get_engine

    jobs = table("scheduler_jobs", column("id"), column("connector_id"))
    with get_engine().connect() as conn:
        query = select(jobs.c.id).where(jobs.c.connector_id.in_(sorted(connector_ids)))
        return {str(job_id) for (job_id,) in conn.execute(query)}
