"""A lazy ASGI wrapper: the plugin can be imported by every Airflow process without building the app.

Only the api-server ever calls it; the FastAPI app is built on the first request (or lifespan event).
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class LazyMuxlyApp:
    """Build :func:`muxly_provider.api.app.create_app` once, on first use."""

    def __init__(self) -> None:
        self._app: Any = None
        self._lock = threading.Lock()

    @property
    def app(self) -> Any:
        """The real FastAPI app."""
        if self._app is None:
            with self._lock:
                if self._app is None:
                    from muxly_provider.api.app import create_app

                    self._app = create_app()
        return self._app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
