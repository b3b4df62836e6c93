"""The reference error envelope ``{message, detail?, validations?}`` and its handlers.

Every non-2xx answer goes through here: route code raises :class:`ApiError`, and the handlers
below turn FastAPI's and Starlette's own errors into the same shape. Errors nothing handles
become a 500 in :mod:`chatd.api.boundary`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import structlog
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.routing import iter_route_contexts
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import ClientDisconnect
from starlette.routing import compile_path

from chatd.sdk.errors import Response, ValidationError
from chatd.store.usage_limits import UsageLimitExceeded
from chatd.workspace.errors import WorkspaceExists, WorkspaceInputError

log = structlog.get_logger(__name__)

NOT_FOUND = "Resource not found or you do not have access to this resource"
FORBIDDEN_DETAIL = (
    "You don't have permission to view this content. If you believe this is a mistake, "
    "please contact your administrator or try signing in with different credentials."
)


class ApiError(Exception):
    """An answer with the reference envelope. ``extra`` adds top-level fields (usage limits),
    ``headers`` response headers."""

    def __init__(
        self,
        status: int,
        message: str,
        detail: str | None = None,
        validations: list[ValidationError] | None = None,
        extra: dict[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.detail = detail
        self.validations = validations
        self.extra = extra or {}
        self.headers = dict(headers or {})

    def response(self) -> JSONResponse:
        body = Response(
            message=self.message, detail=self.detail, validations=self.validations
        ).model_dump(mode="json")
        body.update(self.extra)
        return JSONResponse(body, status_code=self.status, headers=self.headers or None)


def not_found() -> ApiError:
    return ApiError(404, NOT_FOUND)


def forbidden(message: str = "Forbidden.", detail: str | None = FORBIDDEN_DETAIL) -> ApiError:
    return ApiError(403, message, detail)


def bad_request(message: str, detail: str | None = None) -> ApiError:
    return ApiError(400, message, detail)


def too_many_requests(message: str, retry_after: float, detail: str | None = None) -> ApiError:
    """429 with ``Retry-After`` in whole seconds (at least 1), also said in the detail."""
    seconds = max(1, math.ceil(retry_after))
    return ApiError(
        429,
        message,
        detail or f"Try again in {seconds} seconds.",
        headers={"Retry-After": str(seconds)},
    )


def _field_name(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path", "header")]
    return ".".join(parts) or "body"


async def _api_error(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ApiError)
    return exc.response()


async def _request_validation(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    validations = [
        ValidationError(field=_field_name(tuple(e.get("loc", ()))), detail=str(e.get("msg", "")))
        for e in errors
    ]
    if any(e.get("type") == "json_invalid" for e in errors):
        return ApiError(400, "Request body must be valid JSON.", validations[0].detail).response()
    return ApiError(400, "Validation failed.", validations=validations).response()


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    if exc.status_code == 404:
        return ApiError(404, "Route not found.").response()
    if exc.status_code == 405:
        allow = ", ".join(allowed_methods(request))
        return ApiError(405, "Method not allowed.", headers={"Allow": allow}).response()
    return ApiError(exc.status_code, str(exc.detail), headers=exc.headers).response()


def allowed_methods(request: Request) -> list[str]:
    """Every method some route serves at this path. (The router's own 405 names only the
    methods of the first route whose path matched, and FastAPI makes one route per method.)"""
    path = request.scope["path"]
    methods: set[str] = set()
    for route in iter_route_contexts(request.app.routes):
        if route.path is not None and route.methods and compile_path(route.path)[0].match(path):
            methods |= route.methods
    return sorted(methods)


async def _usage_limit(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, UsageLimitExceeded)
    return ApiError(
        409,
        "Chat usage limit exceeded.",
        extra={
            "spent_micros": exc.spent_micros,
            "limit_micros": exc.limit_micros,
            "resets_at": exc.resets_at.isoformat().replace("+00:00", "Z"),
        },
    ).response()


def workspace_input(exc: WorkspaceInputError) -> ApiError:
    """400 (409 for a name taken) naming the input to change."""
    status = 409 if isinstance(exc, WorkspaceExists) else 400
    message = exc.message[:1].upper() + exc.message[1:]
    if exc.field is None:
        return ApiError(status, message)
    return ApiError(
        status, message, validations=[ValidationError(field=exc.field, detail=exc.message)]
    )


async def _workspace_input(_request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, WorkspaceInputError)
    return workspace_input(exc).response()


async def _client_disconnected(request: Request, _exc: Exception) -> JSONResponse:
    """The client hung up before its request body was read: nothing was changed, and no one
    is left to read the answer, so this is not logged as an error."""
    log.info("client disconnected during its request", path=request.url.path)
    return ApiError(400, "Client disconnected before the request was read.").response()


def install(app: FastAPI) -> None:
    app.add_exception_handler(ApiError, _api_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(StarletteHTTPException, _http_exception)
    app.add_exception_handler(UsageLimitExceeded, _usage_limit)
    app.add_exception_handler(WorkspaceInputError, _workspace_input)
    app.add_exception_handler(ClientDisconnect, _client_disconnected)


ERROR_RESPONSE: dict[str, Any] = {"model": Response}
# Documented on every route: each may answer any of these with the envelope.
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": Response, "description": text}
    for code, text in (
        (400, "Bad request"),
        (401, "Not authenticated"),
        (403, "Forbidden"),
        (404, "Not found"),
        (409, "Conflict"),
        (413, "Payload too large"),
        (429, "Too many requests"),
        (500, "Internal error"),
    )
}
