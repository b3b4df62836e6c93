"""The agent behind a chat's workspace, for the workspace WebSockets (api-behaviour §6.16,
§6.17): the reference's checks, in its order, each failing with its 400 message.

A workspace the server starts itself (local, command) has its agent started here when it is
not running, as a turn would; an external workspace's agent must already be connected.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from fastapi import WebSocket

from chatd.api.chat_param import load_chat
from chatd.api.deps import authenticate_connection
from chatd.api.errors import ApiError, bad_request, forbidden
from chatd.api.websockets import deny
from chatd.authz import Actor
from chatd.sdk.workspaces import TemplateKind, WorkspaceAgentStatus
from chatd.store.db import Database
from chatd.store.sql import RowDict
from chatd.workspace.conn import AgentConn, AgentUnavailable
from chatd.workspace.service import Workspaces

# How long a request waits for the agent to dial in (the reference's dial timeout).
DIAL_TIMEOUT = 30.0
_STARTED_BY_SERVER = (TemplateKind.local, TemplateKind.command)


@dataclass(frozen=True)
class AgentMessages:
    no_workspace: str
    not_connected: str  # formatted with the agent's status

    def state(self, status: WorkspaceAgentStatus | str) -> ApiError:
        return bad_request(self.not_connected.format(status=str(status)))


GIT_MESSAGES = AgentMessages(
    no_workspace="Chat has no workspace to watch.",
    not_connected='Agent state is "{status}", it must be in the "connected" state.',
)
DESKTOP_MESSAGES = AgentMessages(
    no_workspace="Chat has no workspace.",
    not_connected='Agent state is "{status}", must be connected.',
)
WORKSPACE_NOT_FOUND = "Chat workspace not found."


async def socket_agent(
    websocket: WebSocket, chat: str, messages: AgentMessages
) -> tuple[RowDict, AgentConn] | None:
    """:func:`chat_agent` for a WebSocket route: the caller authenticated, or the upgrade
    refused with the error (then None)."""
    try:
        actor = await authenticate_connection(websocket)
        return await chat_agent(
            websocket.app.state.db, websocket.app.state.workspaces, actor, chat, messages
        )
    except ApiError as error:
        await deny(websocket, error)
        return None


async def chat_agent(
    db: Database,
    workspaces: Workspaces,
    actor: Actor,
    chat: str,
    messages: AgentMessages,
    *,
    dial_timeout: float = DIAL_TIMEOUT,
) -> tuple[RowDict, AgentConn]:
    """The chat's row and its workspace agent's live connection; raises :class:`ApiError`."""
    row = await load_chat(db, actor, chat)
    workspace_id: uuid.UUID | None = row["workspace_id"]
    if workspace_id is None:
        raise bad_request(messages.no_workspace)
    workspace = await workspaces.get(workspace_id)
    if workspace is None:
        raise bad_request(WORKSPACE_NOT_FOUND)
    if workspace.owner_id != actor.user_id and not actor.is_owner:
        raise forbidden()
    status = workspace.agent.status
    if workspace.kind not in _STARTED_BY_SERVER and status != WorkspaceAgentStatus.connected:
        raise messages.state(status)
    try:
        conn = await workspaces.connection(workspace_id, wait=dial_timeout)
    except AgentUnavailable:
        current = await workspaces.get(workspace_id)
        raise messages.state(current.agent.status if current else status) from None
    return row, conn
