"""The tools of one turn and running a step's calls (engine-behaviour §5.3, §5.4, §5.6, §11).

The built-ins a turn offers depend on the chat (§5.3): the workspace tools always; on root
chats the platform tools, on plan turns ask_user_question and propose_plan, and the sub-agent
tools; the skill tools when the workspace has skills. A plan turn then keeps only what plan
mode allows, and an explore sub-agent only what it allows (§5.4). Tools of the registry that
are not built-ins (the testing tools, a test's own) are always offered. Last come the chat's
client-side (dynamic) tools, except on plan turns, for explore sub-agents, and for a name an
offered tool already has (the offered tool wins).

Local calls run concurrently; each finished result is recorded as it completes, so an
interrupted step keeps the results it already has. A call whose tool parks the turn
(``wait_agent`` while its sub-agent works) has no result yet: the step is saved without it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import structlog

from chatd.llm.types import ToolCall, ToolSpec
from chatd.sdk.chats import ChatMessagePart, ChatMessagePartType
from chatd.tools import builtin
from chatd.tools.registry import (
    Tool,
    ToolCallContext,
    ToolError,
    ToolOutput,
    ToolRegistry,
    encode_result,
)
from chatd.tools.scope import ChatFacts, TurnScope
from chatd.workspace.conn import AgentError

log = structlog.get_logger(__name__)
Clock = Callable[[], dt.datetime]
EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


def builtin_names(facts: ChatFacts | None, *, has_skills: bool) -> list[str]:
    """The built-in tools a turn of this chat offers, in order (§5.3, then the §5.4 filter)."""
    root = facts is None or facts.is_root
    plan = facts is not None and facts.plan_mode
    tools = list(builtin.WORKSPACE_TOOLS)
    if root and plan:
        tools.append(builtin.PLAN_QUESTION)
    if root:
        tools.extend(builtin.PLATFORM_TOOLS)
        if plan:
            tools.append(builtin.PLAN_PROPOSAL)
        tools.extend(builtin.SUBAGENT_TOOLS)
    if has_skills:
        tools.extend(builtin.SKILL_TOOLS)
    names = [t.name for t in tools]
    if plan:
        allowed = builtin.PLAN_ALLOWED | (builtin.PLAN_ALLOWED_ROOT if root else frozenset())
        names = [n for n in names if n in allowed]
    if facts is not None and facts.explores:
        names = [n for n in names if n in builtin.EXPLORE_ALLOWED]
    return names


@dataclass(frozen=True)
class Toolset:
    registry: ToolRegistry
    # The registry's tools this turn offers, in order.
    active: dict[str, Tool]
    dynamic: dict[str, ToolSpec] = field(default_factory=dict)

    @classmethod
    def build(
        cls,
        registry: ToolRegistry,
        dynamic_tools: Any,
        facts: ChatFacts | None = None,
        *,
        has_skills: bool = False,
    ) -> Toolset:
        """The turn's tools; ``dynamic_tools`` is the chat's column (malformed entries
        skipped). Without ``facts``: a root chat, not planning."""
        active: dict[str, Tool] = {}
        for name in builtin_names(facts, has_skills=has_skills):
            tool = registry.get(name)
            if tool is not None:
                active[name] = tool
        for tool in registry:
            if tool.name not in builtin.BUILTIN_NAMES:
                active[tool.name] = tool
        # Client-side tools are for the client's own chats: not on plan turns, nor for explore
        # sub-agents.
        plain = facts is None or not (facts.plan_mode or facts.explores)
        dynamic = _dynamic(dynamic_tools, active) if plain else {}
        return cls(registry, active, dynamic)

    def with_tools(self, tools: list[Tool]) -> Toolset:
        """This toolset with more tools (the chat's MCP tools): a name offered already keeps
        its tool, and a client-side tool of the same name gives way."""
        active = dict(self.active)
        for tool in tools:
            if tool.name in active:
                log.warning("tool shadowed by an offered tool", tool=tool.name)
                continue
            active[tool.name] = tool
        dynamic = {name: spec for name, spec in self.dynamic.items() if name not in active}
        return replace(self, active=active, dynamic=dynamic)

    def without_mcp_server(self, server_id: uuid.UUID) -> Toolset:
        """This toolset without the tools of one MCP server."""
        active = {n: t for n, t in self.active.items() if t.mcp_server_config_id != server_id}
        return replace(self, active=active)

    def mcp_server_of(self, name: str) -> uuid.UUID | None:
        """The MCP server whose tool ``name`` is (None: not an MCP tool)."""
        tool = self.active.get(name)
        return tool.mcp_server_config_id if tool is not None else None

    def mcp_tools(self) -> list[Tool]:
        """The MCP tools added to the built ones (the chat's servers', the workspace's)."""
        return [
            tool
            for tool in self.active.values()
            if tool.mcp_server_config_id is not None or tool.workspace_mcp
        ]

    def specs(self) -> list[ToolSpec]:
        return [tool.spec() for tool in self.active.values()] + list(self.dynamic.values())

    def is_dynamic(self, name: str) -> bool:
        return name in self.dynamic

    def stops_turn(self, name: str) -> bool:
        tool = self.active.get(name)
        return tool is not None and tool.stop_after


def _dynamic(dynamic_tools: Any, active: dict[str, Tool]) -> dict[str, ToolSpec]:
    dynamic: dict[str, ToolSpec] = {}
    for raw in dynamic_tools if isinstance(dynamic_tools, list) else []:
        name = str(raw.get("name") or "") if isinstance(raw, dict) else ""
        if not name:
            continue
        if name in active:
            log.warning("dynamic tool shadowed by a built-in", tool=name)
            continue
        schema = raw.get("input_schema")
        dynamic[name] = ToolSpec(
            name=name,
            description=str(raw.get("description") or ""),
            input_schema=schema if isinstance(schema, dict) else EMPTY_SCHEMA,
        )
    return dynamic


@dataclass(frozen=True)
class CallResult:
    """A finished call: its ``tool-result`` part, the ``file`` parts of its attachments, and
    whether it ends the turn (a stop-after tool that succeeded)."""

    part: ChatMessagePart
    files: list[ChatMessagePart] = field(default_factory=list)
    stops: bool = False
    # No answer yet: the turn parks until then, or until one of these chats settles.
    parked_until: dt.datetime | None = None
    awaits: tuple[uuid.UUID, ...] = ()

    @property
    def parked(self) -> bool:
        return self.parked_until is not None


def result_part(
    call: ToolCall,
    output: ToolOutput,
    finished_at: dt.datetime,
    mcp_server_config_id: uuid.UUID | None = None,
) -> ChatMessagePart:
    return ChatMessagePart(
        type=ChatMessagePartType.tool_result,
        tool_call_id=call.id,
        tool_name=call.name,
        mcp_server_config_id=mcp_server_config_id,
        result=encode_result(output),
        is_error=output.is_error or None,
        created_at=finished_at,
    )


def call_result(
    toolset: Toolset, call: ToolCall, output: ToolOutput, finished_at: dt.datetime
) -> CallResult:
    files = [
        ChatMessagePart(
            type=ChatMessagePartType.file,
            file_id=a.file_id,
            media_type=a.media_type,
            name=a.name,
            created_at=finished_at,
        )
        for a in output.attachments
    ]
    stops = toolset.stops_turn(call.name) and not output.is_error
    tool = toolset.active.get(call.name)
    server = tool.mcp_server_config_id if tool is not None else None
    part = result_part(call, output, finished_at, server)
    return CallResult(part, files, stops, output.parked_until, output.awaits)


async def run_local_calls(
    toolset: Toolset,
    calls: list[ToolCall],
    context: Callable[[ToolCall], ToolCallContext],
    results: dict[str, CallResult],
    clock: Clock,
) -> None:
    """Run every call at once; each result lands in ``results`` (by call id) as it finishes."""

    async def one(call: ToolCall) -> None:
        output = await run_call(toolset, call, context(call))
        results[call.id] = call_result(toolset, call, output, clock())

    async with asyncio.TaskGroup() as group:
        for call in calls:
            group.create_task(one(call))


async def run_call(toolset: Toolset, call: ToolCall, ctx: ToolCallContext) -> ToolOutput:
    """One call's output: a tool's failure (and a call of no active tool) is an error result."""
    tool = toolset.active.get(call.name)
    if tool is None:
        if call.name in toolset.registry:
            return ToolOutput(f"Tool not active in this turn: {call.name}", is_error=True)
        return ToolOutput(f"Tool not found: {call.name}", is_error=True)
    # An MCP tool's bad arguments read as engine-behaviour §17 words them (a built-in tool
    # runs on the ``{}`` they became and says what it misses).
    invalid = f"invalid arguments for {call.name}"
    if tool.mcp_server_config_id is not None:
        invalid = "invalid JSON input"
        if call.args_error is not None:
            return ToolOutput(f"{invalid}: {call.args_error}", is_error=True)
    try:
        args = json.loads(call.args_json or "{}")
    except ValueError as exc:
        return ToolOutput(f"{invalid}: {exc}", is_error=True)
    if not isinstance(args, dict):
        return ToolOutput(f"{invalid}: not a JSON object", is_error=True)
    try:
        return await tool.run(args, ctx)
    except ToolError as exc:
        return ToolOutput(exc.message, is_error=True)
    except AgentError as exc:
        return ToolOutput(exc.message, is_error=True)
    except Exception as exc:
        log.warning("tool failed", tool=call.name, exc_info=exc)
        return ToolOutput(f"tool failed: {exc or type(exc).__name__}", is_error=True)


def tool_context(
    chat_id: uuid.UUID,
    owner_id: uuid.UUID,
    scope: TurnScope | None = None,
    called_at: dt.datetime | None = None,
) -> Callable[[ToolCall], ToolCallContext]:
    return lambda call: ToolCallContext(
        chat_id=chat_id, owner_id=owner_id, tool_call_id=call.id, turn=scope, called_at=called_at
    )
