"""Webhooks as asset events under a real Airflow (``airflow standalone``: api-server, scheduler, dag-processor,
triggerer) on its own AIRFLOW_HOME and DAG folder.

* A signed delivery to a ``webhook_triggers`` row with ``asset_uri`` makes the DAG scheduled on that asset run,
  once per delivery, and its task reads the body from ``triggering_asset_events``.
* A DAG scheduled on ``Asset(..., watchers=[AssetWatcher(..., MuxlyWebhookEventTrigger(...))])`` runs when a
  delivery reaches a sensor-only endpoint (the triggerer runs the event trigger).
"""

from __future__ import annotations

import hashlib
import hmac
import http.client
import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.db_helpers import insert_row as _insert
from tests.integration.live.test_live_airflow import AIRFLOW, Live, _free_port

SECRET = "whsec-live-asset-3d7e"
ASSET = "x-muxly-webhook://live/orders"
WATCHED = "x-muxly-webhook://live/watched"
CONSUMER = "live_asset_consumer"
WATCHER = "live_asset_watcher"

DAG_FILE = '''
"""Test DAGs: one scheduled on a webhook asset, one on an asset watched by Muxly's event trigger."""
import json
from pathlib import Path

from airflow.sdk import DAG, Asset, AssetWatcher, get_current_context, task

from muxly_provider.triggers.webhook import MuxlyWebhookEventTrigger

OUT = Path({out!r})


@task
def consume():
    context = get_current_context()
    extras = [event.extra for events in context["triggering_asset_events"].values() for event in events]
    (OUT / context["run_id"].replace(":", "_")).write_text(json.dumps(extras))
    return extras


with DAG({consumer!r}, schedule=[Asset({asset!r})]):
    consume()

watched = Asset(
    {watched!r},
    watchers=[AssetWatcher(name="muxly_live_watch", trigger=MuxlyWebhookEventTrigger(endpoint_path="live/sensor"))],
)
with DAG({watcher!r}, schedule=[watched]):
    consume()
'''


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    from cryptography.fernet import Fernet

    from muxly_provider.db.engine import build_engine
    from muxly_provider.db.migrate import upgrade

    home = tmp_path_factory.mktemp("live-assets")
    dags, out = home / "dags", home / "out"
    dags.mkdir()
    out.mkdir()
    (dags / "webhook_assets.py").write_text(
        textwrap.dedent(DAG_FILE).format(
            out=str(out), consumer=CONSUMER, asset=ASSET, watched=WATCHED, watcher=WATCHER
        )
    )
    api_port = _free_port()
    fernet = Fernet.generate_key().decode()
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(
        PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        AIRFLOW_HOME=str(home),
        AIRFLOW__CORE__DAGS_FOLDER=str(dags),
        AIRFLOW__CORE__LOAD_EXAMPLES="False",
        AIRFLOW__CORE__EXECUTOR="LocalExecutor",
        AIRFLOW__CORE__FERNET_KEY=fernet,
        AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION="False",
        AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_ALL_ADMINS="True",
        AIRFLOW__CORE__EXECUTION_API_SERVER_URL=f"http://127.0.0.1:{api_port}/execution/",
        AIRFLOW__API__PORT=str(api_port),
        AIRFLOW__API__HOST="127.0.0.1",
        AIRFLOW__API__BASE_URL=f"http://127.0.0.1:{api_port}",
        AIRFLOW__LOGGING__WORKER_LOG_SERVER_PORT=str(_free_port()),
        AIRFLOW__TRIGGERER__TRIGGERER_HEALTH_CHECK_THRESHOLD="60",
        AIRFLOW__DATABASE__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'airflow.db'}",
        AIRFLOW__MUXLY__SQL_ALCHEMY_CONN=f"sqlite:///{home / 'muxly.db'}",
        AIRFLOW__MUXLY__FILES_ROOT=str(home / "files"),
        AIRFLOW__DAG_PROCESSOR__REFRESH_INTERVAL="5",
        AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL="5",
        AIRFLOW__SCHEDULER__SCHEDULER_HEARTBEAT_SEC="2",
    )
    subprocess.run([AIRFLOW, "db", "migrate"], env=env, check=True, capture_output=True, timeout=300)
    engine = build_engine(env["AIRFLOW__MUXLY__SQL_ALCHEMY_CONN"])
    upgrade(env["AIRFLOW__MUXLY__SQL_ALCHEMY_CONN"])
    _seed(engine, fernet)
    log = open(home / "standalone.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(
        [AIRFLOW, "standalone"], env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )
    live = Live(f"http://127.0.0.1:{api_port}", env, engine, api_port, process)
    live.out = out  # type: ignore[attr-defined]
    try:

        def dags_ready() -> bool:
            dags = _get(live, "/api/v2/dags?dag_id_pattern=live_asset")
            return dags is not None and len(dags["dags"]) == 2

        live.wait_for("the api-server and the two asset DAGs", dags_ready, timeout=180)
        yield live
    except BaseException:
        log.flush()
        print((home / "standalone.log").read_text(errors="replace")[-6000:])
        raise
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        engine.dispose()
        log.close()


