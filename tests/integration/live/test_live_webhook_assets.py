"""Webhooks as asset events under a real Airflow (``airflow standalone``: api-server, scheduler, dag-processor,
triggerer) on its own AIRFLOW_HOME and DAG folder.

* A signed delivery to a ``webhook_triggers`` row with ``asset_uri`` makes the DAG scheduled on that asset run,
  once per delivery, and its task reads the body from ``triggering_asset_events``.
* A DAG scheduled on ``Asset(..., watchers=[AssetWatcher(..., MuxlyWebhookEventTrigger(...))])`` runs when a
  delivery reaches a sensor-only endpoint (the triggerer runs the event trigger).
"""

from __future__ import annotations

import json
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.db_helpers import insert_row as _insert
from tests.integration.live.test_live_airflow import Live
from tests.integration.live.webhook_live import api_call, deliver, encrypt_with, standalone

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
    home = tmp_path_factory.mktemp("live-assets")
    source = textwrap.dedent(DAG_FILE).format(
        out=str(home / "out"), consumer=CONSUMER, asset=ASSET, watched=WATCHED, watcher=WATCHER
    )

    def dags_ready(live: Live) -> bool:
        dags = _get(live, "/api/v2/dags?dag_id_pattern=live_asset")
        return dags is not None and len(dags["dags"]) == 2

    with standalone(
        home, {"webhook_assets.py": source}, _seed, dags_ready, "the api-server and the two asset DAGs", 180
    ) as live:
        yield live


def _seed(engine: Any, fernet: str) -> None:
    # The secret is encrypted with this Airflow's [core] fernet_key, as muxly_provider.crypto does.
    secret = encrypt_with(fernet, SECRET)
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
    return deliver(live.base_url, SECRET, path, payload)


def _get(live: Live, path: str) -> Any:
    """``GET path`` on Airflow's API with a fresh token; ``None`` while the api-server does not answer in time.

    The machine running the tests may be loaded: a slow answer is retried by the caller's wait, not failed.
    """
    return api_call(live.base_url, "GET", path)


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
