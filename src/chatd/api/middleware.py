"""Small pure-ASGI middleware applied to every request."""

from __future__ import annotations

from urllib.parse import unquote_to_bytes

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatd.api.errors import ApiError


class NoSniffMiddleware:
    """``X-Content-Type-Options: nosniff`` on every HTTP response."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [
                    *message.get("headers", []),
                    (b"x-content-type-options", b"nosniff"),
                ]
            await send(message)

        await self.app(scope, receive, send_with_header)


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
