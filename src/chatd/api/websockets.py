"""Plumbing shared by the WebSocket routes: refusing before the upgrade, and serving.

Refusals (401, 403, 400, 404) are answered as plain HTTP responses with the reference envelope,
through the ASGI WebSocket Denial Response extension (uvicorn supports it); the security
headers middleware adds its headers to them. A server without the extension gets a close with
code 1008 (policy violation) and the message as reason.

Once accepted, a socket runs two tasks: the writer (the route's events) and a reader that
discards client frames and notices the disconnect. Whichever ends first cancels the other.
Dead peers are found by uvicorn's protocol-level pings (``ws_ping_interval`` and
``ws_ping_timeout``, 20 s each by default); the routes add no heartbeat of their own.
"""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

import anyio
import structlog
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketDisconnected

from chatd.api.errors import ApiError

log = structlog.get_logger(__name__)

DENIAL_EXTENSION = "websocket.http.response"
CLOSE_POLICY = 1008
CLOSE_INTERNAL = 1011
CLOSE_TRY_AGAIN = 1013
LAGGED_REASON = "client fell behind; reconnect"
MAX_REASON_BYTES = 123  # a close frame's reason limit


def _reason(text: str) -> str:
    return text.encode()[:MAX_REASON_BYTES].decode(errors="ignore")


async def deny(websocket: WebSocket, error: ApiError) -> None:
    """Refuse the upgrade with the error as an HTTP response (or a 1008 close)."""
    if DENIAL_EXTENSION in websocket.scope.get("extensions", {}):
        await websocket.send_denial_response(error.response())
    else:
        await websocket.close(code=CLOSE_POLICY, reason=_reason(error.message))


async def close_lagged(websocket: WebSocket) -> None:
    """The hub dropped this subscriber: it must reconnect and resync."""
    await websocket.close(code=CLOSE_TRY_AGAIN, reason=LAGGED_REASON)


async def _discard_client_frames(websocket: WebSocket) -> None:
    while (await websocket.receive())["type"] != "websocket.disconnect":
        pass


async def serve(
    websocket: WebSocket,
    writer: Callable[[], Awaitable[None]],
    reader: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Run ``writer`` on an accepted socket until it returns or the client goes away;
    ``reader`` (default: discard) takes the client's frames until the disconnect."""

    async with anyio.create_task_group() as tasks:

        async def write() -> None:
            try:
                await writer()
            except (WebSocketDisconnect, WebSocketDisconnected, OSError):
                pass  # the client went away while we were sending
            except Exception:
                log.exception("websocket writer failed", path=websocket.url.path)
                try:
                    await websocket.close(code=CLOSE_INTERNAL, reason="internal error")
                except Exception:  # noqa: BLE001 - already broken; nothing left to tell
                    pass
            tasks.cancel_scope.cancel()

        async def read() -> None:
            try:
                await (reader or functools.partial(_discard_client_frames, websocket))()
            except (WebSocketDisconnect, WebSocketDisconnected, OSError):
                pass
            except Exception:
                log.exception("websocket reader failed", path=websocket.url.path)
            tasks.cancel_scope.cancel()

        tasks.start_soon(write)
        tasks.start_soon(read)