def _seed(engine: Any, fernet: str) -> None:
    # The secret is encrypted with this Airflow's [core] fernet_key, as muxly_provider.crypto does.
    from muxly_provider.crypto import encrypt_secret

    os.environ["AIRFLOW__CORE__FERNET_KEY"], previous = fernet, os.environ.get("AIRFLOW__CORE__FERNET_KEY")
    try:
        secret = encrypt_secret(SECRET)
    finally:
        if previous is None:
            del os.environ["AIRFLOW__CORE__FERNET_KEY"]
        else:
            os.environ["AIRFLOW__CORE__FERNET_KEY"] = previous
    _insert(
        engine,
        "webhook_triggers",
        id="live_asset",
        endpoint_path="live/asset",
        asset_uri=ASSET,
        secret_key=secret,
    )
    _insert(engine, "webhook_triggers", id="live_sensor", endpoint_path="live/sensor", secret_key=secret)


def _deliver(live: Live, path: str, payload: Any) -> tuple[int, dict[str, Any]]:
    body = json.dumps(payload).encode()
    stamp = str(int(time.time()))
    digest = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    request = urllib.request.Request(
        f"{live.base_url}/muxly/webhooks/{path}",
        method="POST",
        data=body,
        headers={"X-Muxly-Timestamp": stamp, "X-Muxly-Signature": f"sha256={digest}"},
    )
    try:
        with urllib.request.urlopen(request, timeout=60) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _get(live: Live, path: str) -> Any:
    """``GET path`` on Airflow's API with a fresh token; ``None`` while the api-server does not answer in time.

    The machine running the tests may be loaded: a slow answer is retried by the caller's wait, not failed.
    """
    try:
        with urllib.request.urlopen(f"{live.base_url}/auth/token", timeout=30) as response:
            token = json.loads(response.read())["access_token"]
        request = urllib.request.Request(
            f"{live.base_url}{path}", headers={"Authorization": f"Bearer {token}"}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read())
    except (OSError, http.client.HTTPException, ValueError):
        return None


def _runs(live: Live, dag_id: str) -> list[dict[str, Any]] | None:
    answer = _get(live, f"/api/v2/dags/{dag_id}/dagRuns")
    if answer is None:
        return None
    return sorted(answer["dag_runs"], key=lambda run: str(run["run_after"]))


def _finished_runs(live: Live, dag_id: str, count: int, timeout: float = 90) -> list[dict[str, Any]]:
    def done() -> list[dict[str, Any]] | None:
        runs = _runs(live, dag_id)
        if runs is None:
            return None
        finished = [r for r in runs if r["state"] in ("success", "failed")]
        return runs if len(finished) >= count else None

    return live.wait_for(f"{count} finished runs of {dag_id}", done, timeout)  # type: ignore[no-any-return]


def _read_extras(live: Live, run_id: str) -> list[dict[str, Any]]:
    out: Path = live.out  # type: ignore[attr-defined]
    return list(json.loads((out / run_id.replace(":", "_")).read_text()))


def test_a_dag_scheduled_on_a_webhook_asset_runs_once_per_delivery(live: Live) -> None:
    seen: list[str] = []
    for number in (1, 2):
        status, answer = _deliver(live, "live/asset", {"order": number})
        assert status == 202, answer
        runs = _finished_runs(live, CONSUMER, number)
        assert len(runs) == number  # exactly one run per delivery
        run = runs[-1]
        assert run["state"] == "success", run
        assert run["run_type"] == "asset_triggered"
        # The task read the body (and the delivery's ids) from triggering_asset_events.
        [extra] = _read_extras(live, run["dag_run_id"])
        assert extra["payload"] == {"order": number}
        assert extra["muxly_webhook"]["event_id"] == answer["event_id"]
        assert extra["muxly_webhook"]["trigger_id"] == "live_asset"
        # Airflow's own API shows the same event as the run's upstream asset event.
        upstream = f"/api/v2/dags/{CONSUMER}/dagRuns/{run['dag_run_id']}/upstreamAssetEvents"
        events = live.wait_for("the run's upstream asset events", lambda: _get(live, upstream))  # noqa: B023
        assert [e["id"] for e in events["asset_events"]] == [answer["asset_event_id"]]
        assert events["asset_events"][0]["extra"]["payload"] == {"order": number}
        seen.append(run["dag_run_id"])
    assert len(set(seen)) == 2


def test_an_asset_watcher_with_muxly_event_trigger_runs_on_a_delivery(live: Live) -> None:
    status, answer = _deliver(live, "live/sensor", {"ticket": "A-1"})
    assert status == 202, answer
    assert "asset_event_id" not in answer  # a sensor-only row: the triggerer makes the asset event
    [run] = _finished_runs(live, WATCHER, 1, timeout=120)
    assert run["state"] == "success", run
    [extra] = _read_extras(live, run["dag_run_id"])
    # Airflow puts the trigger event in extra["payload"]; Muxly's event carries the body and the delivery's id.
    assert extra["from_trigger"] is True
    assert extra["payload"]["event_id"] == answer["event_id"]
    assert extra["payload"]["body"] == {"ticket": "A-1"}
