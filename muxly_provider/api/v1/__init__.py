"""Muxly's management API, version 1 (mounted at ``/muxly/api/v1``)."""

from __future__ import annotations

from fastapi import APIRouter


def build_router() -> APIRouter:
    """The router of every ``/api/v1`` resource."""
    return APIRouter()
