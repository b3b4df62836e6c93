"""The WebSocket workspace agents dial in on (:mod:`chatd.agent.protocol`).

Authenticated only by a workspace agent token in the ``Coder-Session-Token`` header: a
user's token is refused here (401, before the upgrade), as an agent token is refused by every
other route (it is not a user API key). The first frame must be the agent's ``hello``
(anything else closes the socket with 1008); then the connection is recorded (status
``connected``, a new ``build_id``) and becomes the workspace's, replacing an older one, until
it closes (status ``disconnected``; calls still waiting fail).
"""

from __future__ import annotations

import asyncio
import uuid

import structlog
from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect

from chatd.agent import protocol
from chatd.api.errors import ApiError
from chatd.api.openapi import websocket_route
from chatd.api.websockets import deny
from chatd.store.errors import StoreError
from chatd.workspace.agents import CLOSE_POLICY, Hello, WebSocketAgentConn
from chatd.workspace.service import Workspaces

log = structlog.get_logger(__name__)
router = APIRouter()

# How long a dialled-in agent has to say hello.
HELLO_TIMEOUT = 10.0
BAD_TOKEN = "Workspace agent token is invalid."


@router.websocket(protocol.AGENT_PATH)
async def agent_rpc(websocket: WebSocket) -> None:
    workspaces: Workspaces = websocket.app.state.workspaces
    row = await workspaces.authenticate_agent(websocket.headers.get(protocol.TOKEN_HEADER))
    if row is None:
        detail = f'A workspace agent token must be given in the "{protocol.TOKEN_HEADER}" header.'
        await deny(websocket, ApiError(401, BAD_TOKEN, detail))
        return
    await websocket.accept()
    hello = await _hello(websocket)
    if hello is None:
        return
    conn = WebSocketAgentConn(
        websocket,
        workspace_id=row["id"],
        agent_id=row["agent_id"],
        build_id=uuid.uuid4(),
        hello=hello,
    )
    if not await workspaces.agent_connected(conn):
        await conn.close(CLOSE_POLICY, "the workspace was deleted")
        return
    try:
        await conn.serve()
    finally:
        try:
            await asyncio.shield(workspaces.agent_disconnected(conn))
        except StoreError:
            log.exception("could not record a workspace agent's disconnect")


async def _hello(websocket: WebSocket) -> Hello | None:
    """The agent's hello, or None (the socket closed, with 1008 for anything else)."""
    try:
        async with asyncio.timeout(HELLO_TIMEOUT):
            message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return None
        text = message.get("text")
        if text is None:
            raise protocol.ProtocolError("frames are text")
        return Hello.parse(protocol.decode(text))
    except (TimeoutError, protocol.ProtocolError) as exc:
        reason = "no hello in time" if isinstance(exc, TimeoutError) else str(exc)
        try:
            await websocket.close(code=CLOSE_POLICY, reason=reason[:120])
        except (RuntimeError, OSError, WebSocketDisconnect):
            pass
        return None
    except (WebSocketDisconnect, RuntimeError, OSError):
        return None


def document() -> None:
    """Add the agent's WebSocket to the OpenAPI document."""
    websocket_route(
        protocol.AGENT_PATH,
        summary="Workspace agent connection via WebSockets",
        tag="Agents",
        model=None,
        parameters=[
            {
                "name": protocol.TOKEN_HEADER,
                "in": "header",
                "required": True,
                "description": "The workspace agent's token (not a user's).",
                "schema": {"type": "string"},
            }
        ],
        status="101",
    )
