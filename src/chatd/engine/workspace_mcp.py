"""The workspace's MCP tools at the start of a turn (engine-behaviour §5.2, §5.3 item 6, §5.4).

A turn of a chat with a workspace asks the workspace agent for the tools of its ``.mcp.json``
servers (op ``mcp_tools``) within ``settings.workspace_mcp_timeout`` (5 s): the agent is told
to answer a little before that, with the servers it could list by then. Not on plan turns,
and not for explore sub-agents (:func:`offers_workspace_mcp`). A non-empty listing is cached
per chat by agent id (:class:`~chatd.tools.workspace_mcp_cache.WorkspaceMCPCache`); an empty one,
or one with a server still starting, is asked for again by the next turn. Nothing here fails
a turn: without an answer the turn goes on without these tools.
"""

from __future__ import annotations

import asyncio

import structlog

from chatd.agent import protocol
from chatd.engine.types import TurnContext
from chatd.tools.registry import Tool, ToolError
from chatd.tools.scope import ChatFacts
from chatd.tools.workspace_access import WorkspaceAccess
from chatd.tools.workspace_mcp import listed_tools
from chatd.workspace.conn import AgentError

log = structlog.get_logger(__name__)

# The agent answers this long (at most a tenth of the timeout) before the turn stops waiting.
ANSWER_MARGIN = 0.5


def offers_workspace_mcp(facts: ChatFacts) -> bool:
    """Whether a turn lists the workspace's MCP tools: not on plan turns (§5.2) and not for
    explore sub-agents (§5.4)."""
    return not facts.plan_mode and not facts.explores


async def workspace_mcp_tools(ctx: TurnContext, access: WorkspaceAccess) -> list[Tool]:
    """The tools of the chat's workspace MCP servers; ``[]`` when there are none or the
    agent did not answer in time."""
    if access.workspace_id is None or not access.available:
        return []
    limit = ctx.settings.workspace_mcp_timeout
    loop = asyncio.get_running_loop()
    deadline = loop.time() + limit
    try:
        async with asyncio.timeout(limit):
            conn = await access.conn(wait=limit)
            cached = ctx.workspace_mcp.get(ctx.chat_id, conn.agent_id)
            if cached is not None:
                return cached
            left = deadline - loop.time() - min(ANSWER_MARGIN, limit / 10)
            answer = await conn.call(protocol.MCP_TOOLS, {"wait_ms": max(0, round(left * 1000))})
    except (ToolError, AgentError, TimeoutError) as exc:
        reason = exc.message if isinstance(exc, ToolError | AgentError) else "timed out"
        log.info("workspace mcp tools unavailable", chat_id=str(ctx.chat_id), reason=reason)
        return []
    except Exception:  # the tools help the model; their failure must not fail the turn
        log.exception("workspace mcp tools lookup failed", chat_id=str(ctx.chat_id))
        return []
    listing = listed_tools(answer)
    if listing.complete:
        ctx.workspace_mcp.put(ctx.chat_id, conn.agent_id, listing.tools)
    return listing.tools
