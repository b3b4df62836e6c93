"""Validation rules of create chat (api-behaviour §6.2), some shared with update (§6.8).

Each check raises :class:`ApiError` with the reference's status and message; the route
calls them in the reference's order, so the first failure wins.
"""

from __future__ import annotations

import uuid
from typing import Any

from chatd.api.errors import ApiError
from chatd.authz import Actor
from chatd.sdk.chats import ChatClientType, ChatPlanMode, DynamicTool
from chatd.store.mcp_servers import unusable_ids
from chatd.store.model_configs import default_model_config, get_model_config
from chatd.store.sql import Connection
from chatd.store.workspaces import get_workspace

MAX_SYSTEM_PROMPT = 10_000
MAX_DYNAMIC_TOOLS = 250
NIL_UUID = uuid.UUID(int=0)
WORKSPACE_NOT_FOUND = "Workspace not found or you do not have access to this resource"


def check_system_prompt(prompt: str) -> None:
    size = len(prompt.encode())
    if size > MAX_SYSTEM_PROMPT:
        raise ApiError(
            400,
            "System prompt exceeds maximum length.",
            f"System prompt must be at most {MAX_SYSTEM_PROMPT} characters, got {size}.",
        )


async def check_workspace(
    conn: Connection,
    actor: Actor,
    workspace_id: uuid.UUID,
    organization_id: uuid.UUID,
    wrong_org: str,
) -> None:
    """The caller may use the workspace (its owner, or a site owner) and it is in the org."""
    workspace = await get_workspace(conn, workspace_id)
    if workspace is None or not (workspace["owner_id"] == actor.user_id or actor.is_owner):
        raise ApiError(400, WORKSPACE_NOT_FOUND)
    if workspace["organization_id"] != organization_id:
        raise ApiError(400, wrong_org)


async def resolve_model_config(conn: Connection, requested: uuid.UUID | None) -> uuid.UUID:
    """The requested model config, else the deployment default (§5.4)."""
    if requested is not None:
        if requested == NIL_UUID:
            raise ApiError(400, "Invalid model config ID.")
        if await get_model_config(conn, requested) is None:
            raise ApiError(
                400, "Invalid model config ID.", f"Model config {requested} does not exist."
            )
        return requested
    default = await default_model_config(conn)
    if default is None:
        raise ApiError(400, "No default chat model config is configured.")
    config_id: uuid.UUID = default["id"]
    return config_id


def check_plan_mode(value: str) -> str | None:
    """``"plan"`` or ``""`` (off, stored as NULL)."""
    if value not in ("", ChatPlanMode.plan.value):
        raise ApiError(400, "Invalid plan_mode value.")
    return value or None


async def check_mcp_server_ids(conn: Connection, ids: list[uuid.UUID]) -> None:
    """Every id names an enabled MCP server configuration."""
    bad = await unusable_ids(conn, ids)
    if bad:
        raise ApiError(
            400,
            "One or more MCP server IDs are invalid.",
            "Invalid IDs: " + ", ".join(str(i) for i in bad),
        )


def check_dynamic_tools(tools: list[DynamicTool]) -> list[dict[str, Any]]:
    """The declared client-side tools as stored on the chat."""
    if len(tools) > MAX_DYNAMIC_TOOLS:
        raise ApiError(
            400, "Too many dynamic tools.", f"Maximum {MAX_DYNAMIC_TOOLS} dynamic tools per chat."
        )
    seen: set[str] = set()
    for tool in tools:
        if not tool.name.strip():
            raise ApiError(400, "Dynamic tool name must not be empty.")
        if tool.name in seen:
            raise ApiError(
                400, "Duplicate dynamic tool name.", f'Tool "{tool.name}" appears more than once.'
            )
        seen.add(tool.name)
    return [tool.model_dump(mode="json", exclude_none=True) for tool in tools]


def check_client_type(value: str) -> str:
    if value == "":
        return ChatClientType.api.value
    if value not in (ChatClientType.ui.value, ChatClientType.api.value):
        raise ApiError(400, "Invalid client_type.", f'got "{value}", want one of [ui api]')
    return value
