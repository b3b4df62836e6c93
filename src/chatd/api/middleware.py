"""Small pure-ASGI middleware applied to every request: security headers, NUL refusal."""

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


class RejectNulMiddleware:
    """A NUL character in the path or query can never be stored (PostgreSQL text): 400."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] in ("http", "websocket") and (
            "\x00" in scope["path"] or b"\x00" in unquote_to_bytes(scope["query_string"])
        ):
            if scope["type"] == "http":
                response = ApiError(
                    400, "Invalid request.", "NUL characters are not allowed in the URL."
                ).response()
                await response(scope, receive, send)
                return
            await send({"type": "websocket.close", "code": 1008})
            return
        await self.app(scope, receive, send)
