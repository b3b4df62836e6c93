"""Turns that call the built-in tools: the shipped fake provider over loopback HTTP scripts the
model, a real agent Dispatcher serves the chat's workspace."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from chatd.engine.turn import run_turn
from chatd.sdk.events import ChatStreamEvent
from chatd.settings import Settings
from chatd.store.chat_updates import set_workspace
from chatd.store.db import Database
from chatd.store.tables import chat_providers, chats
from chatd.store.turn_outcome import TurnOutcome
from chatd.testing import FakeProvider
from chatd.tools.builtin import builtin_registry
from tests.engine.turn_fakes import Harness, ScriptedClient, harness
from tests.tools.agents import AgentPool, LocalWorkspaces, Template, Workspace


@dataclass
class ToolTurn:
    h: Harness
    provider: FakeProvider
    service: LocalWorkspaces
    workspace: Workspace | None

    @property
    def directory(self) -> Path:
        assert self.workspace is not None
        return self.workspace.directory

    async def run(self, *script: dict[str, Any]) -> tuple[TurnOutcome, list[ChatStreamEvent]]:
        """One turn answered by ``script`` (one entry per model call)."""
        self.provider.add(list(script))
        with self.h.hub.chat(self.h.ctx.chat_id) as sub:
            outcome = await run_turn(self.h.ctx)
            return outcome, sub.drain()

    def request(self, index: int) -> dict[str, Any]:
        """The body of the ``index``-th model call."""
        body: dict[str, Any] = self.provider.requests[index].body
        return body

    def system_texts(self, index: int) -> list[str]:
        """The leading system messages of a model call."""
        texts = []
        for message in self.request(index)["messages"]:
            if message["role"] != "system":
                break
            texts.append(message["content"])
        return texts

    def tool_names(self, index: int) -> list[str]:
        return [t["function"]["name"] for t in self.request(index).get("tools", [])]

    async def chat(self) -> dict[str, Any]:
        async with self.h.db.read() as conn:
            query = sa.select(chats).where(chats.c.id == self.h.ctx.chat_id)
            return (await conn.execute(query)).one().as_dict()


async def tool_turn(
    db: Database,
    settings: Settings,
    root: Path,
    pool: AgentPool,
    provider: FakeProvider,
    url: str,
    *,
    bound: bool = True,
    plan: bool = False,
    **overrides: Any,
) -> ToolTurn:
    h = await harness(db, settings, ScriptedClient(), tools=builtin_registry(), **overrides)
    h.ctx.client_factory = None  # the real adapters, to the fake provider
    service = LocalWorkspaces(db, root, pool)
    service.templates.append(Template("scratch", h.owner.org_id, "Scratch"))
    h.ctx.workspaces = service
    workspace = None
    async with db.write() as conn:
        await conn.execute(chat_providers.update().values(base_url=f"{url}/v1"))
    if bound:
        workspace = await service.add(h.owner.id, h.owner.org_id, f"ws-{uuid.uuid4().hex[:6]}")
        async with db.write() as conn:
            await set_workspace(conn, db.now(), h.ctx.chat_id, workspace.id)
    if plan:
        async with db.write() as conn:
            await conn.execute(
                chats.update().where(chats.c.id == h.ctx.chat_id).values(plan_mode="plan")
            )
    return ToolTurn(h, provider, service, workspace)


def call(name: str, call_id: str | None = None, /, **args: Any) -> dict[str, Any]:
    """A tool call of a script entry."""
    return {"id": call_id or f"call_{name}", "name": name, "args": args}
