"""MCP server configurations: site owners manage them; members see the enabled ones.

Secrets (an OAuth2 client secret, an API key's value, custom headers) are taken in plain text,
sealed by the store, and never answered: a configuration shows them as ``has_*`` flags. Every
change is audited in its own transaction, naming the fields changed, never a secret.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlsplit, urlunsplit

from fastapi import APIRouter, Request, Response

from chatd.api import mcp_input
from chatd.api import provider_input as check
from chatd.api.audit import audited_write
from chatd.api.deps import DB, CurrentActor
from chatd.api.errors import ERROR_RESPONSES, ApiError, not_found
from chatd.api.mcp_input import MCPState
from chatd.api.openapi import json_body, uuid_path
from chatd.api.params import read_json
from chatd.sdk.audit import AuditAction, ResourceType
from chatd.sdk.errors import ValidationError
from chatd.sdk.mcp import (
    CreateMCPServerConfigRequest,
    MCPAvailability,
    MCPServerConfig,
    UpdateMCPServerConfigRequest,
)
from chatd.store import mcp_servers as mq
from chatd.store import mcp_user_tokens as tokens

router = APIRouter(prefix="/api/experimental", tags=["MCP"], responses=ERROR_RESPONSES)

BAD_ID = "Invalid MCP server config ID."
SLUG_TAKEN = "An MCP server with this slug already exists."
ConfigPath = Annotated[str, uuid_path("MCP server config ID.")]


def _secrets(
    body: CreateMCPServerConfigRequest | UpdateMCPServerConfigRequest,
    problems: list[ValidationError],
) -> dict[str, Any]:
    """The secrets the request sets (``""`` / ``{}``: removes), cleaned."""
    out: dict[str, Any] = {}
    if body.oauth2_client_secret is not None:
        out["oauth2_client_secret"] = mcp_input.clean_secret(
            "oauth2_client_secret", body.oauth2_client_secret, problems
        )
    if body.api_key_value is not None:
        out["api_key_value"] = mcp_input.clean_secret("api_key_value", body.api_key_value, problems)
    if body.custom_headers is not None:
        out["custom_headers"] = mcp_input.clean_headers(body.custom_headers, problems)
    return out


def _audited(values: dict[str, Any]) -> list[str]:
    """The names of the fields set (a secret's value is never recorded)."""
    return sorted(values)


@router.get("/mcp/servers", response_model=list[MCPServerConfig], summary="List MCP server configs")
async def list_servers(db: DB, actor: CurrentActor) -> list[MCPServerConfig]:
    admin = actor.is_admin()
    async with db.read() as conn:
        rows = await mq.list_configs(conn, enabled_only=not admin)
        connected = await tokens.connected_ids(conn, actor.user_id)
    return [mq.config_view(row, admin=admin, connected=row["id"] in connected) for row in rows]


@router.get(
    "/mcp/servers/{server}", response_model=MCPServerConfig, summary="Get an MCP server config"
)
async def get_server(server: ConfigPath, db: DB, actor: CurrentActor) -> MCPServerConfig:
    config_id = check.parse_id(server, BAD_ID)
    admin = actor.is_admin()
    async with db.read() as conn:
        row = await mq.get_config(conn, config_id)
        connected = await tokens.connected_ids(conn, actor.user_id)
    if row is None or not (admin or row["enabled"]):
        raise not_found()
    return mq.config_view(row, admin=admin, connected=config_id in connected)


@router.post(
    "/mcp/servers",
    status_code=201,
    response_model=MCPServerConfig,
    summary="Create an MCP server config",
    openapi_extra=json_body(CreateMCPServerConfigRequest),
)
async def create_server(request: Request, db: DB, actor: CurrentActor) -> MCPServerConfig:
    check.require_admin(actor)
    body = await read_json(request, CreateMCPServerConfigRequest)
    problems: list[ValidationError] = []
    secrets = _secrets(body, problems)
    state = MCPState(
        display_name=body.display_name,
        slug=body.slug,
        description=body.description or "",
        icon_url=body.icon_url or "",
        transport=body.transport,
        url=body.url,
        auth_type=body.auth_type,
        oauth2_client_id=body.oauth2_client_id or "",
        oauth2_auth_url=body.oauth2_auth_url or "",
        oauth2_token_url=body.oauth2_token_url or "",
        oauth2_revocation_url=body.oauth2_revocation_url or "",
        oauth2_scopes=body.oauth2_scopes or "",
        api_key_header=body.api_key_header or "",
        tool_allow_list=body.tool_allow_list or [],
        tool_deny_list=body.tool_deny_list or [],
        availability=body.availability or MCPAvailability.default_off.value,
        has_api_key=bool(secrets.get("api_key_value")),
        has_custom_headers=bool(secrets.get("custom_headers")),
        problems=problems,
    )
    mcp_input.check(state)
    values = {
        **state.columns(),
        **secrets,
        "enabled": bool(body.enabled),
        "model_intent": bool(body.model_intent),
        "allow_in_plan_mode": bool(body.allow_in_plan_mode),
        "created_by": actor.user_id,
    }
    async with audited_write(
        db,
        request,
        AuditAction.create,
        ResourceType.mcp_server_config,
        user_id=actor.user_id,
        status_code=201,
    ) as (conn, change):
        try:
            row = await mq.create_config(conn, db.now(), values, db.secrets)
        except mq.SlugExists:
            raise ApiError(409, SLUG_TAKEN) from None
        change.resource_id = row["id"]
        change.resource_target = row["slug"]
        change.fields = {
            "enabled": row["enabled"],
            "auth_type": row["auth_type"],
            "url": logged_url(row["url"]),
            "secrets": sorted(k for k, v in secrets.items() if v),
        }
    return mq.config_view(row, admin=True)


def logged_url(url: str) -> str:
    """The URL as the audit log keeps it: without credentials, query or fragment, where a
    token may ride."""
    parts = urlsplit(url)
    try:
        port = parts.port
    except ValueError:
        port = None
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    netloc = f"{host}:{port}" if port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _merged(
    row: dict[str, Any], body: UpdateMCPServerConfigRequest, secrets: dict[str, Any]
) -> MCPState:
    def pick(name: str) -> Any:
        value = getattr(body, name)
        return row[name] if value is None else value

    def has(name: str) -> bool:
        return bool(secrets[name]) if name in secrets else row[name] != ""

    return MCPState(
        **{name: pick(name) for name in MCPState.__dataclass_fields__ if name in row},
        has_api_key=has("api_key_value"),
        has_custom_headers=has("custom_headers"),
    )


@router.patch(
    "/mcp/servers/{server}",
    response_model=MCPServerConfig,
    summary="Update an MCP server config",
    openapi_extra=json_body(UpdateMCPServerConfigRequest),
)
async def update_server(
    server: ConfigPath, request: Request, db: DB, actor: CurrentActor
) -> MCPServerConfig:
    check.require_admin(actor)
    config_id = check.parse_id(server, BAD_ID)
    body = await read_json(request, UpdateMCPServerConfigRequest)
    async with audited_write(
        db,
        request,
        AuditAction.write,
        ResourceType.mcp_server_config,
        user_id=actor.user_id,
        status_code=200,
    ) as (conn, change):
        row = await mq.lock_config(conn, config_id)
        if row is None:
            raise not_found()
        problems: list[ValidationError] = []
        secrets = _secrets(body, problems)
        state = _merged(row, body, secrets)
        state.problems = problems
        mcp_input.check(state)
        set_fields = body.model_dump(exclude_none=True)
        values: dict[str, Any] = {
            **{k: v for k, v in state.columns().items() if k in set_fields},
            **secrets,
            **{
                flag: set_fields[flag]
                for flag in ("enabled", "model_intent", "allow_in_plan_mode")
                if flag in set_fields
            },
        }
        try:
            row = await mq.update_config(conn, db.now(), config_id, values, db.secrets)
        except mq.SlugExists:
            raise ApiError(409, SLUG_TAKEN) from None
        change.resource_id = config_id
        change.resource_target = row["slug"]
        change.fields = {"fields": _audited(values)}
        connected = config_id in await tokens.connected_ids(conn, actor.user_id)
    return mq.config_view(row, admin=True, connected=connected)


@router.delete(
    "/mcp/servers/{server}",
    status_code=204,
    response_model=None,
    response_class=Response,
    summary="Delete an MCP server config",
)
async def delete_server(
    server: ConfigPath, request: Request, db: DB, actor: CurrentActor
) -> Response:
    check.require_admin(actor)
    config_id = check.parse_id(server, BAD_ID)
    async with audited_write(
        db,
        request,
        AuditAction.delete,
        ResourceType.mcp_server_config,
        user_id=actor.user_id,
        status_code=204,
    ) as (conn, change):
        row = await mq.lock_config(conn, config_id)
        if row is None or not await mq.delete_config(conn, config_id):
            raise not_found()
        change.resource_id = config_id
        change.resource_target = row["slug"]
    return Response(status_code=204)
