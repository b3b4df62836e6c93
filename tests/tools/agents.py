"""Workspace agents for tool tests, and a Workspaces service over them.

:class:`AgentPool` is where a test's workspace directory comes from and how its agent is
reached; the tool tests run with every kind of pool (the ``agent_pool`` fixture). Here:
:class:`DispatcherPool`, whose :class:`DispatcherConn` hands each operation (through JSON, as
the wire would) to a real :class:`chatd.agent.dispatcher.Dispatcher` on a directory: real
files, real subprocesses, in this process. ``tests/workspace/agents.py`` has the pools of
real agents behind a real server. :class:`LocalWorkspaces` is the
:class:`~chatd.workspace.service.Workspaces` interface over a pool's connections, with
handles to stop, start and restart an agent the way a crash or a redeploy would (for
dispatcher connections).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from chatd.agent import protocol
from chatd.agent.dispatcher import Dispatcher
from chatd.agent.errors import OpError
from chatd.agent.streams import Channel
from chatd.store.db import Database
from chatd.store.tables import workspaces
from chatd.workspace.conn import (
    AgentConn,
    AgentOpError,
    AgentStream,
    AgentStreamEnded,
    AgentUnavailable,
)
from chatd.workspace.git_states import GitStates
from chatd.workspace.service import CreatedWorkspace, WorkspaceInputError, Workspaces


class DispatcherConn(AgentConn):
    def __init__(self, dispatcher: Dispatcher, workspace_id: uuid.UUID, agent_id: uuid.UUID):
        self.dispatcher = dispatcher
        self.workspace_id = workspace_id
        self.agent_id = agent_id
        self.build_id = uuid.uuid4()
        self.directory = str(dispatcher.directory)
        self.home = str(dispatcher.directory)
        self.operating_system = "linux"
        self.version = protocol.PROTOCOL_VERSION
        self.calls: list[str] = []
        self.called = asyncio.Event()  # set as each operation is sent
        self._closed = asyncio.Event()

    async def call(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        """The operation's result; closing the connection ends every call still waiting
        (:class:`AgentUnavailable`), and a cancelled caller cancels its operation."""
        if self._closed.is_set():
            raise AgentUnavailable("the workspace agent is not connected")
        self.calls.append(op)
        self.called.set()
        work = asyncio.ensure_future(self.dispatcher.handle(op, json.loads(json.dumps(args))))
        closing = asyncio.ensure_future(self._closed.wait())
        try:
            await asyncio.wait({work, closing}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            closing.cancel()
            if not work.done():
                work.cancel()
        if not work.done() or work.cancelled():
            raise AgentUnavailable("the workspace agent disconnected during the call")
        try:
            result = work.result()
        except OpError as exc:
            raise AgentOpError(exc.code, exc.message) from None
        decoded: dict[str, Any] = json.loads(json.dumps(result))
        return decoded

    @contextlib.asynccontextmanager
    async def stream(self, op: str, args: dict[str, Any]) -> AsyncIterator[AgentStream]:
        """The streaming operation run on the dispatcher in a task of this process."""
        if self._closed.is_set():
            raise AgentUnavailable("the workspace agent is not connected")
        self.calls.append(op)
        stream = DispatcherStream()
        channel = Channel(stream.push_event, stream.push_data)
        stream.channel = channel

        async def run() -> None:
            try:
                result = await self.dispatcher.stream(op, json.loads(json.dumps(args)), channel)
                stream.items.put_nowait(AgentStreamEnded(result))
            except OpError as exc:
                stream.items.put_nowait(AgentOpError(exc.code, exc.message))

        async def end_on_close() -> None:
            await self._closed.wait()
            stream.items.put_nowait(AgentUnavailable("the workspace agent disconnected"))

        task = asyncio.ensure_future(run())
        closing = asyncio.ensure_future(end_on_close())
        try:
            yield stream
        finally:
            for pending in (task, closing):
                pending.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await pending

    @property
    def closed(self) -> bool:
        return self._closed.is_set()

    def close(self) -> None:
        self._closed.set()


class DispatcherStream(AgentStream):
    def __init__(self) -> None:
        self.items: asyncio.Queue[dict[str, Any] | bytes | Exception] = asyncio.Queue()
        self.channel: Channel | None = None

    async def push_event(self, event: dict[str, Any]) -> None:
        self.items.put_nowait(json.loads(json.dumps(event)))

    async def push_data(self, data: bytes) -> None:
        self.items.put_nowait(data)

    async def receive(self) -> dict[str, Any] | bytes:
        item = await self.items.get()
        if isinstance(item, Exception):
            self.items.put_nowait(item)
            raise item
        return item

    async def send_data(self, data: bytes) -> None:
        assert self.channel is not None
        self.channel.feed(data)


@dataclass(frozen=True)
class Provisioned:
    """A workspace a pool made ready for a test: its ids and its directory (resolved)."""

    workspace_id: uuid.UUID
    agent_id: uuid.UUID
    directory: Path


class AgentPool(abc.ABC):
    """Where a test's workspaces live and how their agents are reached."""

    @abc.abstractmethod
    async def provision(self, suggested: Path) -> Provisioned:
        """A new, empty workspace (in ``suggested`` when the pool makes directories)."""

    @abc.abstractmethod
    async def connect(
        self, workspace_id: uuid.UUID, agent_id: uuid.UUID, directory: Path
    ) -> AgentConn:
        """A live connection to the workspace's agent (``agent_id`` and ``directory``: what
        the test's service knows of it)."""

    @abc.abstractmethod
    async def close(self) -> None:
        """The end of the test."""


