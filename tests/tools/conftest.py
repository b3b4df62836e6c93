"""Tool tests: a chat in a real database (both backends), a workspace whose agent is a real
Dispatcher on a temporary directory, and a way to call any built-in tool as a turn would."""

from __future__ import annotations

import dataclasses
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chatd.engine.toolset import Toolset, run_call
from chatd.events.hub import EventHub
from chatd.llm.types import ToolCall
from chatd.settings import Settings
from chatd.store.chat_updates import set_workspace
from chatd.store.db import Database
from chatd.tools.builtin import builtin_registry
from chatd.tools.registry import ToolCallContext, ToolOutput
from chatd.tools.scope import ChatFacts, TurnScope
from chatd.tools.workspace_access import WorkspaceAccess
from tests.helpers import ApiUser, bootstrap_admin, make_chat, seed_model_config
from tests.tools.agents import AgentPool, LocalWorkspaces, Template, Workspace


@dataclass
class ToolEnv:
    db: Database
    hub: EventHub
    owner: ApiUser
    chat_id: uuid.UUID
    service: LocalWorkspaces
    facts: ChatFacts
    access: WorkspaceAccess
    workspace: Workspace | None = None

    @property
    def directory(self) -> Path:
        assert self.workspace is not None
        return self.workspace.directory

    def context(self, call_id: str = "call_1") -> ToolCallContext:
        scope = TurnScope(self.facts, self.db, self.hub, self.access)
        return ToolCallContext(self.chat_id, self.owner.id, call_id, scope)

    def toolset(self) -> Toolset:
        return Toolset.build(builtin_registry(), None, self.facts, has_skills=True)

    async def run(self, name: str, /, **args: Any) -> ToolOutput:
        call = ToolCall(f"call_{name}", name, json.dumps(args))
        return await run_call(self.toolset(), call, self.context(call.id))

    async def ok(self, name: str, /, **args: Any) -> dict[str, Any]:
        """The JSON result of a call that must succeed."""
        output = await self.run(name, **args)
        assert not output.is_error, output.text
        result: dict[str, Any] = json.loads(output.text)
        return result

    async def error(self, name: str, /, **args: Any) -> str:
        """The error text of a call that must fail."""
        output = await self.run(name, **args)
        assert output.is_error, output.text
        return output.text

    def planning(self, *, root: bool = True) -> ToolEnv:
        """The same chat on a plan turn (a child chat's when not ``root``)."""
        facts = dataclasses.replace(
            self.facts, plan_mode=True, parent_chat_id=None if root else uuid.uuid4()
        )
        return dataclasses.replace(self, facts=facts)

    def new_turn(self, **access: Any) -> ToolEnv:
        """A later turn: a fresh access to the chat's workspace (as a turn builds one)."""
        return dataclasses.replace(self, access=self.make_access(**access))

    def make_access(self, **options: Any) -> WorkspaceAccess:
        workspace_id = self.workspace.id if self.workspace else None
        return WorkspaceAccess(
            chat_id=self.chat_id,
            db=self.db,
            hub=self.hub,
            service=options.pop("service", self.service),
            workspace_id=options.pop("workspace_id", workspace_id),
            **options,
        )


async def tool_env(
    db: Database,
    settings: Settings,
    root: Path,
    pool: AgentPool,
    *,
    bound: bool = True,
) -> ToolEnv:
    owner = await bootstrap_admin(db, settings)
    chat_id = await make_chat(db, owner, await seed_model_config(db))
    service = LocalWorkspaces(db, root, pool)
    service.templates.append(Template("scratch", owner.org_id, "Scratch", "An empty git repo."))
    facts = ChatFacts(chat_id=chat_id, owner_id=owner.id, organization_id=owner.org_id)
    workspace = None
    if bound:
        workspace = await service.add(owner.id, owner.org_id, "ws")
        async with db.write() as conn:
            await set_workspace(conn, db.now(), chat_id, workspace.id)
    hub = EventHub()
    access = WorkspaceAccess(
        chat_id=chat_id,
        db=db,
        hub=hub,
        service=service,
        workspace_id=workspace.id if workspace else None,
        agent_wait=2.0,
    )
    return ToolEnv(db, hub, owner, chat_id, service, facts, access, workspace)


@pytest.fixture
async def env(
    db: Database, settings: Settings, tmp_path: Path, agent_pool: AgentPool
) -> AsyncIterator[ToolEnv]:
    """A chat bound to a workspace with a running agent."""
    environment = await tool_env(db, settings, tmp_path / "workspaces", agent_pool)
    yield environment
    await environment.service.close()


@pytest.fixture
async def bare(
    db: Database, settings: Settings, tmp_path: Path, agent_pool: AgentPool
) -> AsyncIterator[ToolEnv]:
    """A chat without a workspace."""
    environment = await tool_env(db, settings, tmp_path / "workspaces", agent_pool, bound=False)
    yield environment
    await environment.service.close()
