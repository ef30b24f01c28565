"""Muxly's management API, version 1 (mounted at ``/muxly/api/v1``).

Every route declares its permission with :func:`muxly_provider.auth.dependencies.require` (Airflow applies no
authentication to plugin apps); ``/auth/login`` and ``/auth/refresh`` are the only open routes.
"""

from __future__ import annotations

from fastapi import APIRouter


def build_router() -> APIRouter:
    """The router of every ``/api/v1`` resource."""
    from muxly_provider.api.v1 import (
        auth,
        configuration,
        connectors,
        dead_letters,
        destinations,
        executions,
        job_flow,
        job_preview,
        jobs,
        overview,
        roles,
        routes,
        rule_tester,
        rules,
        settings,
        users,
        webhooks,
    )
    from muxly_provider.api.v1.common import ERROR_RESPONSES

    router = APIRouter()
    for module_router in (
        auth.router,
        connectors.router,
        destinations.router,
        rules.router,
        rule_tester.router,
        routes.router,
        jobs.router,
        job_flow.router,
        job_preview.router,
        overview.router,
        configuration.router,
        executions.router,
        dead_letters.router,
        webhooks.router,
        settings.router,
        users.router,
        roles.roles_router,
        roles.permissions_router,
    ):
        router.include_router(module_router, responses=ERROR_RESPONSES)
    return router
