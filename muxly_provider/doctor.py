"""``airflow muxly doctor``: is this machine ready to run Muxly, and if not, which setting to fix.

One :class:`Check` per line, in order (a check whose prerequisite failed is ``skipped``):

``database_url``
    Muxly's database URL resolves (:func:`muxly_provider.settings.sql_alchemy_conn`: refused when Airflow runs
    on a server database or a remote executor without ``[muxly] sql_alchemy_conn``, or when it names Airflow's
    own SQLite file). A SQLite URL next to a remote executor is a warning (each machine has its own file unless
    it is on a shared disk).
``database_reachable``
    ``SELECT 1`` through Muxly's engine, bounded by ``[muxly] db_connect_timeout``.
``database_migrated``
    Muxly's tables are at the newest Alembic revision.
``fernet_key``
    ``[core] fernet_key`` is set and valid (a secret is encrypted and decrypted with Airflow's Fernet).
``staging``
    A probe object is written, read back and deleted under ``[muxly] staging_path`` with ``[muxly]
    staging_conn_id`` (:func:`muxly_provider.runtime.staging.probe`).
``local_paths``
    With an executor that runs tasks on other machines (``[core] executor`` not Local/Sequential), a local
    ``staging_path`` is a failure (the extract's records would stay on its worker) and ``files_root`` a warning
    (file connectors and destinations use the disk of whichever worker runs the task).
``dag_processor_order``
    With shard files (``[muxly] dag_file_shards`` above 1), ``[dag_processor] file_parsing_sort_mode =
    modified_time`` (Airflow's default) is a warning: the processor sorts its queue by modification time at
    every bundle refresh, which each re-parse request forces, so a changed job's shard loses its place at the
    front unless its file is touched on the DAG processor's disk (``alphabetical`` keeps it).
``settings_agree``
    The settings every machine must share (:func:`fingerprint_settings`: Muxly's database without user or
    password, ``db_schema``, ``staging_path``, ``staging_conn_id``, ``files_root``, ``dag_file_shards``, a short
    hash of the Fernet key, Muxly's version) are written to Muxly's table ``machine_settings`` under this
    machine's host name and ``[muxly] machine_role``, and compared with every other machine's row.

**Who writes the fingerprint.** The doctor, on each run: run ``airflow muxly doctor`` once on every machine (or
in each container's start command) after a deployment or a settings change. Writing it from the api-server's
start or every task would cost a write per process on the hot path and was left out; a machine that never ran
the doctor is simply not compared. A retired machine's row stays until deleted (``docs/doctor.md``).

No check prints a secret: URLs are shown with ``***`` for the password and the Fernet key only as a hash.
"""

from __future__ import annotations

import hashlib
import json
import logging
import socket
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

OK = "ok"
WARNING = "warning"
FAILED = "failed"
SKIPPED = "skipped"

FINGERPRINT_KEYS = (
    "database",
    "db_schema",
    "staging_path",
    "staging_conn_id",
    "files_root",
    "dag_file_shards",
    "fernet_key_sha256",
    "muxly_version",
)
"""The settings that must agree between the api-server, the scheduler, the DAG processor and the workers."""


@dataclass
class Check:
    """The result of one readiness check.

    :param name: the check (see the module docstring)
    :param status: ``ok``, ``warning``, ``failed`` or ``skipped``
    :param detail: what was found
    :param fix: what to change (naming the setting), empty when nothing
    """

    name: str
    status: str
    detail: str
    fix: str = ""

    def as_dict(self) -> dict[str, str]:
        """The check as a plain dict (JSON output)."""
        return asdict(self)


@dataclass
class Report:
    """Every check of one doctor run, and the machines whose settings differ from this one's."""

    checks: list[Check] = field(default_factory=list)
    machines: list[dict[str, Any]] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        """Whether a check failed (the CLI then exits with 1)."""
        return any(check.status == FAILED for check in self.checks)

    def as_dict(self) -> dict[str, Any]:
        """The report as a plain dict (JSON output)."""
        return {
            "ok": not self.failed,
            "checks": [check.as_dict() for check in self.checks],
            "machines": self.machines,
        }


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def machine_role() -> str:
    """This machine's role in ``machine_settings`` (``[muxly] machine_role``, default ``unspecified``)."""
    from muxly_provider import settings

    return settings.conf_get(settings.SECTION, "machine_role").strip() or "unspecified"


