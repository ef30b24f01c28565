"""Webhook events and the triggers that wait for them, on a real database (SQLite and PostgreSQL).

Deliveries go through Muxly's real FastAPI app (signed); triggers run their real ``run()`` loop under
``asyncio.run``, polling the real ``webhook_events`` table.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, text

from tests.db_helpers import insert_row as _insert

SECRET = "whsec-sensor-91c4"


@pytest.fixture
def client(muxly_engine: Engine) -> Iterator[Any]:
    """Muxly's app with two sensor-only endpoints (no job): ``signed/orders`` (with a secret) and ``open``."""
    from fastapi.testclient import TestClient

    from muxly_provider.api.app import create_app
    from muxly_provider.crypto import encrypt_secret

    _insert(
        muxly_engine,
        "webhook_triggers",
        id="s1",
        endpoint_path="signed/orders",
        secret_key=encrypt_secret(SECRET),
    )
    _insert(muxly_engine, "webhook_triggers", id="s2", endpoint_path="open")
    _insert(muxly_engine, "webhook_triggers", id="s3", endpoint_path="off", enabled=False)
    with TestClient(create_app()) as test_client:
        yield test_client


def _signed(body: bytes, ts: int | None = None) -> dict[str, str]:
    stamp = str(ts if ts is not None else int(time.time()))
    digest = hmac.new(SECRET.encode(), stamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Muxly-Timestamp": stamp, "X-Muxly-Signature": f"sha256={digest}"}


def _deliver(client: Any, payload: Any, path: str = "signed/orders") -> str:
    body = json.dumps(payload).encode()
    headers = _signed(body) if path == "signed/orders" else {}
    response = client.post(f"/webhooks/{path}", content=body, headers=headers)
    assert response.status_code == 202, response.text
    answer = response.json()
    assert set(answer) == {"event_id"}  # no job: nothing started
    return str(answer["event_id"])


def _events(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [
            dict(r)
            for r in conn.execute(text("SELECT * FROM webhook_events ORDER BY received_at")).mappings()
        ]


def _claims(engine: Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r) for r in conn.execute(text("SELECT * FROM webhook_event_claims")).mappings()]


def _trigger(endpoint: str = "signed/orders", condition: str | None = None, **kwargs: Any) -> Any:
    from muxly_provider.triggers.webhook import MuxlyWebhookTrigger
    from muxly_provider.webhook_events import utcnow

    now = utcnow()
    values: dict[str, Any] = {
        "since": (now - timedelta(seconds=300)).isoformat(),
        "deadline": (now + timedelta(seconds=15)).isoformat(),
        "poll_interval": 0.1,
        **kwargs,
    }
    return MuxlyWebhookTrigger(endpoint_path=endpoint, condition=condition, **values)


async def _first_event(trigger: Any) -> dict[str, Any]:
    async for event in trigger.run():
        return dict(event.payload)
    raise AssertionError("the trigger ended without an event")


def _later(seconds: float, action: Any) -> threading.Thread:
    def run() -> None:
        time.sleep(seconds)
        action()

    thread = threading.Thread(target=run)
    thread.start()
    return thread


def test_a_signed_delivery_is_stored_and_releases_a_waiting_trigger(
    client: Any, muxly_engine: Engine
) -> None:
    delivered: list[str] = []
    thread = _later(0.5, lambda: delivered.append(_deliver(client, {"order": 7, "status": "paid"})))
    started = time.monotonic()
    event = asyncio.run(_first_event(_trigger()))
    thread.join()

    assert time.monotonic() - started < 5
    assert event["status"] == "delivered"
    assert event["event_id"] == delivered[0]
    assert event["body"] == {"order": 7, "status": "paid"}
    assert event["endpoint_path"] == "signed/orders"
    [stored] = _events(muxly_engine)
    assert stored["trigger_id"] == "s1" and stored["run_id"] is None
    assert stored["replay_key"].startswith("muxly:")
    [claim] = _claims(muxly_engine)
    assert claim["event_id"] == delivered[0] and claim["consumer_key"].startswith("sensor:")


def test_sensor_endpoint_keeps_the_guarantees_of_the_run_endpoint(client: Any, muxly_engine: Engine) -> None:
    body = b'{"a": 1}'
    headers = _signed(body)
    assert client.post("/webhooks/signed/orders", content=body, headers=headers).status_code == 202
    replay = client.post("/webhooks/signed/orders", content=body, headers=headers)
    assert replay.status_code == 401 and replay.json()["error"]["code"] == "replayed_delivery"
    for path, headers, payload, status in [
        ("signed/orders", {}, body, 401),
        ("signed/orders", _signed(body, ts=int(time.time()) - 301), body, 401),
        ("signed/orders", _signed(b"{bad"), b"{bad", 422),
        ("off", {}, body, 404),
        ("nowhere", {}, body, 404),
    ]:
        response = client.post(f"/webhooks/{path}", content=payload, headers=headers)
        assert response.status_code == status, (path, response.text)
        assert SECRET not in response.text
    assert len(_events(muxly_engine)) == 1  # the replay and the refusals stored nothing


def test_condition_picks_the_matching_delivery(client: Any, muxly_engine: Engine) -> None:
    skipped = _deliver(client, {"status": "pending", "amount": 5000})
    wanted = _deliver(client, {"status": "paid", "amount": 2000})
    _deliver(client, {"status": "paid", "amount": 10})

    event = asyncio.run(_first_event(_trigger(condition="status == 'paid' AND amount > 1000")))

    assert event["event_id"] == wanted
    assert [c["event_id"] for c in _claims(muxly_engine)] == [wanted]
    assert skipped != wanted


async def _race(triggers: list[Any], wait: float) -> list[dict[str, Any] | None]:
    tasks = [asyncio.create_task(_first_event(t)) for t in triggers]
    done, pending = await asyncio.wait(tasks, timeout=wait)
    for task in pending:
        task.cancel()
    return [t.result() if t in done else None for t in tasks]


def test_one_delivery_releases_exactly_one_of_two_sensors_with_the_same_condition(
    client: Any, muxly_engine: Engine
) -> None:
    thread = _later(0.3, lambda: _deliver(client, {"n": 1}))
    results = asyncio.run(_race([_trigger(condition="n == 1"), _trigger(condition="n==1")], wait=4.0))
    thread.join()

    assert sum(r is not None for r in results) == 1  # `n==1` and `n == 1` are the same condition
    assert len(_claims(muxly_engine)) == 1


def test_sensors_with_different_conditions_may_share_a_delivery(client: Any, muxly_engine: Engine) -> None:
    thread = _later(0.3, lambda: _deliver(client, {"n": 1, "kind": "a"}))
    results = asyncio.run(_race([_trigger(condition="n == 1"), _trigger(condition="kind == 'a'")], wait=8.0))
    thread.join()

    assert all(r is not None for r in results)
    assert results[0]["event_id"] == results[1]["event_id"]  # type: ignore[index]
    assert len(_claims(muxly_engine)) == 2


def test_many_sensors_racing_for_few_deliveries_each_get_one(client: Any, muxly_engine: Engine) -> None:
    """Six waiting sensors, three deliveries: exactly three are released, each with a different delivery."""

    def deliver_three() -> None:
        for n in range(3):
            _deliver(client, {"n": n})

    thread = _later(0.3, deliver_three)
    results = asyncio.run(_race([_trigger() for _ in range(6)], wait=5.0))
    thread.join()

    released = [r["event_id"] for r in results if r is not None]
    assert len(released) == 3 and len(set(released)) == 3
    assert sorted(c["event_id"] for c in _claims(muxly_engine)) == sorted(released)


def _backdate(engine: Engine, event_id: str, seconds: int) -> None:
    from sqlalchemy import update

    from muxly_provider.webhook_events import EVENTS, utcnow

    with engine.begin() as conn:
        moved = utcnow() - timedelta(seconds=seconds)
        conn.execute(update(EVENTS).where(EVENTS.c.id == event_id).values(received_at=moved))


def test_a_delivery_just_before_the_wait_is_picked_up_within_the_lookback(
    client: Any, muxly_engine: Engine
) -> None:
    from muxly_provider.webhook_events import utcnow

    early = _deliver(client, {"early": True})
    _backdate(muxly_engine, early, 100)
    now = utcnow()

    # Window of 50 s: the delivery 100 s ago is outside it; the trigger times out.
    outside = _trigger(
        since=(now - timedelta(seconds=50)).isoformat(), deadline=(now + timedelta(seconds=1)).isoformat()
    )
    assert asyncio.run(_first_event(outside))["status"] == "timeout"
    # Window of 300 s (the default lookback): it is picked up at once.
    event = asyncio.run(_first_event(_trigger(since=(now - timedelta(seconds=300)).isoformat())))
    assert event["event_id"] == early and event["body"] == {"early": True}


def test_lookback_setting_and_the_sensor_window(
    client: Any, muxly_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from muxly_provider.webhook_events import lookback_seconds

    assert lookback_seconds() == 300
    monkeypatch.setenv("AIRFLOW__MUXLY__WEBHOOK_SENSOR_LOOKBACK_SECONDS", "20")
    assert lookback_seconds() == 20
    monkeypatch.setenv("AIRFLOW__MUXLY__WEBHOOK_SENSOR_LOOKBACK_SECONDS", "soon")
    assert lookback_seconds() == 300


def test_non_object_bodies_match_only_conditions_true_for_an_empty_object(
    client: Any, muxly_engine: Engine
) -> None:
    _deliver(client, [1, 2, 3], path="open")
    any_body = asyncio.run(_first_event(_trigger("open")))
    assert any_body["body"] == [1, 2, 3]
    _deliver(client, [4], path="open")
    now = time.time()
    timed_out = asyncio.run(_first_event(_trigger("open", condition="EXISTS n", deadline=_iso_in(1.0))))
    assert timed_out["status"] == "timeout" and time.time() - now >= 0.9


def _iso_in(seconds: float) -> str:
    from muxly_provider.webhook_events import utcnow

    return (utcnow() + timedelta(seconds=seconds)).isoformat()


def test_retention_prunes_old_events_and_their_claims(
    client: Any, muxly_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from muxly_provider.webhook_events import prune, reset_prune_clock

    old = _deliver(client, {"old": True})
    asyncio.run(_first_event(_trigger()))  # claims it
    _backdate(muxly_engine, old, 7200)
    monkeypatch.setenv("AIRFLOW__MUXLY__WEBHOOK_EVENT_RETENTION_SECONDS", "3600")
    reset_prune_clock()
    fresh = _deliver(client, {"fresh": True})  # storing a delivery prunes (at most once a minute)

    assert [e["id"] for e in _events(muxly_engine)] == [fresh]
    assert _claims(muxly_engine) == []
    assert prune(muxly_engine) == 0


def test_event_trigger_fires_once_per_delivery_also_after_a_restart(
    client: Any, muxly_engine: Engine
) -> None:
    from muxly_provider.triggers.webhook import MuxlyWebhookEventTrigger

    first = _deliver(client, {"n": 1})
    _deliver(client, {"n": 2, "skip": True})

    async def collect(count: int, wait: float) -> list[dict[str, Any]]:
        trigger = MuxlyWebhookEventTrigger(
            endpoint_path="signed/orders", condition="NOT EXISTS skip", poll_interval=0.1
        )
        seen: list[dict[str, Any]] = []

        async def consume() -> None:
            async for event in trigger.run():
                seen.append(dict(event.payload))
                if len(seen) == count:
                    return

        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(consume(), timeout=wait)
        return seen

    thread = _later(0.5, lambda: _deliver(client, {"n": 3}))
    events = asyncio.run(collect(2, wait=5.0))
    thread.join()
    assert [e["body"]["n"] for e in events] == [1, 3]
    assert events[0]["event_id"] == first
    # A new instance (a triggerer restart) does not fire the same deliveries again.
    assert asyncio.run(collect(1, wait=1.0)) == []
    # The sensor family consumes independently of the event trigger.
    assert asyncio.run(_first_event(_trigger()))["event_id"] == first


def test_event_trigger_hash_is_stable_and_serialization_round_trips() -> None:
    from airflow.triggers.base import BaseEventTrigger

    from muxly_provider.triggers.webhook import MuxlyWebhookEventTrigger, MuxlyWebhookTrigger

    trigger = MuxlyWebhookEventTrigger(endpoint_path="orders", condition="a == 1")
    classpath, kwargs = trigger.serialize()
    assert classpath == "muxly_provider.triggers.webhook.MuxlyWebhookEventTrigger"
    again = MuxlyWebhookEventTrigger(**kwargs)
    assert BaseEventTrigger.hash(classpath, kwargs) == BaseEventTrigger.hash(*again.serialize())
    sensor_trigger = _trigger("orders", "a == 1")
    path, sensor_kwargs = sensor_trigger.serialize()
    assert path == "muxly_provider.triggers.webhook.MuxlyWebhookTrigger"
    assert MuxlyWebhookTrigger(**sensor_kwargs).serialize() == (path, sensor_kwargs)
    json.dumps(sensor_kwargs)


def test_a_condition_that_does_not_compile_fails_the_trigger_with_its_position(muxly_engine: Engine) -> None:
    from muxly_provider.exceptions import MuxlyConditionError

    with pytest.raises(MuxlyConditionError, match="position"):
        asyncio.run(_first_event(_trigger(condition="status == ")))


def test_a_sensor_takes_a_delivery_already_waiting_without_deferring(
    client: Any, muxly_engine: Engine
) -> None:
    """No deferral when the delivery is there: out of reach of Airflow's resume-after-defer race."""
    from muxly_provider.sensors import MuxlyWebhookSensor

    class TI:
        dag_id, run_id, task_id, map_index = "d", "r1", "wait", -1
        pushed: dict[str, Any] = {}  # noqa: RUF012 - one TI per test

        def xcom_push(self, key: str, value: Any) -> None:
            self.pushed[key] = value

    other = _deliver(client, {"n": 1})
    wanted = _deliver(client, {"n": 2})
    ti = TI()
    sensor = MuxlyWebhookSensor(task_id="wait", endpoint_path="signed/orders", condition="n == 2")
    assert sensor.execute({"ti": ti}) == {"n": 2}  # returned, not deferred (TaskDeferred would raise)
    assert ti.pushed["webhook_event"]["event_id"] == wanted
    [claim] = _claims(muxly_engine)
    assert claim["event_id"] == wanted and claim["claimed_by"] == "d/r1/wait/-1"
    assert other not in {c["event_id"] for c in _claims(muxly_engine)}


def test_a_task_instance_running_again_gets_back_the_delivery_it_claimed(
    client: Any, muxly_engine: Engine
) -> None:
    """A retry after Airflow failed the resumed try (its trigger had already claimed) loses nothing."""
    first = _deliver(client, {"n": 1})
    event = asyncio.run(_first_event(_trigger(claimed_by="d/r/wait/-1")))
    assert event["event_id"] == first

    second = _deliver(client, {"n": 2})
    again = asyncio.run(_first_event(_trigger(claimed_by="d/r/wait/-1")))
    assert again["event_id"] == first and again["body"] == {"n": 1}  # its own claim, not the new delivery
    elsewhere = asyncio.run(_first_event(_trigger(claimed_by="d/r2/wait/-1")))
    assert elsewhere["event_id"] == second  # another task instance never gets someone else's claim
    assert len(_claims(muxly_engine)) == 2
