"""``POST /webhooks/{endpoint_path}``: signed webhook deliveries that start job runs (SPEC §2)."""

from __future__ import annotations

from fastapi import APIRouter

router = APIRouter(tags=["webhooks"])
