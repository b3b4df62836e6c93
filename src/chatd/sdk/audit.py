"""Audit log wire types, after Coder's ``GET /api/v2/audit`` (the fields chatd records).

chatd adds ``user_id`` (the actor; Coder embeds the whole user) and ``success``; the actions
and resource types are Coder's names where Coder has one (``chat_provider`` and
``chat_model_config`` are chatd's).
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

from pydantic import JsonValue

from chatd.sdk.base import WireModel


class AuditAction(StrEnum):
    create = "create"
    write = "write"
    delete = "delete"
    login = "login"  # a failed one too, with status_code 401
    logout = "logout"


class ResourceType(StrEnum):
    user = "user"
    api_key = "api_key"
    chat_provider = "chat_provider"
    chat_model_config = "chat_model_config"
    template = "template"
    workspace = "workspace"
    github_token = "github_token"  # a user's own GitHub token (chatd's)
    mcp_server_config = "mcp_server_config"


class AuditLog(WireModel):
    id: uuid.UUID
    time: dt.datetime
    # Who acted: absent for a login attempt with an unknown name, or the first start's admin.
    user_id: uuid.UUID | None = None
    ip: str
    user_agent: str
    action: AuditAction
    resource_type: ResourceType
    # The resource changed; for an API key, the user it belongs to (key ids are not UUIDs).
    resource_id: uuid.UUID | None = None
    # What a person calls the resource: a username, a key id, a provider or model name.
    resource_target: str
    status_code: int
    success: bool
    additional_fields: dict[str, JsonValue]


class AuditLogResponse(WireModel):
    audit_logs: list[AuditLog]
    count: int  # rows in the log
