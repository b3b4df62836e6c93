"""One turn's way to its chat's workspace agent (engine-behaviour §12).

:meth:`WorkspaceAccess.conn` connects lazily and keeps the connection for the turn; a
connection that has closed (the agent restarted, say) is dropped and a new one asked for. It
records on the chat the agent and build it reached. A tool that creates or starts a workspace
holds :attr:`WorkspaceAccess.lifecycle` and binds the new workspace with :meth:`bind`; the
calls after it in the turn use that workspace.
"""

from __future__ import annotations

import asyncio
import uuid

from chatd.events.hub import EventHub
from chatd.store.chat_updates import bind_workspace, record_workspace_agent
from chatd.store.db import Database
from chatd.tools.registry import ToolError
from chatd.workspace.conn import AgentConn, AgentUnavailable
from chatd.workspace.service import Workspaces

NO_WORKSPACE = (
    "This chat has no workspace yet, so there is nowhere to run this. Call list_templates to "
    "choose a template and create_workspace to make one; then try again."
)
WORKSPACES_OFF = "Workspaces are not available on this server."
START_HINT = " Call start_workspace to start it, then try again."
# How long a tool waits for the agent to (re)connect before answering that it is unavailable.
CONNECT_WAIT = 30.0
# How long create_workspace and start_workspace wait for the workspace's agent.
AGENT_WAIT = 120.0


class WorkspaceAccess:
    def __init__(
        self,
        *,
        chat_id: uuid.UUID,
        db: Database,
        hub: EventHub,
        service: Workspaces | None,
        workspace_id: uuid.UUID | None,
        agent_id: uuid.UUID | None = None,
        build_id: uuid.UUID | None = None,
        connect_wait: float = CONNECT_WAIT,
        agent_wait: float = AGENT_WAIT,
    ) -> None:
        self.chat_id = chat_id
        self.db = db
        self.hub = hub
        self._service = service
        self._workspace_id = workspace_id
        # What the chat's row names (kept current as this records new ones).
        self._agent = (agent_id, build_id)
        self.connect_wait = connect_wait
        self.agent_wait = agent_wait
        self._conn: AgentConn | None = None
        self._connecting = asyncio.Lock()
        # Held by the tools that create or start the workspace, so they never race.
        self.lifecycle = asyncio.Lock()

    @property
    def workspace_id(self) -> uuid.UUID | None:
        return self._workspace_id

    @property
    def available(self) -> bool:
        return self._service is not None

    def service(self) -> Workspaces:
        if self._service is None:
            raise ToolError(WORKSPACES_OFF)
        return self._service

    async def conn(self, *, wait: float | None = None) -> AgentConn:
        """The live connection to the workspace's agent; :class:`ToolError` when there is no
        workspace or its agent does not answer within ``wait`` seconds."""
        workspace_id = self._workspace_id
        if workspace_id is None:
            raise ToolError(NO_WORKSPACE)
        service = self.service()
        usable = self._usable(workspace_id)
        if usable is not None:
            return usable
        async with self._connecting:
            usable = self._usable(workspace_id)
            if usable is not None:
                return usable
            try:
                conn = await service.connection(
                    workspace_id, wait=self.connect_wait if wait is None else wait
                )
            except AgentUnavailable as exc:
                message = exc.message
                if "start_workspace" not in message:
                    message = message.rstrip(".") + "." + START_HINT
                raise ToolError(message) from None
            if self._workspace_id != workspace_id:  # rebound while connecting
                raise ToolError("the chat's workspace changed; try again")
            await self._record(workspace_id, conn)
            self._conn = conn
            return conn

    def _usable(self, workspace_id: uuid.UUID) -> AgentConn | None:
        conn = self._conn
        if conn is None or conn.closed or conn.workspace_id != workspace_id:
            return None
        return conn

    async def _record(self, workspace_id: uuid.UUID, conn: AgentConn) -> None:
        if self._agent == (conn.agent_id, conn.build_id):
            return
        await self.db.run_write_one(
            record_workspace_agent, self.chat_id, workspace_id, conn.agent_id, conn.build_id
        )
        self._agent = (conn.agent_id, conn.build_id)

    async def bind(self, workspace_id: uuid.UUID) -> None:
        """Bind ``workspace_id`` to the chat now (watch ``status_change``); later calls of the
        turn use it."""
        outbox = await self.db.run_write(bind_workspace, self.db.now(), self.chat_id, workspace_id)
        self.hub.publish(outbox)
        if self._service is not None:
            await self._service.chat_bound(workspace_id)
        self._workspace_id = workspace_id
        self._agent = (None, None)
        self._conn = None
