"""A distributed Airflow on one machine, for the live CeleryExecutor test and the compose file's settings.

:func:`deployment_env` is the single source of the ``AIRFLOW__*`` settings that every machine of a Celery
deployment shares: ``tests/integration/live/test_live_celery.py`` starts its processes with it and
``tests/unit/test_docker_compose.py`` checks that ``docker-compose.celery.yaml`` says exactly the same (only the
addresses differ), so the two cannot drift apart.

:class:`Cluster` runs processes in their own process groups (one per "machine" process: scheduler,
dag-processor, api-server, triggerer, Celery workers), logs each to a file, kills a worker the way a lost
machine dies (SIGKILL to its group and to the groups of its task processes) and ends every group on
:meth:`Cluster.stop`, also after a failure.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

AIRFLOW = str(Path(sys.executable).with_name("airflow"))

STAGING_CONN_ID = "muxly_staging"
"""The Airflow connection of the staging bucket (``[muxly] staging_conn_id``)."""
FILES_CONN_ID = "muxly_files"
"""The Airflow connection file destinations write their ``s3://`` ``output_dir`` with."""

SHARED_SETTINGS: dict[str, str] = {
    "AIRFLOW__CORE__EXECUTOR": "CeleryExecutor",
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION": "False",
    "AIRFLOW__MUXLY__DB_SCHEMA": "muxly",
    "AIRFLOW__MUXLY__STAGING_CONN_ID": STAGING_CONN_ID,
    # Celery's redelivery of a message whose worker vanished; Airflow's heartbeat timeout retries the task
    # long before (the retry is a new message), so this only has to outlast the longest task.
    "AIRFLOW__CELERY_BROKER_TRANSPORT_OPTIONS__VISIBILITY_TIMEOUT": "21600",
}
"""Settings with the same value on every machine, in the live test and in ``docker-compose.celery.yaml``."""


SPEED_SETTINGS = {
    # A lost worker's task is noticed after 10 s (Airflow's default is 300 s).
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "10",
    "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT_DETECTION_INTERVAL": "2",
    "AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC": "2",
    "AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL": "5",
    "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "5",
    "AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD": "60",
    "AIRFLOW__API__WORKERS": "1",
    "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS": "True",
}
"""Only for the live test: faster detection and parsing on a small machine (the compose file keeps Airflow's
defaults, and ``tests/unit/test_docker_compose.py`` checks it does)."""


@dataclass(frozen=True)
class Addresses:
    """Where the shared services of a deployment are, as seen from its machines."""

    postgres: str
    """``user:password@host:port`` (or ``user@host:port``) of PostgreSQL."""
    database: str
    """The database holding Airflow's tables and Muxly's schema."""
    redis: str
    """``host:port`` of Redis."""
    redis_db: int
    api_server: str
    """``http://host:port`` of the api-server as the workers reach it."""
    public_api: str
    """``http://host:port`` of the api-server as a browser reaches it (``[api] base_url``)."""
    bucket: str
    s3_endpoint: str


def deployment_env(at: Addresses, *, s3_access_key: str, s3_secret_key: str) -> dict[str, str]:
    """Every setting the machines of the Celery deployment share (secrets aside: see :func:`secret_env`).

    The same function renders the live test's environment and the values ``docker-compose.celery.yaml`` must
    carry, so the compose file is the tested configuration with other host names. The object store's keys
    are in the connections' extras (``endpoint_url`` names the S3-compatible server).
    """
    database = f"postgresql+psycopg2://{at.postgres}/{at.database}"
    extra = {
        "endpoint_url": at.s3_endpoint,
        "region_name": "us-east-1",
        "aws_access_key_id": s3_access_key,
        "aws_secret_access_key": s3_secret_key,
    }
    s3 = {"conn_type": "aws", "extra": extra}
    return {
        **SHARED_SETTINGS,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": database,
        # Muxly's tables: the same PostgreSQL database, schema [muxly] db_schema; every machine reaches it here.
        "AIRFLOW__MUXLY__SQL_ALCHEMY_CONN": database,
        "AIRFLOW__CELERY__BROKER_URL": f"redis://{at.redis}/{at.redis_db}",
        "AIRFLOW__CELERY__RESULT_BACKEND": f"db+{database}",
        "AIRFLOW__CORE__EXECUTION_API_SERVER_URL": f"{at.api_server}/execution/",
        "AIRFLOW__API__BASE_URL": at.public_api,
        "AIRFLOW__MUXLY__STAGING_PATH": f"s3://{at.bucket}/staging",
        f"AIRFLOW_CONN_{STAGING_CONN_ID.upper()}": json.dumps(s3, sort_keys=True),
        f"AIRFLOW_CONN_{FILES_CONN_ID.upper()}": json.dumps(s3, sort_keys=True),
    }


SECRET_SETTINGS = (
    "AIRFLOW__CORE__FERNET_KEY",
    "AIRFLOW__API_AUTH__JWT_SECRET",
    "AIRFLOW__API__SECRET_KEY",
)
"""Secrets every machine needs with the same value (the compose file takes them from variables)."""


