"""The compose files parse, and the Celery one carries exactly the settings the live Celery test runs with.

``tests/celery_cluster.py`` renders the shared ``AIRFLOW__*`` settings for given addresses; here they are
rendered with the compose file's host names and compared with every Airflow service's environment, so the
documented deployment cannot drift from the tested one. (Docker is not needed: the files are read as YAML.)
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.celery_cluster import SECRET_SETTINGS, SPEED_SETTINGS, Addresses, deployment_env

ROOT = Path(__file__).resolve().parents[2]
CELERY = ROOT / "docker-compose.celery.yaml"
AIRFLOW_SERVICES = {
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-triggerer",
    "airflow-worker-a",
    "airflow-worker-b",
}
COMPOSE_ADDRESSES = Addresses(
    postgres="airflow:airflow@postgres:5432",
    database="airflow",
    redis="redis:6379",
    redis_db=0,
    api_server="http://airflow-apiserver:8080",
    public_api="http://localhost:8080",
    bucket="muxly",
    s3_endpoint="http://s3:5000",
)


def _interpolate(value: str) -> str:
    """Compose's ``${NAME:-default}`` with no variable set; a bare ``${NAME}`` would be empty: refuse it."""
    bare = re.search(r"\$\{[A-Za-z_][A-Za-z0-9_]*\}", value)
    assert bare is None, f"{bare.group(0) if bare else ''} has no default in {value!r}"
    return re.sub(r"\$\{[A-Za-z_][A-Za-z0-9_]*:-([^}]*)\}", r"\1", value)


def _services(path: Path) -> dict[str, Any]:
    services = yaml.safe_load(path.read_text())["services"]
    assert isinstance(services, dict)
    return services


@pytest.mark.parametrize("name", ["docker-compose.yaml", "docker-compose.celery.yaml"])
def test_compose_files_parse(name: str) -> None:
    services = _services(ROOT / name)
    assert "postgres" in services and "airflow-scheduler" in services


def test_celery_compose_has_the_live_test_settings() -> None:
    services = _services(CELERY)
    assert set(services) == AIRFLOW_SERVICES | {"postgres", "redis", "s3"}
    expected = deployment_env(
        COMPOSE_ADDRESSES, s3_access_key="muxly", s3_secret_key="muxly-secret"
    )  # the compose defaults of MUXLY_S3_ACCESS_KEY_ID / MUXLY_S3_SECRET_ACCESS_KEY
    for name in sorted(AIRFLOW_SERVICES):
        env = {k: _interpolate(str(v)) for k, v in services[name]["environment"].items()}
        for key, value in expected.items():
            assert key in env, f"{name} lacks {key}"
            if key.startswith("AIRFLOW_CONN_"):
                assert json.loads(env[key]) == json.loads(value), (name, key)
            else:
                assert env[key] == value, (name, key)
        for key in SECRET_SETTINGS:
            raw = str(services[name]["environment"][key])
            assert raw.startswith("${") and ":-" in raw, f"{name}: {key} must come from a variable"


def test_celery_compose_shares_no_local_folder_and_runs_two_workers() -> None:
    services = _services(CELERY)
    workers = {n: s for n, s in services.items() if s.get("command", [""])[:2] == ["celery", "worker"]}
    assert set(workers) == {"airflow-worker-a", "airflow-worker-b"}
    hostnames = [w["hostname"] for w in workers.values()]
    assert len(set(hostnames)) == 2
    for name, worker in workers.items():
        assert worker["command"][-2:] == ["--celery-hostname", worker["hostname"]], name
    # Writable mounts: only the provider's source (pip installs it editable) and PostgreSQL's own data.
    writable: dict[str, list[str]] = {}
    for name, service in services.items():
        for volume in service.get("volumes", []):
            source, _target, *mode = str(volume).split(":")
            if mode != ["ro"] and source != "./":
                writable.setdefault(source, []).append(name)
    assert writable == {"postgres-data": ["postgres"]}, writable


def test_live_test_speed_settings_stay_out_of_compose() -> None:
    for name, service in _services(CELERY).items():
        assert not set(SPEED_SETTINGS) & set(service.get("environment", {})), name
