"""MCP server configuration wire types (``/api/experimental/mcp/servers``)."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import ClassVar

from chatd.sdk.base import RequestModel, StrictBool, WireModel


class MCPTransport(StrEnum):
    streamable_http = "streamable_http"
    sse = "sse"


class MCPAuthType(StrEnum):
    none = "none"
    oauth2 = "oauth2"
    api_key = "api_key"
    custom_headers = "custom_headers"


class MCPAvailability(StrEnum):
    force_on = "force_on"
    default_on = "default_on"
    default_off = "default_off"


class MCPServerConfig(WireModel):
    """An MCP server as the API shows it: secrets only as ``has_*`` flags, and the auth
    settings (client id, URLs, header name) only to site owners."""

    id: uuid.UUID
    display_name: str
    slug: str
    description: str
    icon_url: str
    transport: str
    url: str
    auth_type: str
    oauth2_client_id: str | None = None
    has_oauth2_secret: bool
    oauth2_auth_url: str | None = None
    oauth2_token_url: str | None = None
    oauth2_revocation_url: str | None = None
    oauth2_scopes: str | None = None
    api_key_header: str | None = None
    has_api_key: bool
    has_custom_headers: bool
    tool_allow_list: list[str]
    tool_deny_list: list[str]
    availability: str
    enabled: bool
    model_intent: bool
    allow_in_plan_mode: bool
    created_at: dt.datetime
    updated_at: dt.datetime
    # Whether the caller can use the server without connecting an account first.
    auth_connected: bool


class CreateMCPServerConfigRequest(RequestModel):
    required_fields: ClassVar[frozenset[str]] = frozenset(
        {"display_name", "slug", "transport", "url", "auth_type"}
    )

    display_name: str = ""
    slug: str = ""
    description: str | None = None
    icon_url: str | None = None
    transport: str = ""
    url: str = ""
    auth_type: str = ""
    oauth2_client_id: str | None = None
    oauth2_client_secret: str | None = None
    oauth2_auth_url: str | None = None
    oauth2_token_url: str | None = None
    oauth2_revocation_url: str | None = None
    oauth2_scopes: str | None = None
    api_key_header: str | None = None
    api_key_value: str | None = None
    custom_headers: dict[str, str] | None = None
    tool_allow_list: list[str] | None = None
    tool_deny_list: list[str] | None = None
    # Optional here (``default_off`` when absent), unlike the reference, which requires it.
    availability: str | None = None
    enabled: StrictBool | None = None
    model_intent: StrictBool | None = None
    allow_in_plan_mode: StrictBool | None = None


class UpdateMCPServerConfigRequest(RequestModel):
    """Absent fields keep their value; a secret set to ``""`` (or ``{}`` for the headers)
    is removed."""

    display_name: str | None = None
    slug: str | None = None
    description: str | None = None
    icon_url: str | None = None
    transport: str | None = None
    url: str | None = None
    auth_type: str | None = None
    oauth2_client_id: str | None = None
    oauth2_client_secret: str | None = None
    oauth2_auth_url: str | None = None
    oauth2_token_url: str | None = None
    oauth2_revocation_url: str | None = None
    oauth2_scopes: str | None = None
    api_key_header: str | None = None
    api_key_value: str | None = None
    custom_headers: dict[str, str] | None = None
    tool_allow_list: list[str] | None = None
    tool_deny_list: list[str] | None = None
    availability: str | None = None
    enabled: StrictBool | None = None
    model_intent: StrictBool | None = None
    allow_in_plan_mode: StrictBool | None = None
