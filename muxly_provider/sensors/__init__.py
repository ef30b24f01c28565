"""Muxly's sensors: :class:`MuxlyWebhookSensor` waits, deferred, for a signed webhook delivery."""

from __future__ import annotations

from muxly_provider.sensors.webhook import MuxlyWebhookSensor

__all__ = ["MuxlyWebhookSensor"]