def secret_env(fernet_key: str, jwt_secret: str, api_secret: str) -> dict[str, str]:
    """The :data:`SECRET_SETTINGS` with their values."""
    return dict(zip(SECRET_SETTINGS, (fernet_key, jwt_secret, api_secret), strict=True))


def hostname_module(home: Path, name: str) -> dict[str, str]:
    """Give the machine of ``home`` the host name ``name``: the ``hostname`` Airflow records for its tasks.

    Every process here runs on one host; a module in ``AIRFLOW_HOME/config`` (on ``sys.path`` in every Airflow
    process) named by ``[core] hostname_callable`` stands in for the machine's own name.
    """
    (home / "config").mkdir(parents=True, exist_ok=True)
    module = f"muxly_live_host_{name.replace('-', '_')}"
    (home / "config" / f"{module}.py").write_text(
        f'"""The host name of this test machine."""\n\n\ndef hostname() -> str:\n    return {name!r}\n'
    )
    return {"AIRFLOW__CORE__HOSTNAME_CALLABLE": f"{module}.hostname"}


@dataclass
class Process:
    """One started process (the leader of its own process group)."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log_path: Path
    popen: subprocess.Popen[bytes]
    log: IO[bytes] = field(repr=False)

    def tail(self, chars: int = 4000) -> str:
        """The end of the process's log."""
        if not self.log.closed:
            self.log.flush()
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError as exc:
            return f"<no log: {exc}>"


def _group_ids(pid: int) -> set[int]:
    """The process groups of ``pid`` and of its descendants (task processes run in groups of their own)."""
    import psutil

    groups: set[int] = set()
    try:
        root = psutil.Process(pid)
        for proc in [root, *root.children(recursive=True)]:
            with contextlib.suppress(psutil.Error, OSError):
                groups.add(os.getpgid(proc.pid))
    except psutil.Error:
        pass
    with contextlib.suppress(OSError):
        groups.add(os.getpgid(pid))
    groups.discard(os.getpgid(0))  # never this test's own group
    return groups


def _signal_groups(groups: set[int], sig: int) -> None:
    for group in groups:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(group, sig)


@dataclass
class Cluster:
    """Processes of a test deployment, each in its own process group, with logs under ``logs``."""

    logs: Path
    processes: dict[str, Process] = field(default_factory=dict)

    def start(self, name: str, argv: list[str], env: dict[str, str]) -> Process:
        """Start ``argv`` as ``name`` (a new session, so a process group of its own)."""
        self.logs.mkdir(parents=True, exist_ok=True)
        log_path = self.logs / f"{name}.log"
        log = open(log_path, "ab")  # noqa: SIM115 - closed in stop()
        popen = subprocess.Popen(argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        process = Process(name, argv, env, log_path, popen, log)
        self.processes[name] = process
        return process

    def run(self, name: str, argv: list[str], env: dict[str, str], timeout: float = 300) -> None:
        """Run a one-shot command (logged like the others); fail with its log's end when it fails."""
        process = self.start(name, argv, env)
        try:
            code = process.popen.wait(timeout=timeout)
        finally:
            del self.processes[name]
            process.log.close()
        if code != 0:
            raise AssertionError(f"{' '.join(argv[1:])} exited with {code}:\n{process.tail()}")

    def check_alive(self) -> None:
        """Fail, naming the process, when one of the started processes exited."""
        for process in self.processes.values():
            if process.popen.poll() is not None and not process.name.endswith("(killed)"):
                raise AssertionError(
                    f"{process.name} exited with {process.popen.returncode}:\n{process.tail()}"
                )

    def kill(self, name: str) -> None:
        """SIGKILL ``name``'s process group and its task processes' groups, as when its machine is lost."""
        process = self.processes.pop(name)
        _signal_groups(_group_ids(process.popen.pid), signal.SIGKILL)
        process.popen.wait(timeout=30)
        process.name = f"{name} (killed)"
        self.processes[process.name] = process

    def stop(self, timeout: float = 8.0) -> None:
        """End every process group: SIGTERM, then SIGKILL what is left after ``timeout`` seconds."""
        groups = {p.name: _group_ids(p.popen.pid) for p in self.processes.values() if p.popen.poll() is None}
        for ids in groups.values():
            _signal_groups(ids, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(timeout=max(0.1, deadline - time.monotonic()))
        for name, ids in groups.items():
            _signal_groups(ids | _group_ids(self.processes[name].popen.pid), signal.SIGKILL)
        for process in self.processes.values():
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.popen.wait(timeout=10)
            process.log.close()

    def tails(self, chars: int = 3000) -> str:
        """The end of every process's log, for a failure report."""
        return "\n".join(
            f"===== {p.name} ({p.log_path}) =====\n{p.tail(chars)}" for p in self.processes.values()
        )


def wait_until(
    what: str, check: Any, timeout: float, cluster: Cluster | None = None, every: float = 1.0
) -> Any:
    """Poll ``check()`` until it returns something truthy (returned); fail after ``timeout`` seconds.

    With ``cluster``, fail at once when one of its processes exited.
    """
    deadline = time.monotonic() + timeout
    while True:
        if cluster is not None:
            cluster.check_alive()
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)
