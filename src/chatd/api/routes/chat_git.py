"""``GET /chats/{chat}/stream/git``: the chat's workspace git state, live (api-behaviour §6.17).

After the reference's checks (:mod:`chatd.api.chat_agent`), the socket gets a ``changes``
message holding every repository at once, then each message the workspace's agent sends
(only the repositories that changed), and a fresh full message whenever the client sends
``{"type": "refresh"}`` or fell behind. Text frames, one JSON object each. The socket closes
when the workspace's agent disconnects.
"""

from __future__ import annotations

import datetime as dt
import json

import anyio
import structlog
from fastapi import APIRouter, WebSocket
from pydantic import ValidationError

from chatd.agent import protocol
from chatd.api.chat_agent import GIT_MESSAGES, socket_agent
from chatd.api.errors import ApiError
from chatd.api.websockets import CLOSE_TRY_AGAIN, deny, serve
from chatd.sdk.git import (
    WorkspaceAgentGitClientMessage,
    WorkspaceAgentGitServerMessage,
    WorkspaceAgentGitServerMessageType,
)
from chatd.workspace.conn import AgentConn, AgentError
from chatd.workspace.git_states import Signal, parse_message
from chatd.workspace.service import Workspaces

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/api/experimental")

SCAN_TIMEOUT = 60.0
WATCH_FAILED = "Internal error watching agent's git state."
AGENT_GONE = "the workspace agent disconnected"


async def scan(conn: AgentConn) -> WorkspaceAgentGitServerMessage:
    """Every repository's state now; raises :class:`AgentError` or :class:`ValueError`."""
    with anyio.fail_after(SCAN_TIMEOUT):
        return parse_message(await conn.call(protocol.GIT_SCAN, {}))


def _error(message: str) -> str:
    return WorkspaceAgentGitServerMessage(
        type=WorkspaceAgentGitServerMessageType.error,
        message=message,
        scanned_at=dt.datetime.now(dt.UTC),
    ).model_dump_json(exclude_none=True)


@router.websocket("/chats/{chat}/stream/git")
async def stream_git(websocket: WebSocket, chat: str) -> None:
    workspaces: Workspaces = websocket.app.state.workspaces
    found = await socket_agent(websocket, chat, GIT_MESSAGES)
    if found is None:
        return
    _row, conn = found
    with workspaces.git.subscribe(conn.workspace_id) as subscriber:
        try:
            first = await scan(conn)
        except (AgentError, ValueError, TimeoutError) as exc:
            log.warning("git scan failed", workspace_id=str(conn.workspace_id), error=str(exc))
            await deny(websocket, ApiError(500, WATCH_FAILED, str(exc)))
            return
        await websocket.accept()
        send_lock = anyio.Lock()

        async def send(message: WorkspaceAgentGitServerMessage) -> None:
            async with send_lock:
                await websocket.send_text(message.model_dump_json(exclude_none=True))

        async def rescan() -> None:
            try:
                await send(await scan(workspaces.agents.get(conn.workspace_id) or conn))
            except (AgentError, ValueError, TimeoutError) as exc:
                async with send_lock:
                    await websocket.send_text(_error(f"git scan failed: {exc}"))

        async def write() -> None:
            await send(first)
            while (item := await subscriber.queue.get()) is not Signal.ended:
                if item is Signal.lagged:
                    await rescan()
                else:
                    await send(item)
            await websocket.close(code=CLOSE_TRY_AGAIN, reason=AGENT_GONE)

        async def read() -> None:
            while True:
                message = await websocket.receive()
                if message["type"] == "websocket.disconnect":
                    return
                text = message.get("text")
                try:
                    WorkspaceAgentGitClientMessage.model_validate(json.loads(text or ""))
                except (ValueError, ValidationError):
                    async with send_lock:
                        await websocket.send_text(
                            _error('unknown client message: send {"type": "refresh"}')
                        )
                    continue
                await rescan()

        await serve(websocket, write, read)