def database_identity(url: str) -> str:
    """Where Muxly's data lives, comparable between machines: never the user, password or driver.

    ``postgresql://host:5432/db`` for a server, ``sqlite:///<real path>`` for a SQLite file.
    """
    from sqlalchemy.engine import make_url

    from muxly_provider.security.databases import identity

    parsed = make_url(url)
    found = identity(parsed)
    if found.family == "sqlite":
        return f"sqlite:///{found.path or ':memory:'}"
    host = parsed.host or str(parsed.query.get("host", "") or "")
    return f"{found.family}://{host}:{found.port or ''}/{found.database or ''}"


def fingerprint_settings(url: str) -> dict[str, str]:
    """The values of :data:`FINGERPRINT_KEYS` on this machine (no secret: the Fernet key only as a hash)."""
    from muxly_provider import __version__, settings

    fernet_raw = settings.conf_get("core", "fernet_key").strip()
    keys = ",".join(key.strip() for key in fernet_raw.split(",") if key.strip())
    return {
        "database": database_identity(url),
        "db_schema": settings.db_schema(url) or "",
        "staging_path": settings.staging_path(),
        "staging_conn_id": settings.staging_conn_id() or "",
        "files_root": str(settings.files_root()),
        "dag_file_shards": str(settings.dag_file_shards()),
        "fernet_key_sha256": hashlib.sha256(keys.encode()).hexdigest()[:12] if keys else "",
        "muxly_version": __version__,
    }


def fingerprint_of(values: dict[str, str]) -> str:
    """The SHA-256 of ``values`` (sorted JSON)."""
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


def record_machine_settings(engine: Any, values: dict[str, str], hostname: str, role: str) -> None:
    """Write (insert or replace) this machine's row of ``machine_settings``."""
    from sqlalchemy import delete, insert

    from muxly_provider.db.models import metadata

    table = metadata.tables["machine_settings"]
    with engine.begin() as conn:
        conn.execute(delete(table).where(table.c.hostname == hostname, table.c.role == role))
        conn.execute(
            insert(table).values(
                hostname=hostname,
                role=role,
                fingerprint=fingerprint_of(values),
                settings=json.dumps(values, sort_keys=True),
                updated_at=datetime.now(UTC).replace(tzinfo=None),
            )
        )


def disagreeing_machines(
    engine: Any, values: dict[str, str], hostname: str, role: str
) -> list[dict[str, Any]]:
    """Every other machine's row whose settings differ from ``values``, with the keys that differ."""
    from sqlalchemy import select

    from muxly_provider.db.models import metadata

    table = metadata.tables["machine_settings"]
    mine = fingerprint_of(values)
    found = []
    with engine.connect() as conn:
        for row in conn.execute(select(table).order_by(table.c.hostname, table.c.role)).mappings():
            if (row["hostname"], row["role"]) == (hostname, role) or row["fingerprint"] == mine:
                continue
            try:
                theirs = json.loads(row["settings"])
            except ValueError:
                theirs = {}
            differ = sorted(key for key in set(values) | set(theirs) if values.get(key) != theirs.get(key))
            found.append(
                {
                    "hostname": row["hostname"],
                    "role": row["role"],
                    "updated_at": str(row["updated_at"]),
                    "differ": {key: {"here": values.get(key), "there": theirs.get(key)} for key in differ},
                }
            )
    return found


def _setting_of(key: str) -> str:
    return {
        "database": "[muxly] sql_alchemy_conn",
        "db_schema": "[muxly] db_schema",
        "staging_path": "[muxly] staging_path",
        "staging_conn_id": "[muxly] staging_conn_id",
        "files_root": "[muxly] files_root",
        "dag_file_shards": "[muxly] dag_file_shards",
        "fernet_key_sha256": "[core] fernet_key",
        "muxly_version": "the installed airflow-provider-muxly version",
    }.get(key, key)


