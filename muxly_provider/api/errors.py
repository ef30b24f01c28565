"""One error format for every Muxly HTTP answer: ``{"error": {"code", "message", "details"}}``.

Handlers raise :class:`MuxlyHTTPError`; the app's exception handlers turn it, request validation errors and
unexpected exceptions into that shape. :class:`~muxly_provider.exceptions.MuxlySecretError` (no or a wrong
``[core] fernet_key``) answers ``503`` naming the setting, and so does
:class:`~muxly_provider.exceptions.MuxlyDatabaseSettingError` (``[muxly] sql_alchemy_conn`` missing where it is
required). An unexpected exception answers 500 with a generic
message (the details go to the log, never to the client).
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from muxly_provider.exceptions import MuxlyConfigError, MuxlyDatabaseSettingError, MuxlySecretError

log = logging.getLogger(__name__)

_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}


class MuxlyHTTPError(Exception):
    """An error answer.

    :param status_code: the HTTP status
    :param code: a stable machine-readable code (``not_found``, ``invalid_signature``, ...)
    :param message: a human sentence without secrets
    :param details: extra structured details (``field``, ``reason``, ...)
    :param headers: extra response headers
    """

    def __init__(
        self,
        status_code: int,
        code: str,
        message: str,
        details: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.code = code
        self.message = message
        self.details = details or {}
        self.headers = headers


def error_body(code: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """The JSON body of an error answer."""
    return {"error": {"code": code, "message": message, "details": details or {}}}


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error of ``app`` in Muxly's format."""

    @app.exception_handler(MuxlyHTTPError)
    async def _muxly_error(_: Request, exc: MuxlyHTTPError) -> JSONResponse:
        return JSONResponse(
            error_body(exc.code, exc.message, exc.details), status_code=exc.status_code, headers=exc.headers
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        # FastAPI's own answers (an unparseable body, an unknown route or method) in Muxly's format.
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        message = exc.detail if isinstance(exc.detail, str) else "the request cannot be served"
        return JSONResponse(
            error_body(code, message[:200]),
            status_code=exc.status_code,
            headers=getattr(exc, "headers", None),
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        field = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
        return JSONResponse(
            error_body(
                "validation_error", "the request is not valid", {"field": field, "reason": first.get("msg")}
            ),
            status_code=422,
        )

    @app.exception_handler(MuxlySecretError)
    async def _secrets_unavailable(_: Request, exc: MuxlySecretError) -> JSONResponse:
        # No (or a wrong) [core] fernet_key: the server's configuration, not the request, is at fault. The
        # message names the setting and never holds a secret.
        return JSONResponse(error_body("secrets_unavailable", str(exc)), status_code=503)

    @app.exception_handler(MuxlyDatabaseSettingError)
    async def _database_setting(_: Request, exc: MuxlyDatabaseSettingError) -> JSONResponse:
        # The deployment's settings are wrong (no shared Muxly database): 503 naming the setting. The full message
        # (which names Airflow's database host) goes to the api-server log only.
        log.error("Muxly API: %s", exc)
        return JSONResponse(
            error_body(
                "database_not_configured",
                "Muxly's database setting cannot work on this deployment: set [muxly] sql_alchemy_conn "
                "(see the api-server log and 'airflow muxly doctor')",
            ),
            status_code=503,
        )

    @app.exception_handler(MuxlyConfigError)
    async def _invalid_stored_row(_: Request, exc: MuxlyConfigError) -> JSONResponse:
        # A stored row a handler needs is not valid (written by hand, or by an older version): the message names
        # the table, the row and the field, never a value.
        return JSONResponse(
            error_body("invalid_stored_row", str(exc), exc.as_dict()),
            status_code=409,
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("Muxly API: unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(
            error_body("internal_error", "internal error; see the api-server log"), status_code=500
        )
