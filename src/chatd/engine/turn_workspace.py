"""A turn's tools and workspace: the tool set, the tools' shared scope, and the per-turn
system text built from the workspace context (engine-behaviour §5.3, §9.2, §12).

At the start, and again after a tool binds a workspace, the context of the chat's workspace
agent is brought up to date (:func:`~chatd.engine.workspace_context.refresh_context`); the
tool set follows it (the skill tools come with skills). At the start the tools of the
workspace's MCP servers join the tool set too (:mod:`chatd.engine.workspace_mcp`), after the
chat's MCP tools.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Mapping
from typing import Any

from chatd.engine.context_prompt import has_skills, insert_system, turn_system_texts
from chatd.engine.toolset import Toolset, tool_context
from chatd.engine.types import TurnContext
from chatd.engine.workspace_context import Parts, current, refresh_context
from chatd.engine.workspace_mcp import offers_workspace_mcp, workspace_mcp_tools
from chatd.llm.types import Message, ToolCall
from chatd.tools.registry import Tool, ToolCallContext
from chatd.tools.scope import ChatFacts, TurnScope
from chatd.tools.workspace_access import WorkspaceAccess


class TurnWorkspace:
    def __init__(self, ctx: TurnContext, chat: Mapping[Any, Any], toolset: Toolset) -> None:
        self.ctx = ctx
        self.facts = ChatFacts.of(chat)
        self.dynamic_tools = chat["dynamic_tools"]
        self.toolset = toolset
        self.access = WorkspaceAccess(
            chat_id=ctx.chat_id,
            db=ctx.db,
            hub=ctx.hub,
            service=ctx.workspaces,
            workspace_id=chat["workspace_id"],
            agent_id=chat["agent_id"],
            build_id=chat["build_id"],
        )
        self.scope = TurnScope(self.facts, ctx.db, ctx.hub, self.access, ctx.settings)
        self.tool_context: Callable[[ToolCall], ToolCallContext] = tool_context(
            ctx.chat_id, self.facts.owner_id, self.scope
        )
        self._agent_id: uuid.UUID | None = chat["agent_id"]
        self._context: Parts | None = None
        # The workspace the context was last brought up to date for.
        self._context_of: uuid.UUID | None = None
        self.system_texts: list[str] = []

    async def prepare(self, stored: Parts | None) -> None:
        """At the turn's start: the stored context when it is the current agent's, else the
        agent's; and the workspace's MCP tools (not on plan turns nor for explore sub-agents).
        Both at once, a wait of a few seconds at most (the start slot is given up for it)."""
        known = current(stored, self._agent_id)
        reachable = self.access.workspace_id is not None and self.access.available
        ask_context = known is None and reachable
        ask_tools = reachable and offers_workspace_mcp(self.facts)
        tools: list[Tool] = []
        if ask_context or ask_tools:
            if self.ctx.start_slot is not None:
                self.ctx.start_slot.free()  # a network wait, not start-up work
            context, tools = await asyncio.gather(
                refresh_context(self.ctx, self.access, stored) if ask_context else _none(),
                workspace_mcp_tools(self.ctx, self.access) if ask_tools else _no_tools(),
            )
            known = context if ask_context else known
        self._use(known)
        if tools:  # after the chat's MCP tools, which keep a name they share
            self.toolset = self.toolset.with_tools(tools)

    async def after_tools(self) -> None:
        """A tool bound a workspace: its context from now on."""
        if self.access.workspace_id != self._context_of:
            self._use(await refresh_context(self.ctx, self.access, None))

    def _use(self, context: Parts | None) -> None:
        self._context = context
        self._context_of = self.access.workspace_id
        self.system_texts = turn_system_texts(
            self.facts.chat_id,
            context if self.access.workspace_id is not None else None,
            plan_mode=self.facts.plan_mode,
            is_root=self.facts.is_root,
        )
        skills = has_skills(context)
        if skills != ("read_skill" in self.toolset.active):
            self.toolset = Toolset.build(
                self.toolset.registry, self.dynamic_tools, self.facts, has_skills=skills
            ).with_tools(self.toolset.mcp_tools())

    def prompt(self, history: list[Message]) -> list[Message]:
        """The messages of a model call: the history with the turn's system text."""
        return insert_system(history, self.system_texts)


async def _none() -> Parts | None:
    return None


async def _no_tools() -> list[Tool]:
    return []