class _Doctor:
    """Runs the checks in order, remembering what later checks need."""

    def __init__(self, write_fingerprint: bool) -> None:
        self.report = Report()
        self.write_fingerprint = write_fingerprint
        self.url: str | None = None
        self.engine: Any = None
        self.migrated = False

    def add(self, name: str, status: str, detail: str, fix: str = "") -> None:
        self.report.checks.append(Check(name, status, detail, fix))

    def guarded(self, name: str, check: Callable[[], None]) -> None:
        """Run ``check``; an unexpected error fails the check instead of stopping the doctor."""
        try:
            check()
        except Exception as exc:  # every check reports, whatever broke
            self.add(
                name, FAILED, _first_line(exc), "see the error; docs/doctor.md lists what each check needs"
            )

    def database_url(self) -> None:
        from muxly_provider import settings
        from muxly_provider.db.migrate import masked_url
        from muxly_provider.exceptions import MuxlyDatabaseError

        try:
            self.url = settings.sql_alchemy_conn()
            schema = settings.db_schema(self.url)
        except MuxlyDatabaseError as exc:
            self.add(
                "database_url",
                FAILED,
                str(exc),
                "set [muxly] sql_alchemy_conn (AIRFLOW__MUXLY__SQL_ALCHEMY_CONN)",
            )
            return
        where = masked_url(self.url) + (f" (schema {schema})" if schema else "")
        remote = settings.remote_executors()
        configured = bool(settings.conf_get(settings.SECTION, "sql_alchemy_conn").strip())
        if remote and configured and self.url.startswith("sqlite"):
            self.add(
                "database_url",
                WARNING,
                f"Muxly's database {where} is a SQLite file while [core] executor is {', '.join(remote)}",
                "every machine must open the same file (a shared disk); prefer a PostgreSQL URL in "
                "[muxly] sql_alchemy_conn",
            )
            return
        self.add("database_url", OK, f"Muxly's database is {where}")

    def database_reachable(self) -> None:
        from sqlalchemy import text

        from muxly_provider import settings
        from muxly_provider.db.engine import get_engine
        from muxly_provider.db.migrate import sqlite_path

        if self.url is None:
            self.add("database_reachable", SKIPPED, "no usable Muxly database URL")
            return
        timeout = settings.db_connect_timeout()
        path = sqlite_path(self.url)  # to tell a SQLite file that does not exist yet
        if path is not None and not path.exists():
            self.add(
                "database_reachable",
                FAILED,
                f"the SQLite file {path} does not exist yet",
                "run 'airflow db migrate' (or 'airflow muxly db migrate') with this [muxly] sql_alchemy_conn",
            )
            return
        try:
            engine = get_engine(self.url)
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:
            self.add(
                "database_reachable",
                FAILED,
                f"cannot connect (within {timeout} s, [muxly] db_connect_timeout): {_first_line(exc)}",
                "check the host, port, database, user and password of [muxly] sql_alchemy_conn and that this "
                "machine can reach the server",
            )
            return
        self.engine = engine
        self.add("database_reachable", OK, f"connected (connect timeout {timeout} s)")

    def database_migrated(self) -> None:
        from muxly_provider.db import migrate

        if self.engine is None or self.url is None:
            self.add("database_migrated", SKIPPED, "Muxly's database is not reachable")
            return
        quiet = logging.getLogger("alembic")
        level = quiet.level
        quiet.setLevel(logging.WARNING)  # Alembic's "Context impl" lines would go into the JSON output
        try:
            current, head = migrate.current_revision(self.url), migrate.head_revision()
        finally:
            quiet.setLevel(level)
        if current == head:
            self.migrated = True
            self.add("database_migrated", OK, f"at the newest revision {head}")
            return
        self.add(
            "database_migrated",
            FAILED,
            f"at revision {current or 'base (no Muxly tables)'}, the newest is {head}",
            "run 'airflow db migrate' (or 'airflow muxly db migrate') with this [muxly] sql_alchemy_conn",
        )

    def fernet_key(self) -> None:
        from muxly_provider import crypto
        from muxly_provider.exceptions import MuxlySecretError

        try:
            token = crypto.encrypt_secret("muxly-doctor")
            ok = crypto.decrypt_secret(token) == "muxly-doctor"
        except MuxlySecretError as exc:
            self.add(
                "fernet_key",
                FAILED,
                str(exc).split(", e.g.")[0],
                "set [core] fernet_key (AIRFLOW__CORE__FERNET_KEY), the same on every machine",
            )
            return
        if not ok:
            self.add(
                "fernet_key",
                FAILED,
                "a secret did not decrypt to what was encrypted",
                "set [core] fernet_key",
            )
            return
        self.add("fernet_key", OK, "set and valid (encrypts and decrypts)")

    def staging(self) -> None:
        from muxly_provider.runtime import staging

        try:
            where = _staging_probe(staging)
        except Exception as exc:
            self.add(
                "staging",
                FAILED,
                f"cannot write, read back and delete a probe object: {_first_line(exc)}",
                "check [muxly] staging_path and [muxly] staging_conn_id (the Airflow connection: credentials, "
                "endpoint_url in its extras) from this machine",
            )
            return
        self.add("staging", OK, f"wrote, read back and deleted a probe object under {where}")

    def local_paths(self) -> None:
        from muxly_provider import settings

        remote = settings.remote_executors()
        if not remote:
            self.add("local_paths", OK, "[core] executor runs tasks on this machine only")
            return
        executors = ", ".join(remote)
        location = settings.staging_path()
        if "://" not in location or location.startswith("file://"):
            self.add(
                "local_paths",
                FAILED,
                f"[muxly] staging_path {location} is a local folder while [core] executor is {executors}: a "
                "delivery task on another worker cannot read what the extract staged",
                "set [muxly] staging_path to object storage (e.g. s3://bucket/muxly/staging) and "
                "[muxly] staging_conn_id to its Airflow connection, the same on every machine",
            )
            return
        self.add(
            "local_paths",
            WARNING,
            f"[muxly] files_root {settings.files_root()} is a local folder while [core] executor is {executors}: "
            "file connectors and destinations read and write the disk of whichever worker runs the task",
            "mount the same shared folder at [muxly] files_root on every worker, or do not use file "
            "connectors/destinations",
        )

    def dag_processor_order(self) -> None:
        from airflow.configuration import conf

        from muxly_provider import settings

        shards = settings.dag_file_shards()
        mode = conf.get("dag_processor", "file_parsing_sort_mode", fallback="modified_time")
        if shards <= 1 or mode != "modified_time":
            self.add(
                "dag_processor_order",
                OK,
                f"[muxly] dag_file_shards = {shards}, [dag_processor] file_parsing_sort_mode = {mode}",
            )
            return
        self.add(
            "dag_processor_order",
            WARNING,
            f"{shards} shard files with [dag_processor] file_parsing_sort_mode = modified_time: the DAG processor "
            "re-sorts its queue by file modification time at the bundle refresh each re-parse request forces, so "
            "a changed job can wait for its shard's turn in the pass unless the api-server can touch the file",
            "set [dag_processor] file_parsing_sort_mode = alphabetical on the DAG processor "
            "(random_seeded_by_host with several DAG processors)",
        )

    def settings_agree(self) -> None:
        if self.url is None:
            self.add("settings_agree", SKIPPED, "no usable Muxly database URL")
            return
        values = fingerprint_settings(self.url)
        if not self.migrated:
            self.add("settings_agree", SKIPPED, "Muxly's database is not reachable or not migrated")
            return
        hostname, role = socket.gethostname(), machine_role()
        if self.write_fingerprint:
            record_machine_settings(self.engine, values, hostname, role)
        others = disagreeing_machines(self.engine, values, hostname, role)
        self.report.machines = others
        if not others:
            self.add(
                "settings_agree",
                OK,
                f"recorded as {hostname} ({role}); every machine that ran the doctor has the same settings",
            )
            return
        names = sorted({key for other in others for key in other["differ"]})
        listed = "; ".join(
            f"{other['hostname']} ({other['role']}, {other['updated_at']}): {', '.join(other['differ'])}"
            for other in others
        )
        self.add(
            "settings_agree",
            FAILED,
            f"settings differ from {len(others)} other machine(s): {listed}",
            "make " + ", ".join(_setting_of(name) for name in names) + " the same on every machine",
        )


