"""Small pure-ASGI middleware applied to every request: security headers, and the refusal of
a request whose URL or headers no route could take, before any route sees it.

The request limits sit below the HTTP server's own (uvicorn's httptools parser refuses a URL
over 65,535 bytes, see :mod:`chatd.api.http_protocol`), so a client sees the reference envelope:

- a URL (path and query, as sent) over :data:`MAX_URL_BYTES` is a 414;
- headers over :data:`MAX_HEADER_BYTES` in all are a 431;
- a path or query that does not decode to UTF-8 text a database can store (invalid UTF-8, an
  encoded UTF-16 surrogate, a NUL) is a 400.

A WebSocket upgrade that fails these checks is closed with policy violation (1008).
"""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatd.api.errors import ApiError

# Every answer, unless the route set the header itself (the docs page sets its own CSP, file
# downloads their own caching). Nothing of chatd's may be framed; answers are data, not
# documents, so they may load nothing; URLs (chat ids, a WebSocket's query token) never leave
# in a Referer; answers carry tokens and private chats, so no cache keeps them.
SECURITY_HEADERS: tuple[tuple[bytes, bytes], ...] = (
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"content-security-policy", b"default-src 'none'; frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
    (b"cache-control", b"no-store"),
)
_RESPONSE_STARTS = ("http.response.start", "websocket.http.response.start")


class SecurityHeadersMiddleware:
    """The :data:`SECURITY_HEADERS` on every HTTP answer and every refused WebSocket upgrade."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] in _RESPONSE_STARTS:
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(n, v) for n, v in SECURITY_HEADERS if n not in present]
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, send_with_headers)


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
