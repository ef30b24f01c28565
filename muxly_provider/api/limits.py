"""Input limits of Muxly's HTTP surface: body size and JSON nesting depth.

:class:`BodySizeLimitMiddleware` is an ASGI middleware that bounds the request bodies of the management API
(``/api/v1``).

The body is read from the ASGI stream here, before FastAPI parses it and before any route dependency (and so
any authentication) runs: a ``Content-Length`` over the limit is answered ``413`` at once without reading a
byte, and a body without one (chunked) is counted while it arrives and refused as soon as it passes the limit.
A body within the limit is handed to the app unchanged. The limit is ``[muxly] api_max_body_bytes`` (default
1 MiB); webhooks have their own (``[muxly] webhook_max_body_bytes``) and are not affected.

JSON nested deeper than :data:`MAX_JSON_DEPTH` levels is refused with ``422`` (management API and webhooks):
Python's parser, ``copy.deepcopy`` and the encoders recurse once per level, so a body of a few kilobytes
could otherwise exhaust the stack. :func:`json_too_deep` measures the depth on the raw bytes in linear time,
before anything parses them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from muxly_provider.api.errors import error_body

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


MAX_JSON_DEPTH = 64
"""The deepest nesting of JSON arrays and objects accepted in a request body (a fixed limit)."""

# An unescaped double quote: not preceded by a backslash, after an even run of backslashes. The lookbehind
# and the possessive run keep the search linear even on long runs of backslashes.
_QUOTE = re.compile(rb'(?<!\\)(?:\\\\)*+"')
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")
_OPENING = frozenset(b"[{")


def json_too_deep(body: bytes, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether the JSON text ``body`` nests arrays and objects more than ``limit`` levels deep.

    Brackets inside strings are ignored. ``body`` need not be valid JSON (then the parser reports it).
    """
    outside = b"".join(_QUOTE.split(body)[0::2])  # the text between strings
    depth = 0
    for byte in outside.translate(None, _NOT_BRACKETS):
        depth = depth + 1 if byte in _OPENING else depth - 1
        if depth > limit:
            return True
    return False


class BodyTooLarge(Exception):
    """The body passed the limit (internal to the middleware)."""


class BodySizeLimitMiddleware:
    """Answer ``413`` in Muxly's error format to bodies over the limit on paths under ``prefix``.

    :param app: the wrapped ASGI app
    :param limit: returns the limit in bytes (read per request, so a configuration change applies)
    :param prefix: the paths guarded (relative to the app's root path)
    """

    def __init__(self, app: ASGIApp, *, limit: Callable[[], int], prefix: str = "/api/v1/") -> None:
        self.app = app
        self.limit = limit
        self.prefix = prefix

    def _guarded(self, scope: Scope) -> bool:
        path = str(scope.get("path", ""))
        root = str(scope.get("root_path", ""))
        if root and path.startswith(root):
            path = path[len(root) :]
        return path.startswith(self.prefix)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._guarded(scope):
            await self.app(scope, receive, send)
            return
        limit = self.limit()
        declared = _content_length(scope)
        if declared is not None and declared > limit:
            await _too_large(send, limit)
            return
        try:
            messages = await _read(receive, limit)
        except BodyTooLarge:
            await _too_large(send, limit)
            return
        if messages is None:  # the client went away while sending
            return
        if json_too_deep(messages[0]["body"]):
            await _refuse(
                send,
                422,
                error_body(
                    "validation_error",
                    f"the JSON body is nested more than {MAX_JSON_DEPTH} levels deep",
                    {"field": "body", "reason": f"at most {MAX_JSON_DEPTH} levels of arrays and objects"},
                ),
            )
            return
        pending = list(messages)

        async def replay() -> Message:
            if pending:
                return pending.pop(0)
            return await receive()

        await self.app(scope, replay, send)


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers") or ():
        if name.lower() == b"content-length":
            text = value.decode("latin-1").strip()
            return int(text) if text.isdigit() else None
    return None


async def _read(receive: Receive, limit: int) -> list[Message] | None:
    """The body messages (merged into one), or ``None`` on a disconnect.

    :raises BodyTooLarge: as soon as more than ``limit`` bytes arrived
    """
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        if message["type"] != "http.request":
            continue
        chunk = message.get("body") or b""
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return [{"type": "http.request", "body": b"".join(chunks), "more_body": False}]


async def _too_large(send: Send, limit: int) -> None:
    await _refuse(
        send,
        413,
        error_body("payload_too_large", f"the request body is over {limit} bytes", {"limit": limit}),
    )


async def _refuse(send: Send, status: int, answer: dict[str, Any]) -> None:
    body = json.dumps(answer).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