def _staging_probe(staging: Any) -> str:
    """Write, read back and delete a probe object under the staging root; return the root's URL."""
    probe = getattr(staging, "probe", None)
    if probe is not None:
        return str(probe())
    import uuid

    from airflow.sdk import ObjectStoragePath

    from muxly_provider import settings

    location = settings.staging_path()
    location = location if "://" in location else "file://" + location
    conn_id = settings.staging_conn_id()
    root = ObjectStoragePath(location, conn_id=conn_id) if conn_id else ObjectStoragePath(location)
    path = root / ".muxly-probe" / f"{uuid.uuid4().hex}.txt"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("probe")
    if path.read_text() != "probe":
        raise OSError(f"{path} did not read back what was written")
    path.unlink()
    return location


def run_checks(write_fingerprint: bool = True) -> Report:
    """Run every check on this machine (see the module docstring).

    :param write_fingerprint: record this machine's settings in ``machine_settings`` (the doctor always does)
    """
    doctor = _Doctor(write_fingerprint)
    for name in (
        "database_url",
        "database_reachable",
        "database_migrated",
        "fernet_key",
        "staging",
        "local_paths",
        "dag_processor_order",
        "settings_agree",
    ):
        doctor.guarded(name, getattr(doctor, name))
    return doctor.report