class DispatcherPool(AgentPool):
    """Connections to in-process agents: one Dispatcher per directory (its home too),
    outliving its connections; every Dispatcher is closed at the end."""

    def __init__(self) -> None:
        self.agents: dict[Path, Dispatcher] = {}

    async def provision(self, suggested: Path) -> Provisioned:
        directory = await asyncio.to_thread(_make_directory, suggested)
        return Provisioned(uuid.uuid4(), uuid.uuid4(), directory)

    async def connect(
        self, workspace_id: uuid.UUID, agent_id: uuid.UUID, directory: Path
    ) -> AgentConn:
        dispatcher = self.agents.get(directory)
        if dispatcher is None:
            dispatcher = self.agents[directory] = Dispatcher(directory, home=directory)
        return DispatcherConn(dispatcher, workspace_id, agent_id)

    async def close(self) -> None:
        for dispatcher in self.agents.values():
            await dispatcher.close()


def _make_directory(path: Path) -> Path:
    path.mkdir(parents=True)
    return path.resolve()


@dataclass
class Template:
    """A template as the service lists it (the fields of ``chatd.sdk.workspaces.Template``)."""

    name: str
    organization_id: uuid.UUID
    display_name: str = ""
    description: str = ""
    kind: str = "local"
    parameters: list[dict[str, Any]] = field(default_factory=list)
    id: uuid.UUID = field(default_factory=uuid.uuid4)


@dataclass
class Agent:
    id: uuid.UUID
    status: str = "connected"


@dataclass
class Workspace:
    id: uuid.UUID
    name: str
    owner_id: uuid.UUID
    organization_id: uuid.UUID
    template_id: uuid.UUID
    directory: Path
    agent: Agent
    conn: AgentConn | None = None
    up: asyncio.Event = field(default_factory=asyncio.Event)


