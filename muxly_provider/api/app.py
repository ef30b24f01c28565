"""The FastAPI app of Muxly: webhooks and the management API (``/api/v1``), OpenAPI docs at ``/docs``.

Airflow applies no authentication to plugin apps: every route declares its own (signatures for webhooks,
Muxly's auth dependencies for the management API). Management request bodies are bounded by
:class:`~muxly_provider.api.limits.BodySizeLimitMiddleware` before anything parses or authenticates them.
``/ui/static`` serves the built bundle of Muxly's pages in Airflow's UI (public, like Airflow's own assets; see
docs/ui.md).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from muxly_provider import __version__
from muxly_provider.api.errors import install_error_handlers

UI_STATIC_DIR = Path(__file__).resolve().parents[1] / "ui" / "static"
"""The built UI bundle (``muxly-ui.js``, from ``ui/`` by ``make ui``) and the navigation icon."""


def create_app() -> FastAPI:
    """Build Muxly's app (mounted by the plugin under ``/muxly``)."""
    from muxly_provider import settings
    from muxly_provider.api import v1, webhooks
    from muxly_provider.api.limits import BodySizeLimitMiddleware

    app = FastAPI(
        title="Muxly",
        version=__version__,
        description="Muxly's management API and webhook endpoints, inside Airflow's api-server.",
        docs_url="/docs",
        openapi_url="/openapi.json",
        redoc_url=None,
    )
    install_error_handlers(app)
    app.add_middleware(BodySizeLimitMiddleware, limit=settings.api_max_body_bytes)
    app.include_router(webhooks.router)
    app.include_router(v1.build_router(), prefix="/api/v1")
    app.mount("/ui/static", StaticFiles(directory=UI_STATIC_DIR), name="ui_static")
    return app
