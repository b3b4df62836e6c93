"""``/chats/{chat}/stream/desktop``: the chat workspace's desktop, raw RFB (VNC) bytes carried
in binary WebSocket frames (api-behaviour §6.16, engine-behaviour §19.2).

Before the upgrade: the chat and its workspace agent are checked (:func:`chat_agent`), the
agent's ``desktop`` stream is opened and its ``ready`` event awaited. A workspace without a
desktop (the agent answers ``unavailable``) is a 400; any other failure to get there a 500.
Then the socket is accepted and bytes are copied both ways until either side ends: the agent
(VNC closed: a normal close), the agent's connection (1011), or the client (the stream is
cancelled on the agent). Text frames from the client are ignored; pings are uvicorn's.
"""

from __future__ import annotations

import anyio
import structlog
from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect, WebSocketDisconnected

from chatd.agent import protocol
from chatd.api.chat_agent import DESKTOP_MESSAGES, socket_agent
from chatd.api.errors import ApiError
from chatd.api.websockets import CLOSE_INTERNAL, deny
from chatd.workspace.agents import CLOSE_NORMAL
from chatd.workspace.conn import (
    AgentError,
    AgentOpError,
    AgentStream,
    AgentStreamEnded,
    AgentUnavailable,
)

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/api/experimental")

# How long the agent may take to start its desktop and report it ready.
READY_TIMEOUT = 30.0
NO_DESKTOP = "Chat workspace has no desktop."
CONNECT_FAILED = "Failed to connect to agent desktop."


@router.websocket("/chats/{chat}/stream/desktop")
async def desktop(websocket: WebSocket, chat: str) -> None:
    found = await socket_agent(websocket, chat, DESKTOP_MESSAGES)
    if found is None:
        return
    row, conn = found
    try:
        async with conn.stream(protocol.DESKTOP, {}) as stream:
            try:
                await _ready(stream, websocket.app.state.desktop_ready_timeout)
            except ApiError as error:
                log.info("desktop refused", chat_id=str(row["id"]), detail=error.detail)
                await deny(websocket, error)
                return
            await websocket.accept()
            await _proxy(websocket, stream)
    except AgentUnavailable as exc:  # the stream could not even be opened
        await deny(websocket, ApiError(500, CONNECT_FAILED, exc.message))


async def _ready(stream: AgentStream, within: float) -> None:
    """Wait for the agent's ``ready`` event; raises :class:`ApiError`."""
    try:
        with anyio.fail_after(within):
            first = await stream.receive()
    except AgentOpError as exc:
        if exc.code == protocol.UNAVAILABLE:
            raise ApiError(400, NO_DESKTOP, exc.message) from None
        raise ApiError(500, CONNECT_FAILED, exc.message) from None
    except AgentError as exc:
        raise ApiError(500, CONNECT_FAILED, exc.message) from None
    except AgentStreamEnded:
        raise ApiError(500, CONNECT_FAILED, "the agent ended the desktop stream") from None
    except TimeoutError:
        detail = f"the agent's desktop was not ready within {within:g} s"
        raise ApiError(500, CONNECT_FAILED, detail) from None
    if not isinstance(first, dict) or first.get("ready") is not True:
        raise ApiError(500, CONNECT_FAILED, "the agent did not report its desktop ready")


async def _proxy(websocket: WebSocket, stream: AgentStream) -> None:
    """Copy bytes both ways until one side ends; then close the client's socket if it is
    still there."""
    close: tuple[int, str] | None = None
    async with anyio.create_task_group() as tasks:

        async def to_client() -> None:
            nonlocal close
            try:
                while True:
                    item = await stream.receive()
                    if isinstance(item, bytes):
                        await websocket.send_bytes(item)
            except AgentStreamEnded:
                close = (CLOSE_NORMAL, "")
            except AgentError as exc:
                log.info("desktop stream ended", reason=exc.message)
                close = (CLOSE_INTERNAL, "the workspace agent went away")
            except (WebSocketDisconnect, WebSocketDisconnected, OSError):
                pass  # the client went away while we were sending
            tasks.cancel_scope.cancel()

        async def to_agent() -> None:
            nonlocal close
            try:
                while True:
                    message = await websocket.receive()
                    if message["type"] == "websocket.disconnect":
                        break
                    data = message.get("bytes")
                    if data:  # text frames are not RFB; an empty frame carries nothing
                        await stream.send_data(data)
            except AgentError:
                close = (CLOSE_INTERNAL, "the workspace agent went away")
            except (WebSocketDisconnect, WebSocketDisconnected, OSError):
                pass
            tasks.cancel_scope.cancel()

        tasks.start_soon(to_client)
        tasks.start_soon(to_agent)
    if close is not None:
        try:
            await websocket.close(code=close[0], reason=close[1])
        except (WebSocketDisconnect, WebSocketDisconnected, RuntimeError, OSError):
            pass  # the client left meanwhile
