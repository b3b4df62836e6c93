"""The tools of the workspace's MCP servers (engine-behaviour §5.2, §17): those its
``.mcp.json`` declares, which its agent runs and proxies (``mcp_tools``, ``mcp_call``).

A listed tool is offered as ``<server>__<tool>`` with the server's input schema; a name a
provider would refuse (other than letters, digits, ``_`` and ``-``, or over 64 characters)
is skipped, and so is a server the agent could not list. A call goes through the chat's
workspace agent; its answer is converted as an MCP tool's answer
(:func:`chatd.tools.mcp_results.convert`), the text cut at :data:`caps.MCP_TEXT_MAX`.

:class:`~chatd.tools.workspace_mcp_cache.WorkspaceMCPCache` keeps a chat's non-empty listing
by the agent it came from, so the chat's later turns on that agent do not list again.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

import structlog
from mcp import types as mcp_types
from pydantic import ValidationError

from chatd.agent import protocol
from chatd.tools import caps
from chatd.tools.agent_calls import run_op
from chatd.tools.mcp import SEPARATOR
from chatd.tools.mcp_results import convert, input_schema
from chatd.tools.registry import Tool, ToolCallContext, ToolOutput

log = structlog.get_logger(__name__)

NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")
CALL_TIMEOUT = 60.0
# The agent gives up on a call after CALL_TIMEOUT; its answer saying so gets this long more.
CALL_GRACE = 5.0


@dataclass(frozen=True)
class Listing:
    """The tools the agent listed; ``complete`` unless a server was still starting."""

    tools: list[Tool]
    complete: bool


def listed_tools(answer: dict[str, Any]) -> Listing:
    """The tools of an ``mcp_tools`` answer, in the servers' order."""
    tools: dict[str, Tool] = {}
    complete = True
    servers = answer.get("servers")
    if answer.get("error"):
        log.warning("workspace .mcp.json unusable", error=str(answer["error"]))
    for entry in servers if isinstance(servers, list) else []:
        if not isinstance(entry, dict):
            continue
        server = str(entry.get("name") or "")
        if entry.get("starting"):
            complete = False
        if entry.get("error") is not None:
            log.warning("workspace mcp server skipped", server=server, error=str(entry["error"]))
            continue
        if not NAME.fullmatch(server):
            log.warning("workspace mcp server skipped: its name is not usable", server=server)
            continue
        listed = entry.get("tools")
        for item in listed if isinstance(listed, list) else []:
            tool = _tool(server, item)
            if tool is not None and tool.name not in tools:
                tools[tool.name] = tool
    return Listing(list(tools.values()), complete)


def _tool(server: str, item: Any) -> Tool | None:
    if not isinstance(item, dict):
        return None
    original = str(item.get("name") or "")
    name = f"{server}{SEPARATOR}{original}"
    if not NAME.fullmatch(original) or not NAME.fullmatch(name):
        log.warning("workspace mcp tool skipped: its name is not usable", tool=name)
        return None
    return Tool(
        name=name,
        description=str(item.get("description") or ""),
        input_schema=input_schema(item.get("input_schema")),
        run=_runner(server, original),
        workspace_mcp=True,
    )


def _runner(server: str, original: str) -> Any:
    async def run(args: dict[str, Any], ctx: ToolCallContext) -> ToolOutput:
        request = {
            "server": server,
            "tool": original,
            "arguments": args,
            "timeout_ms": round(CALL_TIMEOUT * 1000),
        }
        answer = await run_op(ctx, protocol.MCP_CALL, request, within=CALL_TIMEOUT + CALL_GRACE)
        try:
            result = mcp_types.CallToolResult.model_validate(answer.get("result"))
        except ValidationError:
            return ToolOutput(f"MCP server {server} gave no tool result", is_error=True)
        output = await convert(result, ctx)
        text, cut = caps.cut(output.text, caps.MCP_TEXT_MAX)
        if cut:
            text += f"\n[cut: the result is over {caps.MCP_TEXT_MAX // caps.KIB} KiB]"
        return replace(output, text=text)

    return run
