"""Produce the DAGs of the enabled jobs into a DAG file's namespace.

- One query per parse (:func:`muxly_provider.db.snapshot.load_factory_snapshot`).
- A worker starting a task builds only the DAG it runs (``get_parsing_context().dag_id``): it validates and
  builds one job, not all of them.
- Large deployments split the jobs over several DAG files (``[muxly] dag_file_shards``): shard ``i`` builds the
  jobs whose stable hash of the id modulo the number of shards is ``i``, so no single file's parse and
  serialization nears Airflow's timeouts (``airflow muxly jobs write-shards`` writes the files).
- Parse survives a config-DB outage: each file keeps the specs of its last good parse (ids, names, schedules;
  never a secret) in ``$AIRFLOW_HOME/muxly/`` and builds from them when Muxly's database cannot be read. A
  setting that cannot work (``MuxlyDatabaseSettingError``: Airflow on PostgreSQL without ``[muxly]
  sql_alchemy_conn``) is not an outage: it is raised, so it shows as the DAG file's import error.
- A bad row is logged and skipped; it never hides the other DAGs.
- A shard file reads only its own jobs in full (and the connectors they use): see
  :func:`muxly_provider.db.snapshot.load_factory_snapshot`'s ``jobs``.
- The same cache file remembers the digests of the rows that passed validation and of the specs whose DAGs
  passed ``dag.validate()``/``check_cycle()``: an unchanged row skips pydantic, an unchanged spec skips
  Airflow's checks (the DagBag runs them again anyway). It is a local shortcut keyed by content, tied to the
  installed Muxly and Airflow code; a changed row, a missing or foreign cache file means a full check.

:func:`build_job_dags` is the one place that decides which jobs become DAGs: the DAG file
(:func:`register_dags`) and ``airflow muxly jobs validate`` (:func:`check_jobs`) both call it, so every reason
the factory skips a job (a row that fails validation, a reference, a schedule, a DAG that Airflow would refuse:
``DuplicateTaskIdFound``, ``dag.validate()``, ``dag.check_cycle()``, a too long id) is a
:class:`~muxly_provider.dag_factory.specs.JobProblem` that ``validate`` names.
"""

from __future__ import annotations

import json
import logging
import os
import zlib
from collections.abc import Callable, Iterable, MutableMapping, Set
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from muxly_provider.dag_factory.specs import JobDagSpec, JobProblem, build_job_specs

if TYPE_CHECKING:
    from muxly_provider.db.snapshot import ConfigSnapshot

log = logging.getLogger(__name__)


def shard_of(job_id: str, shards: int) -> int:
    """The shard of a job: a stable hash of its id (the same in every process and Python version)."""
    return zlib.crc32(job_id.encode("utf-8")) % shards if shards > 1 else 0


def _cache_path(shard: int | None) -> Path:
    from muxly_provider import settings

    name = "dag_specs.json" if shard is None else f"dag_specs_shard_{shard}.json"
    return settings.airflow_home() / "muxly" / name


@dataclass
class _LastGood:
    """What a DAG file remembers of its last good parse (never a secret)."""

    specs: list[JobDagSpec] = field(default_factory=list)
    rows_ok: frozenset[str] = frozenset()
    built_ok: frozenset[str] = frozenset()


_CACHE_FORMAT = 2


@cache
def _code_stamp() -> str:
    """The installed Muxly and Airflow code the digests of a cache file were checked with."""
    from importlib.metadata import PackageNotFoundError, version

    import muxly_provider

    root = Path(muxly_provider.__file__).parent
    try:
        airflow = version("apache-airflow")
    except PackageNotFoundError:
        airflow = "?"
    newest = max(
        (
            p.stat().st_mtime_ns
            for folder in ("config", "dag_factory", "operators")
            for p in (root / folder).glob("*.py")
        ),
        default=0,
    )
    return f"{muxly_provider.__version__}:{airflow}:{newest}"


