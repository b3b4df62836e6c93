"""The tools of one turn and running a step's calls (engine-behaviour §5.3, §5.6, §11).

Built-ins come from the registry; the chat's client-side (dynamic) tools are offered to the
model too, except a dynamic name that collides with a built-in (the built-in wins). Local
calls run concurrently; each finished result is recorded as it completes, so an interrupted
step keeps the results it already has.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import structlog

from chatd.llm.types import ToolCall, ToolSpec
from chatd.sdk.chats import ChatMessagePart, ChatMessagePartType
from chatd.tools.registry import ToolCallContext, ToolOutput, ToolRegistry, encode_result

log = structlog.get_logger(__name__)
Clock = Callable[[], dt.datetime]
EMPTY_SCHEMA: dict[str, Any] = {"type": "object", "properties": {}}


@dataclass(frozen=True)
class Toolset:
    registry: ToolRegistry
    dynamic: dict[str, ToolSpec]

    @classmethod
    def build(cls, registry: ToolRegistry, dynamic_tools: Any) -> Toolset:
        """The registry plus the chat's ``dynamic_tools`` column (malformed entries skipped)."""
        dynamic: dict[str, ToolSpec] = {}
        for raw in dynamic_tools if isinstance(dynamic_tools, list) else []:
            name = str(raw.get("name") or "") if isinstance(raw, dict) else ""
            if not name:
                continue
            if name in registry:
                log.warning("dynamic tool shadowed by a built-in", tool=name)
                continue
            schema = raw.get("input_schema")
            dynamic[name] = ToolSpec(
                name=name,
                description=str(raw.get("description") or ""),
                input_schema=schema if isinstance(schema, dict) else EMPTY_SCHEMA,
            )
        return cls(registry, dynamic)

    def specs(self) -> list[ToolSpec]:
        return [tool.spec() for tool in self.registry] + list(self.dynamic.values())

    def is_dynamic(self, name: str) -> bool:
        return name in self.dynamic


def result_part(call: ToolCall, output: ToolOutput, finished_at: dt.datetime) -> ChatMessagePart:
    return ChatMessagePart(
        type=ChatMessagePartType.tool_result,
        tool_call_id=call.id,
        tool_name=call.name,
        result=encode_result(output),
        is_error=output.is_error or None,
        created_at=finished_at,
    )


async def run_local_calls(
    toolset: Toolset,
    calls: list[ToolCall],
    context: Callable[[ToolCall], ToolCallContext],
    results: dict[str, ChatMessagePart],
    clock: Clock,
) -> None:
    """Run every call at once; each result lands in ``results`` (by call id) as it finishes."""

    async def one(call: ToolCall) -> None:
        output = await _run_one(toolset.registry, call, context(call))
        results[call.id] = result_part(call, output, clock())

    async with asyncio.TaskGroup() as group:
        for call in calls:
            group.create_task(one(call))


async def _run_one(registry: ToolRegistry, call: ToolCall, ctx: ToolCallContext) -> ToolOutput:
    tool = registry.get(call.name)
    if tool is None:
        return ToolOutput(f"Tool not found: {call.name}", is_error=True)
    try:
        args = json.loads(call.args_json or "{}")
    except ValueError as exc:
        return ToolOutput(f"invalid arguments for {call.name}: {exc}", is_error=True)
    if not isinstance(args, dict):
        return ToolOutput(f"invalid arguments for {call.name}: not a JSON object", is_error=True)
    try:
        return await tool.run(args, ctx)
    except Exception as exc:
        log.warning("tool failed", tool=call.name, exc_info=exc)
        return ToolOutput(f"tool failed: {exc or type(exc).__name__}", is_error=True)


def tool_context(chat_id: uuid.UUID, owner_id: uuid.UUID) -> Callable[[ToolCall], ToolCallContext]:
    return lambda call: ToolCallContext(chat_id=chat_id, owner_id=owner_id, tool_call_id=call.id)
