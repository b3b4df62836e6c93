"""Calling the chat's workspace agent from a tool: failures become :class:`ToolError`."""

from __future__ import annotations

import asyncio
from typing import Any

from chatd.tools.registry import ToolCallContext, ToolError
from chatd.workspace.conn import AgentConn, AgentError

# How long one operation may take unless its tool says otherwise (a process wait adds its own).
CALL_TIMEOUT = 60.0


async def connect(ctx: ToolCallContext) -> AgentConn:
    return await ctx.scope().workspace.conn()


async def call(
    conn: AgentConn, op: str, args: dict[str, Any], *, within: float = CALL_TIMEOUT
) -> dict[str, Any]:
    """``op`` on the agent, given up after ``within`` seconds."""
    try:
        async with asyncio.timeout(within):
            return await conn.call(op, args)
    except AgentError as exc:
        raise ToolError(exc.message) from None
    except TimeoutError:
        raise ToolError(f"the workspace agent did not answer within {within:g} s") from None


async def run_op(
    ctx: ToolCallContext, op: str, args: dict[str, Any], *, within: float = CALL_TIMEOUT
) -> dict[str, Any]:
    """Connect (see :meth:`~chatd.tools.workspace_access.WorkspaceAccess.conn`) and call."""
    return await call(await connect(ctx), op, args, within=within)
