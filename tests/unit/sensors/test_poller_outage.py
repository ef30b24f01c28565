"""A waiting webhook trigger rides out a passing database problem instead of failing its task."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from muxly_provider.triggers import webhook
from muxly_provider.triggers.webhook import WebhookEventPoller


class _Flaky(WebhookEventPoller):
    def __init__(self, failures: int, result: Any) -> None:
        super().__init__("orders", None, datetime(2026, 1, 1), kind="sensor")
        self.failures = failures
        self.result = result
        self.calls = 0

    def poll_once(self) -> Any:
        self.calls += 1
        if self.calls <= self.failures:
            raise OperationalError("SELECT ...", {}, Exception("server closed the connection unexpectedly"))
        return self.result


def test_a_few_failed_polls_are_retried() -> None:
    poller = _Flaky(failures=3, result="the delivery")
    assert asyncio.run(poller.next_delivery(0.0)) == "the delivery"
    assert poller.calls == 4


def test_a_lasting_outage_fails_with_its_cause(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webhook, "MAX_POLL_FAILURES", 3)
    poller = _Flaky(failures=100, result="never")
    with pytest.raises(OperationalError, match="server closed the connection"):
        asyncio.run(poller.next_delivery(0.0))
    assert poller.calls == 3