class LocalWorkspaces(Workspaces):
    """Workspaces in directories under ``root`` (for pools that make them); each agent
    comes from ``pool``."""

    def __init__(self, db: Database, root: Path, pool: AgentPool) -> None:
        self.db = db
        self.root = root
        self.pool = pool
        self.templates: list[Template] = []
        self.workspaces: dict[uuid.UUID, Workspace] = {}
        self.created: list[dict[str, Any]] = []
        self.connections = 0
        self.git = GitStates()  # no agent here is followed: binding a chat records nothing

    async def list_templates(self, organization_id: uuid.UUID) -> list[Any]:
        found = [t for t in self.templates if t.organization_id == organization_id]
        return sorted(found, key=lambda t: t.name)

    async def get_template(self, template_id: uuid.UUID) -> Any | None:
        return next((t for t in self.templates if t.id == template_id), None)

    async def add(self, owner_id: uuid.UUID, organization_id: uuid.UUID, name: str) -> Workspace:
        """A workspace with a running agent, as if created earlier."""
        template = self.templates[0] if self.templates else Template("scratch", organization_id)
        made = await self.pool.provision(self.root / name)
        workspace = Workspace(
            id=made.workspace_id,
            name=name,
            owner_id=owner_id,
            organization_id=organization_id,
            template_id=template.id,
            directory=made.directory,
            agent=Agent(made.agent_id),
        )
        now = self.db.now()
        row = {
            "id": workspace.id,
            "owner_id": owner_id,
            "organization_id": organization_id,
            "name": name,
            "created_at": now,
            "updated_at": now,
            "kind": template.kind,
            "parameters": {},
            "agent_id": workspace.agent.id,
        }
        async with self.db.write() as conn:  # the row chats.workspace_id refers to
            await conn.execute(
                workspaces.insert().values({k: v for k, v in row.items() if k in workspaces.c})
            )
        workspace.up.set()
        self.workspaces[workspace.id] = workspace
        return workspace

    async def create(
        self,
        *,
        owner_id: uuid.UUID,
        organization_id: uuid.UUID,
        template_id: uuid.UUID,
        name: str | None,
        parameters: dict[str, str],
    ) -> CreatedWorkspace:
        template = await self.get_template(template_id)
        if template is None or template.organization_id != organization_id:
            raise WorkspaceInputError("Template not found.")
        for parameter in template.parameters:
            if parameter.get("required") and parameter["name"] not in parameters:
                raise WorkspaceInputError(f"Parameter {parameter['name']!r} is required.")
        self.created.append({"template_id": template_id, "name": name, "parameters": parameters})
        workspace = await self.add(owner_id, organization_id, name or f"{template.name}-ab12")
        return CreatedWorkspace(workspace=workspace, agent_token=None)

    async def get(self, workspace_id: uuid.UUID) -> Any | None:
        return self.workspaces.get(workspace_id)

    async def start(self, workspace_id: uuid.UUID) -> None:
        self.workspaces[workspace_id].up.set()

    async def connection(self, workspace_id: uuid.UUID, *, wait: float) -> AgentConn:
        workspace = self.workspaces.get(workspace_id)
        if workspace is None:
            raise AgentUnavailable("the workspace no longer exists; call create_workspace")
        try:
            async with asyncio.timeout(wait):
                await workspace.up.wait()
        except TimeoutError:
            raise AgentUnavailable(
                "the workspace agent is disconnected; call start_workspace to start it"
            ) from None
        if workspace.conn is None or workspace.conn.closed:
            workspace.conn = await self.pool.connect(
                workspace_id, workspace.agent.id, workspace.directory
            )
            self.connections += 1
        return workspace.conn

    def stop(self, workspace_id: uuid.UUID) -> None:
        """The agent goes away: its connection closes, and none comes until a start."""
        workspace = self.workspaces[workspace_id]
        workspace.up.clear()
        workspace.agent.status = "disconnected"
        if isinstance(workspace.conn, DispatcherConn):  # a real agent is not the test's
            workspace.conn.close()

    def restart(self, workspace_id: uuid.UUID) -> None:
        """The agent is killed and comes back at once (a new connection, a new build)."""
        self.stop(workspace_id)
        self.workspaces[workspace_id].up.set()
        self.workspaces[workspace_id].agent.status = "connected"

    async def delete(self, workspace_id: uuid.UUID) -> None:
        self.stop(workspace_id)
        del self.workspaces[workspace_id]

    async def close(self) -> None:
        for workspace_id in list(self.workspaces):
            self.stop(workspace_id)
