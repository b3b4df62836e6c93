"""The MCP servers a turn connects to (engine-behaviour §17): those the chat names that are
still enabled, on a plan turn only those allowed in plan mode, with their auth headers."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import structlog

from chatd.sdk.mcp import MCPAuthType
from chatd.secretbox import SecretBox, SecretError
from chatd.store import mcp_servers as mq
from chatd.store.sql import Connection
from chatd.tools.mcp import MCPServer

log = structlog.get_logger(__name__)


async def chat_mcp_servers(
    conn: Connection, chat: Mapping[Any, Any], secrets: SecretBox, *, plan_mode: bool
) -> list[MCPServer]:
    ids = [uuid.UUID(str(v)) for v in chat["mcp_server_ids"] or []]
    servers: list[MCPServer] = []
    for row in await mq.get_configs(conn, ids):
        if not row["enabled"] or (plan_mode and not row["allow_in_plan_mode"]):
            continue
        if row["auth_type"] == MCPAuthType.oauth2.value:
            # The user's OAuth2 token is needed and none is kept yet.
            log.warning("mcp server skipped: no user token", server=row["slug"])
            continue
        try:
            headers = mq.auth_headers(secrets, row)
        except (SecretError, ValueError) as exc:
            log.warning(
                "mcp server skipped: its secrets do not open", server=row["slug"], error=repr(exc)
            )
            continue
        servers.append(
            MCPServer(
                id=row["id"],
                slug=row["slug"],
                url=row["url"],
                transport=row["transport"],
                headers=headers,
                allow=tuple(row["tool_allow_list"] or ()),
                deny=tuple(row["tool_deny_list"] or ()),
            )
        )
    return servers
