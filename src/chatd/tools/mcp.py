"""Tools of the chat's MCP servers (engine-behaviour §17).

At the start of a turn every server the chat names is asked for its tools, each within
:data:`LIST_TIMEOUT`; one that fails (down, slow, refusing, answering garbage) is skipped with
a warning and the turn goes on without it. A tool is offered as ``<slug>__<tool>`` with the
server's input schema, after the allow list (when set) and the deny list. A call opens its own
session to the server, calls the tool by its original name within :data:`CALL_TIMEOUT`, and
turns the answer into a tool result; any failure is an error result the model reads.

A server may say during a call that its tool list changed (``notifications/tools/list_changed``);
:class:`ListChanges` collects which servers did, so the turn lists them again before its next
step.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx2
import structlog
from mcp import ClientSession
from mcp import types as mcp_types
from mcp.client.sse import sse_client
from mcp.client.streamable_http import streamable_http_client

from chatd.tools.mcp_results import convert, input_schema
from chatd.tools.registry import Tool, ToolCallContext, ToolOutput

log = structlog.get_logger(__name__)

LIST_TIMEOUT = 10.0
CALL_TIMEOUT = 60.0
SEPARATOR = "__"
MAX_PAGES = 20
CLIENT_NAME = "chatd"


@dataclass(frozen=True)
class MCPServer:
    """What connecting to one configured server takes (its secrets already opened)."""

    id: uuid.UUID
    slug: str
    url: str
    transport: str
    headers: dict[str, str] = field(default_factory=dict)
    allow: tuple[str, ...] = ()
    deny: tuple[str, ...] = ()

    def offers(self, tool: str) -> bool:
        """The allow list, when set, decides; else everything not denied."""
        if self.allow:
            return tool in self.allow
        return tool not in self.deny


@dataclass
class ListChanges:
    """The servers that said their tool list changed (since the turn last looked)."""

    servers: set[uuid.UUID] = field(default_factory=set)

    def handler(self, server: MCPServer) -> Any:
        async def on_message(message: Any) -> None:
            if isinstance(message, mcp_types.ToolListChangedNotification):
                self.servers.add(server.id)

        return on_message

    def take(self) -> set[uuid.UUID]:
        taken, self.servers = self.servers, set()
        return taken


@asynccontextmanager
async def _session(
    server: MCPServer, http_seconds: float, changes: ListChanges | None = None
) -> AsyncIterator[ClientSession]:
    info = mcp_types.Implementation(name=CLIENT_NAME, version="1")
    handler = changes.handler(server) if changes is not None else None
    if server.transport == "sse":
        async with (
            sse_client(server.url, headers=server.headers, timeout=http_seconds) as (read, write),
            ClientSession(read, write, client_info=info, message_handler=handler) as session,
        ):
            await session.initialize()
            yield session
        return
    http = httpx2.AsyncClient(
        headers=server.headers, timeout=httpx2.Timeout(http_seconds), follow_redirects=True
    )
    async with (
        http,
        streamable_http_client(server.url, http_client=http) as (read, write),
        ClientSession(read, write, client_info=info, message_handler=handler) as session,
    ):
        await session.initialize()
        yield session


async def _list(server: MCPServer, seconds: float) -> list[mcp_types.Tool]:
    tools: list[mcp_types.Tool] = []
    async with asyncio.timeout(seconds), _session(server, seconds) as session:
        cursor: str | None = None
        for _ in range(MAX_PAGES):
            params = mcp_types.PaginatedRequestParams(cursor=cursor) if cursor else None
            page = await session.list_tools(params=params)
            tools.extend(page.tools)
            cursor = page.next_cursor
            if not cursor:
                break
    return tools


def _runner(server: MCPServer, original: str, timeout: float, changes: ListChanges | None) -> Any:
    async def run(args: dict[str, Any], ctx: ToolCallContext) -> ToolOutput:
        try:
            async with asyncio.timeout(timeout), _session(server, timeout, changes) as session:
                result = await session.call_tool(original, args, read_timeout_seconds=timeout)
        except TimeoutError:
            return ToolOutput(
                f"MCP server {server.slug} did not answer within {timeout:g} s", is_error=True
            )
        except Exception as exc:
            log.warning("mcp tool call failed", server=server.slug, tool=original, exc_info=exc)
            return ToolOutput(
                f"MCP server {server.slug} failed: {exc or type(exc).__name__}", is_error=True
            )
        return await convert(result, ctx)

    return run


async def server_tools(
    server: MCPServer,
    *,
    list_timeout: float = LIST_TIMEOUT,
    call_timeout: float = CALL_TIMEOUT,
    changes: ListChanges | None = None,
) -> list[Tool]:
    """The server's offered tools; ``[]`` (with a warning) when it cannot be listed. Calls
    note in ``changes`` when the server says its tool list changed."""
    try:
        listed = await _list(server, list_timeout)
    except Exception as exc:  # down, slow, or not speaking MCP: the turn goes on without it
        log.warning("mcp server skipped", server=server.slug, url=server.url, error=repr(exc))
        return []
    tools: list[Tool] = []
    for item in listed:
        if not item.name or not server.offers(item.name):
            continue
        tools.append(
            Tool(
                name=f"{server.slug}{SEPARATOR}{item.name}",
                description=item.description or "",
                input_schema=input_schema(item.input_schema),
                run=_runner(server, item.name, call_timeout, changes),
                mcp_server_config_id=server.id,
            )
        )
    return tools


async def all_tools(
    servers: Iterable[MCPServer], changes: ListChanges | None = None, **timeouts: float
) -> list[Tool]:
    """Every server's tools, listed at once, in the servers' order."""
    listed = await asyncio.gather(*(server_tools(s, changes=changes, **timeouts) for s in servers))
    return [tool for tools in listed for tool in tools]
