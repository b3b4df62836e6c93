"""The MCP servers a turn connects to (engine-behaviour §17): those the chat names that are
still enabled, on a plan turn only those allowed in plan mode, with their auth headers.

An ``oauth2`` server is reached with the chat owner's own token (``Authorization:
<token_type or Bearer> <access_token>``); without one the server is skipped with a warning. A
token that has expired (or is about to) is renewed with the refresh grant before the turn
connects, and the new token saved; when that fails the server is skipped.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import structlog

from chatd.engine.toolset import Toolset
from chatd.sdk.mcp import MCPAuthType
from chatd.secretbox import SecretBox, SecretError
from chatd.settings import Settings
from chatd.store import mcp_servers as mq
from chatd.store import mcp_user_tokens as tokens
from chatd.store.db import Database
from chatd.store.mcp_user_tokens import OAuth2Token
from chatd.store.sql import Connection
from chatd.tools import mcp_oauth2 as oauth2
from chatd.tools.mcp import ListChanges, MCPServer, all_tools, server_tools
from chatd.tools.registry import Tool

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class ChatServer:
    """A server the turn connects to; for an ``oauth2`` one, the owner's token (sent, or
    refreshed first when it is due) and the client that refreshes it."""

    server: MCPServer
    oauth2: tuple[oauth2.OAuth2Client, uuid.UUID, OAuth2Token] | None = None


def _server(row: Mapping[str, Any], headers: dict[str, str]) -> MCPServer:
    return MCPServer(
        id=row["id"],
        slug=row["slug"],
        url=row["url"],
        transport=row["transport"],
        headers=headers,
        allow=tuple(row["tool_allow_list"] or ()),
        deny=tuple(row["tool_deny_list"] or ()),
    )


async def _oauth2(
    conn: Connection, row: Mapping[str, Any], owner_id: uuid.UUID, secrets: SecretBox
) -> ChatServer | None:
    token = await tokens.get_token(conn, secrets, row["id"], owner_id)
    if token is None:
        log.warning("mcp server skipped: no user token", server=row["slug"])
        return None
    client = oauth2.OAuth2Client.of(row, mq.open_secret(secrets, row, "oauth2_client_secret"))
    return ChatServer(_server(row, {}), oauth2=(client, owner_id, token))


async def chat_mcp_servers(
    conn: Connection,
    chat: Mapping[Any, Any],
    secrets: SecretBox,
    *,
    plan_mode: bool,
) -> list[ChatServer]:
    ids = [uuid.UUID(str(v)) for v in chat["mcp_server_ids"] or []]
    servers: list[ChatServer] = []
    for row in await mq.get_configs(conn, ids):
        if not row["enabled"] or (plan_mode and not row["allow_in_plan_mode"]):
            continue
        try:
            if row["auth_type"] == MCPAuthType.oauth2.value:
                found = await _oauth2(conn, row, chat["owner_id"], secrets)
                if found is not None:
                    servers.append(found)
                continue
            headers = mq.auth_headers(secrets, row)
        except (SecretError, ValueError) as exc:
            log.warning(
                "mcp server skipped: its secrets do not open", server=row["slug"], error=repr(exc)
            )
            continue
        servers.append(ChatServer(_server(row, headers)))
    return servers


async def _authorized(db: Database, chat_server: ChatServer) -> MCPServer | None:
    """The server with the owner's token (refreshed and saved when due), or None (a
    warning: the token could not be refreshed)."""
    server = chat_server.server
    if chat_server.oauth2 is None:
        return server
    client, user_id, token = chat_server.oauth2
    if token.expired(db.now(), oauth2.REFRESH_LEEWAY):
        try:
            token = await oauth2.refresh_token(client, token, db.now())
        except oauth2.OAuth2Error as exc:
            # Another turn (here or on another replica) may have refreshed it meanwhile, with
            # the refresh token this one then found spent: its token serves as well.
            async with db.read() as conn:
                saved = await tokens.get_token(conn, db.secrets, server.id, user_id)
            if saved is None or saved == token or saved.expired(db.now()):
                log.warning(
                    "mcp server skipped: its token could not be refreshed",
                    server=server.slug,
                    error=str(exc),
                )
                return None
            token = saved
        else:
            async with db.write() as conn:
                await tokens.save_token(conn, db.now(), server.id, user_id, token, db.secrets)
    return replace(server, headers={**server.headers, "Authorization": token.authorization()})


@dataclass
class TurnMCP:
    """The MCP servers a turn connected to, and the tools they offered."""

    servers: list[MCPServer]
    tools: list[Tool]
    list_timeout: float
    call_timeout: float
    changes: ListChanges = field(default_factory=ListChanges)

    async def refreshed(self, toolset: Toolset) -> Toolset:
        """``toolset`` with the tools of every server that said its list changed listed
        again (a server that now fails to list offers none)."""
        changed = self.changes.take()
        for server in self.servers:
            if server.id not in changed:
                continue
            log.info("mcp tool list changed: listing again", server=server.slug)
            tools = await server_tools(
                server,
                list_timeout=self.list_timeout,
                call_timeout=self.call_timeout,
                changes=self.changes,
            )
            toolset = toolset.without_mcp_server(server.id).with_tools(tools)
        return toolset


async def connect_servers(db: Database, servers: list[ChatServer], settings: Settings) -> TurnMCP:
    """The chat's servers and their tools, each listed within ``mcp_list_timeout`` (tokens
    refreshed first where due); a call gets ``mcp_call_timeout``."""
    ready = [s for s in [await _authorized(db, c) for c in servers] if s is not None]
    mcp = TurnMCP(ready, [], settings.mcp_list_timeout, settings.mcp_call_timeout)
    if ready:
        mcp.tools = await all_tools(
            ready, mcp.changes, list_timeout=mcp.list_timeout, call_timeout=mcp.call_timeout
        )
    return mcp
