"""Refusing a request whose URL or headers no route could take, before any route sees it.

The limits sit below the HTTP server's own (uvicorn's httptools parser refuses a URL over
65,535 bytes, see :mod:`chatd.api.http_protocol`), so a client sees the reference envelope:

- a URL (path and query, as sent) over :data:`MAX_URL_BYTES` is a 414;
- headers over :data:`MAX_HEADER_BYTES` in all are a 431;
- a path or query that does not decode to UTF-8 text a database can store (invalid UTF-8, an
  encoded UTF-16 surrogate, a NUL) is a 400.

A WebSocket upgrade that fails these checks is closed with policy violation (1008).
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Receive, Scope, Send

from chatd.api.errors import ApiError

MAX_URL_BYTES = 16 * 1024
MAX_HEADER_BYTES = 64 * 1024


def url_too_long() -> ApiError:
    return ApiError(
        414,
        "Request URL is too long.",
        f"The path and query string may hold at most {MAX_URL_BYTES} bytes.",
    )


def headers_too_large() -> ApiError:
    return ApiError(
        431,
        "Request headers are too large.",
        f"The request headers may hold at most {MAX_HEADER_BYTES} bytes in all.",
    )


def url_problem(scope: Scope) -> ApiError | None:
    """Why the request's URL or headers are refused, or None."""
    raw_path: bytes = scope.get("raw_path") or scope["path"].encode("utf-8", "surrogatepass")
    query: bytes = scope["query_string"]
    if len(raw_path) + len(query) > MAX_URL_BYTES:
        return url_too_long()
    if sum(len(name) + len(value) for name, value in scope["headers"]) > MAX_HEADER_BYTES:
        return headers_too_large()
    for part, raw in (("path", raw_path), ("query string", query)):
        if raw.isascii() and b"%" not in raw and b"\x00" not in raw:
            continue  # plain ASCII: nothing to decode
        try:
            text = unquote_to_bytes(raw).decode("utf-8")
        except UnicodeDecodeError:
            return ApiError(400, "Invalid request.", f"The URL's {part} must be valid UTF-8.")
        if "\x00" in text:
            return ApiError(400, "Invalid request.", "NUL characters are not allowed in the URL.")
    return None


class RequestLimitsMiddleware:
    """Answers :func:`url_problem` for HTTP requests and WebSocket upgrades."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket"):
            problem = url_problem(scope)
            if problem is not None:
                if scope["type"] == "http":
                    await problem.response()(scope, receive, send)
                else:
                    await send({"type": "websocket.close", "code": 1008})
                return
        await self.app(scope, receive, send)