def _write_cache(path: Path, last: _LastGood) -> None:
    payload = json.dumps(
        {
            "format": _CACHE_FORMAT,
            "code": _code_stamp(),
            "specs": [s.to_json() for s in last.specs],
            "rows_ok": sorted(last.rows_ok),
            "built_ok": sorted(last.built_ok),
        },
        sort_keys=True,
    )
    try:
        if path.exists() and path.read_text(encoding="utf-8") == payload:
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp")
        tmp.write_text(payload, encoding="utf-8")
        os.replace(tmp, path)
    except OSError as exc:
        log.warning("Muxly: could not write the DAG spec cache %s: %s", path, exc)


def _read_cache(path: Path, *, quiet: bool = False) -> _LastGood:
    """The last good parse in ``path``; its digests only when written by the same code."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(data, list):  # written before the digests were kept
            return _LastGood([JobDagSpec.from_json(item) for item in data])
        specs = [JobDagSpec.from_json(item) for item in data["specs"]]
        if data.get("format") != _CACHE_FORMAT or data.get("code") != _code_stamp():
            return _LastGood(specs)
        return _LastGood(specs, frozenset(data["rows_ok"]), frozenset(data["built_ok"]))
    except (OSError, ValueError, TypeError, KeyError) as exc:
        if not quiet:
            log.error("Muxly: no usable DAG spec cache at %s (%s)", path, exc)
        return _LastGood()


def load_job_specs(
    wanted: Callable[[str], bool] | None = None,
    cache: Path | None = None,
    *,
    validate: bool = True,
    prefilter: bool = False,
) -> tuple[list[JobDagSpec], list[JobProblem]]:
    """Specs and problems from Muxly's database, or the last good specs of ``cache`` when it cannot be read.

    :param wanted: only jobs whose id it accepts
    :param cache: the last-good file to write (after a full read) and to fall back on
    :param prefilter: read only the ``wanted`` jobs' rows in full (a shard file; see
        :func:`muxly_provider.db.snapshot.load_factory_snapshot`)
    """
    specs, problems, _ = _load_job_specs(wanted, cache, validate=validate, prefilter=prefilter)
    return specs, problems


def _load_job_specs(
    wanted: Callable[[str], bool] | None,
    cache: Path | None,
    *,
    validate: bool,
    prefilter: bool,
    write: bool = True,
) -> tuple[list[JobDagSpec], list[JobProblem], _LastGood | None]:
    """:func:`load_job_specs`, plus what the cache held (``None`` when the database could not be read)."""
    from sqlalchemy.exc import SQLAlchemyError

    from muxly_provider.db.snapshot import load_factory_snapshot
    from muxly_provider.exceptions import MuxlyDatabaseError, MuxlyDatabaseSettingError

    try:
        snapshot = load_factory_snapshot(jobs=wanted if prefilter else None)
    except MuxlyDatabaseSettingError:
        # A setting that cannot work here is not an outage: the DAG file's import error names it (the last
        # good cache would hide it while tasks fail with the same message).
        raise
    except (SQLAlchemyError, MuxlyDatabaseError) as exc:
        log.error("Muxly: cannot read its database (%s); keeping the DAGs of the last good parse", exc)
        if cache is None:
            return [], [], None
        specs = _read_cache(cache).specs
        return [s for s in specs if wanted is None or wanted(s.job_id)], [], None
    last = _read_cache(cache, quiet=True) if cache is not None else _LastGood()
    passed: set[str] = set()
    specs, problems = build_job_specs(
        snapshot, wanted, validate=validate, known_rows=last.rows_ok, passed_rows=passed
    )
    del snapshot  # free the rows before the DAGs are built and serialized
    fresh = _LastGood(specs, frozenset(passed), last.built_ok)
    if cache is not None and write:
        _write_cache(cache, fresh)
    return specs, problems, fresh


def build_job_dags(
    specs: Iterable[JobDagSpec], problems: Iterable[JobProblem] = (), built_ok: Set[str] = frozenset()
) -> tuple[list[Any], list[JobProblem]]:
    """Build the DAG of every spec exactly as the DAG file does; a DAG that cannot be built is a problem.

    :func:`muxly_provider.dag_factory.builder.build_dag` constructs the DAG with ``auto_register=False`` and
    runs ``dag.validate()`` and ``dag.check_cycle()``, the checks Airflow's DagBag applies before it accepts a
    DAG; whatever it raises (``DuplicateTaskIdFound``, an invalid id, a timetable Airflow refuses, ...) becomes
    a problem of field ``dag`` naming the job, instead of an import error that would hide the file's other DAGs.

    :param specs: the specs of the jobs to build
    :param problems: problems found before (by :func:`build_job_specs`), returned first
    :param built_ok: digests (:meth:`JobDagSpec.digest`) of specs whose DAG passed both checks before: built
        without running them again
    :returns: the DAGs, and every problem
    """
    from muxly_provider.dag_factory.builder import build_dag

    found = list(problems)
    dags = []
    for spec in specs:
        try:
            dags.append(build_dag(spec, validate=not built_ok or spec.digest() not in built_ok))
        except Exception as exc:  # whatever Airflow raises while building: the job is skipped, never the file
            found.append(JobProblem(spec.job_id, spec.dag_id, "dag", f"{type(exc).__name__}: {exc}"))
    return dags, found


def check_jobs(snapshot: ConfigSnapshot) -> tuple[list[Any], list[JobProblem]]:
    """Every enabled job of ``snapshot`` through the factory's own steps: the DAGs it builds and the problems.

    ``airflow muxly jobs validate`` and ``jobs list`` use this; it validates the rows as the DAG processor does.
    """
    return build_job_dags(*build_job_specs(snapshot))


def register_dags(namespace: MutableMapping[str, Any], shard: int | None = None) -> list[Any]:
    """Build the DAGs of this file's jobs and put them into ``namespace`` (the DAG file's ``globals()``).

    :param namespace: where to put the DAGs
    :param shard: this file's shard number when ``[muxly] dag_file_shards`` > 1 (``None``: the single file,
        which then builds every job, or nothing when shards are configured)
    """
    from airflow.sdk import get_parsing_context

    from muxly_provider import settings
    from muxly_provider.dag_factory.naming import dag_id_for

    shards = settings.dag_file_shards()
    if shard is None and shards > 1:
        log.info("Muxly: [muxly] dag_file_shards=%s: the shard files build the DAGs, not this one", shards)
        return []
    if shard is not None and not 0 <= shard < shards:
        log.warning("Muxly: shard %s is outside [muxly] dag_file_shards=%s; building nothing", shard, shards)
        return []
    only = get_parsing_context().dag_id
    mine: Callable[[str], bool] | None = None
    if shard is not None:
        mine = lambda job_id: shard_of(job_id, shards) == shard  # noqa: E731
    if only:
        in_shard = mine
        mine = lambda job_id: dag_id_for(job_id) == only and (in_shard is None or in_shard(job_id))  # noqa: E731
    cache = None if only else _cache_path(shard)
    specs, problems, last = _load_job_specs(
        mine, cache, validate=not only, prefilter=shard is not None and not only, write=False
    )
    dags, problems = build_job_dags(specs, problems, last.built_ok if last is not None else frozenset())
    if cache is not None and last is not None:
        failed = {p.job_id for p in problems if p.field == "dag"}
        built = frozenset(s.digest() for s in specs if s.job_id not in failed)
        _write_cache(cache, _LastGood(specs, last.rows_ok, built))
    for problem in problems:
        log.warning(
            "Muxly: job %r cannot become DAG %s: %s: %s",
            problem.job_id,
            problem.dag_id,
            problem.field,
            problem.reason,
        )
    for dag in dags:
        namespace[dag.dag_id] = dag
    return dags
