"""The outer edge of every request: its id, the headers every answer carries, the last-resort 500.

Each HTTP request and WebSocket gets a request id: the client's ``X-Request-Id`` when it is a
sane token, else a fresh one. It is bound to the log context for the whole request and sent
back as ``X-Request-Id``. An exception no handler took is logged as one line (its type and the
request id; the traceback only at debug level) and answered with the 500 envelope quoting the
id, so a user can report it and an operator can find it. Nothing is re-raised, so the server
(uvicorn) never prints a traceback per request.
"""

from __future__ import annotations

import itertools
import os
import re

import structlog
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatd.api.errors import ApiError
from chatd.logging import REQUEST_ID

log = structlog.get_logger(__name__)

REQUEST_ID_HEADER = "X-Request-Id"
_REQUEST_ID_KEY = REQUEST_ID_HEADER.lower().encode("latin-1")
# Ids that other systems hand out (UUIDs, ULIDs, hex, base64) and that are safe to log.
_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:+/=~-]{1,128}")
INTERNAL_ERROR = "Internal error."
# New ids are 32 hex digits: a random prefix per process, then a counter (a fresh UUID per
# request costs several times more, and ids need to be unique, not secret).
_ID_PREFIX = os.urandom(8).hex()
_ID_COUNTER = itertools.count(1)


def request_id(headers: list[tuple[bytes, bytes]]) -> str:
    """The client's ``X-Request-Id`` when it is sane, else a new id."""
    for name, value in headers:
        if name == _REQUEST_ID_KEY and _SANE_REQUEST_ID.fullmatch(value):
            return value.decode("ascii")
    return f"{_ID_PREFIX}{next(_ID_COUNTER):016x}"


def internal_error(rid: str) -> ApiError:
    return ApiError(500, INTERNAL_ERROR, f"Request ID: {rid}")


class BoundaryMiddleware:
    """Request ids, and a 500 for anything unhandled."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        rid = request_id(scope["headers"])
        id_header = (_REQUEST_ID_KEY, rid.encode("ascii"))
        answered = False

        async def send_with_headers(message: Message) -> None:
            nonlocal answered
            if message["type"] in (
                "http.response.start",
                "websocket.accept",
                "websocket.http.response.start",
            ):
                message["headers"] = [*message.get("headers", []), id_header]
            answered = True
            await send(message)

        token = REQUEST_ID.set(rid)
        try:
            await self.app(scope, receive, send_with_headers)
        except Exception as exc:  # noqa: BLE001 - this is the last handler there is
            log.error(
                "unhandled error",
                error=type(exc).__name__,
                request_id=rid,
                method=scope.get("method", "WEBSOCKET"),
                path=scope["path"][:200],
            )
            log.debug("unhandled error traceback", exc_info=exc)  # request_id from the context
            if answered:
                return  # the answer is under way; the server ends the connection
            if kind == "http":
                await internal_error(rid).response()(scope, receive, send_with_headers)
            else:
                await _close_websocket(send)
        finally:
            REQUEST_ID.reset(token)


async def _close_websocket(send: Send) -> None:
    try:
        await send({"type": "websocket.close", "code": 1011})
    except Exception:  # noqa: BLE001 - the socket is already gone; nothing is left to tell
        return
