"""Every error the API returns has one shape: `{"error": {"code": "...", "message": "..."}}`.

The core's exceptions map to 4xx/503 here; request validation errors get the same shape (with
the offending location, never the offending value, so a password sent in the wrong shape is
not echoed back). Anything unexpected is caught by `CatchAllMiddleware`: the traceback goes to
the server log, the client gets a generic 500 with no detail.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from influencers.api.availability import database_gate
from influencers.core.errors import (
    AccountNotFound,
    ConfigError,
    DatabaseError,
    DatabaseUnavailable,
    DuplicateAccount,
    InfluencersError,
    InvalidArgument,
    InvalidTransition,
    QuotaExceeded,
    SchemaMissing,
    SecretKeyError,
    TaskNotFound,
)

logger = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
MAX_MESSAGE = 500

#: Core exception -> (HTTP status, error code). Order matters: first match wins.
CORE_ERRORS: tuple[tuple[type[Exception], int, str], ...] = (
    (InvalidArgument, 400, "invalid_argument"),
    (TaskNotFound, 404, "task_not_found"),
    (AccountNotFound, 404, "account_not_found"),
    (InvalidTransition, 409, "invalid_transition"),
    (DuplicateAccount, 409, "duplicate_account"),
    (QuotaExceeded, 409, "quota_exceeded"),
    (DatabaseUnavailable, 503, "database_unavailable"),
    (SchemaMissing, 503, "schema_missing"),
    (SecretKeyError, 503, "server_misconfigured"),
    (ConfigError, 503, "server_misconfigured"),
)
HTTP_CODES = {401: "unauthenticated", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
              413: "payload_too_large", 415: "unsupported_media_type"}


class ApiError(Exception):
    """An error raised by the API layer itself (auth, checks the core does not make)."""

    def __init__(self, status: int, code: str, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.headers = status, code, message, headers


class ApiStartError(InfluencersError):
    """The API server could not start."""


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": _one_line(message)}}, status_code=status, headers=headers)


def _one_line(message: str) -> str:
    text = " ".join(str(message).split())
    return text if len(text) <= MAX_MESSAGE else text[: MAX_MESSAGE - 1] + "…"


def describe_validation(exc: RequestValidationError) -> str:
    """`body.pages: Input should be greater than or equal to 1; …` — locations and reasons only."""
    parts = []
    for error in exc.errors()[:5]:
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "__root__")
        message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    more = len(exc.errors()) - 5
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts) or "the request is not valid"


def install_error_handlers(app: FastAPI) -> None:
    async def on_api_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ApiError)
        return error_response(exc.status, exc.code, exc.message, exc.headers)

    async def on_validation(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, RequestValidationError)
        return error_response(422, "invalid_request", describe_validation(exc))

    async def on_http(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, StarletteHTTPException)
        if exc.status_code == 400:  # FastAPI could not decode the body (not UTF-8): like malformed JSON
            return error_response(422, "invalid_request", "body: not JSON text in UTF-8")
        code = HTTP_CODES.get(exc.status_code, "http_error")
        return error_response(exc.status_code, code, str(exc.detail), getattr(exc, "headers", None))

    async def on_core(request: Request, exc: Exception) -> JSONResponse:
        if isinstance(exc, DatabaseUnavailable):  # ConnectionLost included: one log line per outage
            gate = database_gate(request.app)
            gate.failed(exc)
            return error_response(503, "database_unavailable", str(exc), {"Retry-After": str(gate.retry_after())})
        for kind, status, code in CORE_ERRORS:
            if isinstance(exc, kind):
                if status >= 500:
                    logger.error("%s %s: %s", request.method, request.url.path, exc)
                return error_response(status, code, str(exc))
        if isinstance(exc, DatabaseError):
            raise exc  # unexpected: the catch-all logs the traceback and answers a generic 500
        logger.error("%s %s: %s", request.method, request.url.path, exc)
        return error_response(500, "internal_error", str(exc))

    app.add_exception_handler(ApiError, on_api_error)
    app.add_exception_handler(RequestValidationError, on_validation)
    app.add_exception_handler(StarletteHTTPException, on_http)
    app.add_exception_handler(InfluencersError, on_core)


class _BodyTooLarge(StarletteHTTPException):
    """An HTTPException, so FastAPI's body reader lets it through to `on_http` unchanged."""

    def __init__(self) -> None:
        super().__init__(413, f"the request body exceeds {MAX_BODY_BYTES} bytes")


class CatchAllMiddleware:
    """Last resort: an unhandled exception becomes a logged traceback and a generic JSON 500.

    Starlette's own server-error middleware re-raises after answering, so uvicorn would print a
    second traceback; this one answers and stops there. It also refuses bodies over
    MAX_BODY_BYTES (413) and marks every response `nosniff`.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False
        received = 0

        async def send_wrapper(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message.setdefault("headers", [])
                message["headers"] = [*message["headers"], (b"x-content-type-options", b"nosniff")]
            await send(message)

        async def receive_wrapper() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > MAX_BODY_BYTES:
                    raise _BodyTooLarge()
            return message

        length = dict(scope.get("headers") or []).get(b"content-length", b"0")
        try:
            too_large = int(length) > MAX_BODY_BYTES
        except ValueError:
            too_large = False
        try:
            if too_large:
                raise _BodyTooLarge()
            await self.app(scope, receive_wrapper, send_wrapper)
        except _BodyTooLarge as exc:
            if not started:
                await _send_json(send, 413, "payload_too_large", str(exc.detail))
        except Exception:  # noqa: BLE001 - the last resort must catch everything
            logger.exception("unhandled error in %s %s", scope.get("method"), scope.get("path"))
            if not started:
                await _send_json(send, 500, "internal_error", "internal error; the server log has the details")


async def _send_json(send: Callable[[Message], Awaitable[None]], status: int, code: str, message: str) -> None:
    body = json.dumps({"error": {"code": code, "message": message}}).encode()
    await send({"type": "http.response.start", "status": status, "headers": [
        (b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
        (b"x-content-type-options", b"nosniff"),
    ]})
    await send({"type": "http.response.body", "body": body})


def error_schema_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """`responses=` entries declaring the error shape for the given statuses (for OpenAPI)."""
    from influencers.api.schemas import ErrorResponse

    described = {400: "Bad argument", 401: "Missing or wrong bearer token", 404: "Not found",
                 409: "Conflict with the current state",
                 415: "Not sent as Content-Type: application/json (needed on every POST, even without a body)",
                 422: "The request does not match the schema",
                 503: "Database unavailable or server misconfigured"}
    return {status: {"model": ErrorResponse, "description": described.get(status, "Error")} for status in statuses}
