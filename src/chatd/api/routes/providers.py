"""Admin configuration of chat providers and model configs, and users' own keys (§9.2-9.3).

Every change to a provider or a model config is audited in its own transaction; the audit
entry names the fields changed, never an API key.
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Request, Response

from chatd.api import provider_input as check
from chatd.api.audit import audited_write
from chatd.api.deps import DB, CurrentActor
from chatd.api.errors import ERROR_RESPONSES, ApiError, bad_request, not_found
from chatd.api.openapi import json_body, uuid_path
from chatd.api.params import read_json
from chatd.catalog import KEYLESS_PROVIDERS
from chatd.sdk.audit import AuditAction, ResourceType
from chatd.sdk.providers import (
    PROVIDER_DISPLAY_NAMES,
    PROVIDER_ORDER,
    ChatModelConfig,
    ChatProviderConfig,
    ChatProviderConfigSource,
    CreateChatModelConfigRequest,
    CreateChatProviderConfigRequest,
    UpdateChatModelConfigRequest,
    UpdateChatProviderConfigRequest,
    UpsertUserChatProviderKeyRequest,
    UserChatProviderConfig,
)
from chatd.store import model_configs as mq
from chatd.store import providers as pq
from chatd.store.sql import RowDict

router = APIRouter(prefix="/api/experimental", tags=["Chats"], responses=ERROR_RESPONSES)

BAD_PROVIDER_ID = "Invalid chat provider ID."
BAD_MODEL_CONFIG_ID = "Invalid chat model config ID."
ProviderPath = Annotated[str, uuid_path("Chat provider config ID.")]
ModelConfigPath = Annotated[str, uuid_path("Chat model config ID.")]


# --- providers ---------------------------------------------------------------------------


def _placeholder(provider: str) -> ChatProviderConfig:
    return ChatProviderConfig(
        id=uuid.UUID(int=0),
        provider=provider,
        display_name=PROVIDER_DISPLAY_NAMES[provider],
        enabled=False,
        has_api_key=False,
        central_api_key_enabled=True,
        allow_user_api_key=False,
        allow_central_api_key_fallback=False,
        source=ChatProviderConfigSource.supported,
    )


@router.get(
    "/chats/providers", response_model=list[ChatProviderConfig], summary="List chat providers"
)
async def list_providers(db: DB, actor: CurrentActor) -> list[ChatProviderConfig]:
    check.require_admin(actor)
    async with db.read() as conn:
        stored = {row["provider"]: row for row in await pq.list_providers(conn)}
    return [pq.provider_view(stored[p]) if p in stored else _placeholder(p) for p in PROVIDER_ORDER]


@router.post(
    "/chats/providers",
    status_code=201,
    response_model=ChatProviderConfig,
    summary="Create chat provider",
    openapi_extra=json_body(CreateChatProviderConfigRequest),
)
async def create_provider(request: Request, db: DB, actor: CurrentActor) -> ChatProviderConfig:
    check.require_admin(actor)
    body = await read_json(request, CreateChatProviderConfigRequest)
    provider = check.provider_name(body.provider)
    state = check.ProviderState(
        provider=provider,
        api_key=check.api_key(body.api_key or ""),
        base_url=check.base_url(body.base_url or ""),
        central_api_key_enabled=_flag(body.central_api_key_enabled, True),
        allow_user_api_key=_flag(body.allow_user_api_key, False),
        allow_central_api_key_fallback=_flag(body.allow_central_api_key_fallback, False),
    )
    state.check()
    values = {
        "provider": provider,
        "display_name": (body.display_name or "").strip() or PROVIDER_DISPLAY_NAMES[provider],
        "api_key": state.api_key,
        "base_url": state.base_url,
        "enabled": _flag(body.enabled, True),
        "central_api_key_enabled": state.central_api_key_enabled,
        "allow_user_api_key": state.allow_user_api_key,
        "allow_central_api_key_fallback": state.allow_central_api_key_fallback,
        "created_by": actor.user_id,
    }
    async with audited_write(
        db,
        request,
        AuditAction.create,
        ResourceType.chat_provider,
        user_id=actor.user_id,
        status_code=201,
    ) as (conn, change):
        try:
            row = await pq.create_provider(conn, db.now(), values, db.secrets)
        except pq.ProviderExists:
            raise ApiError(409, "Chat provider already exists.") from None
        change.resource_id = row["id"]
        change.resource_target = provider
        change.fields = {
            "enabled": values["enabled"],
            "has_api_key": state.api_key != "",
            "base_url": state.base_url,
        }
    return pq.provider_view(row)


def _audited_fields(values: dict[str, Any]) -> list[str]:
    """The names of the fields changed (so an API key's value is never recorded)."""
    return sorted(k for k in values if k not in ("created_by", "updated_by"))


def _flag(value: bool | None, default: bool) -> bool:
    return default if value is None else value


@router.patch(
    "/chats/providers/{provider_id}",
    response_model=ChatProviderConfig,
    summary="Update chat provider",
    openapi_extra=json_body(UpdateChatProviderConfigRequest),
)
async def update_provider(
    provider_id: ProviderPath, request: Request, db: DB, actor: CurrentActor
) -> ChatProviderConfig:
    check.require_admin(actor)
    pid = check.parse_id(provider_id, BAD_PROVIDER_ID)
    body = await read_json(request, UpdateChatProviderConfigRequest)
    values: dict[str, Any] = {}
    if body.display_name and body.display_name.strip():
        values["display_name"] = body.display_name.strip()
    if body.api_key is not None:
        values["api_key"] = check.api_key(body.api_key)
    if body.base_url is not None:
        values["base_url"] = check.base_url(body.base_url)
    for name in (
        "enabled",
        "central_api_key_enabled",
        "allow_user_api_key",
        "allow_central_api_key_fallback",
    ):
        if getattr(body, name) is not None:
            values[name] = getattr(body, name)
    async with audited_write(
        db,
        request,
        AuditAction.write,
        ResourceType.chat_provider,
        user_id=actor.user_id,
        status_code=200,
    ) as (conn, change):
        row = await pq.lock_provider(conn, pid)
        if row is None:
            raise not_found()
        merged = {**row, **values}
        check.ProviderState(
            provider=merged["provider"],
            api_key=merged["api_key"],
            base_url=merged["base_url"],
            central_api_key_enabled=merged["central_api_key_enabled"],
            allow_user_api_key=merged["allow_user_api_key"],
            allow_central_api_key_fallback=merged["allow_central_api_key_fallback"],
        ).check()
        row = await pq.update_provider(conn, db.now(), pid, values, db.secrets)
        change.resource_id = pid
        change.resource_target = row["provider"]
        change.fields = {"fields": _audited_fields(values)}
    return pq.provider_view(row)


@router.delete(
    "/chats/providers/{provider_id}",
    status_code=204,
    response_model=None,
    response_class=Response,
    summary="Delete chat provider",
)
async def delete_provider(
    provider_id: ProviderPath, request: Request, db: DB, actor: CurrentActor
) -> Response:
    check.require_admin(actor)
    pid = check.parse_id(provider_id, BAD_PROVIDER_ID)
    async with audited_write(
        db,
        request,
        AuditAction.delete,
        ResourceType.chat_provider,
        user_id=actor.user_id,
        status_code=204,
    ) as (conn, change):
        row = await pq.get_provider(conn, pid)
        if row is None or not await pq.delete_provider(conn, db.now(), pid):
            raise not_found()
        change.resource_id = pid
        change.resource_target = row["provider"]
    return Response(status_code=204)


# --- users' own keys ---------------------------------------------------------------------


def _user_config(row: RowDict, has_user_key: bool) -> UserChatProviderConfig:
    central_usable = row["central_api_key_enabled"] and (
        row["api_key"] != "" or row["provider"] in KEYLESS_PROVIDERS
    )
    return UserChatProviderConfig(
        provider_id=row["id"],
        provider=row["provider"],
        display_name=row["display_name"] or PROVIDER_DISPLAY_NAMES[row["provider"]],
        has_user_api_key=has_user_key,
        has_central_api_key_fallback=row["allow_central_api_key_fallback"] and central_usable,
    )


@router.get(
    "/chats/user-provider-configs",
    response_model=list[UserChatProviderConfig],
    summary="List providers that accept the user's own API key",
)
async def list_user_provider_configs(db: DB, actor: CurrentActor) -> list[UserChatProviderConfig]:
    async with db.read() as conn:
        rows = await pq.list_providers(conn, enabled_only=True)
        own = await pq.user_key_provider_ids(conn, actor.user_id)
    rows = sorted((r for r in rows if r["allow_user_api_key"]), key=_provider_rank)
    return [_user_config(row, row["id"] in own) for row in rows]


def _provider_rank(row: RowDict) -> int:
    return PROVIDER_ORDER.index(row["provider"])


@router.put(
    "/chats/user-provider-configs/{provider_id}",
    response_model=UserChatProviderConfig,
    summary="Set the user's own API key for a provider",
    openapi_extra=json_body(UpsertUserChatProviderKeyRequest),
)
async def put_user_provider_key(
    provider_id: ProviderPath, request: Request, db: DB, actor: CurrentActor
) -> UserChatProviderConfig:
    pid = check.parse_id(provider_id, BAD_PROVIDER_ID)
    body = await read_json(request, UpsertUserChatProviderKeyRequest)
    async with db.write() as conn:
        row = await pq.get_provider(conn, pid)
        if row is None:
            raise not_found()
        if not row["enabled"]:
            raise bad_request("Provider is disabled.")
        if not row["allow_user_api_key"]:
            raise bad_request("Provider does not allow user API keys.")
        key = check.api_key(body.api_key)
        if not key:
            raise bad_request("API key is required.")
        await pq.upsert_user_key(conn, db.now(), actor.user_id, pid, key, db.secrets)
    return _user_config(row, True)


@router.delete(
    "/chats/user-provider-configs/{provider_id}",
    status_code=204,
    response_model=None,
    response_class=Response,
    summary="Delete the user's own API key for a provider",
)
async def delete_user_provider_key(
    provider_id: ProviderPath, db: DB, actor: CurrentActor
) -> Response:
    pid = check.parse_id(provider_id, BAD_PROVIDER_ID)
    async with db.write() as conn:
        if await pq.get_provider(conn, pid) is None:
            raise not_found()
        await pq.delete_user_key(conn, actor.user_id, pid)
    return Response(status_code=204)


# --- model configs -----------------------------------------------------------------------


@router.get(
    "/chats/model-configs", response_model=list[ChatModelConfig], summary="List model configs"
)
async def list_model_configs(db: DB, actor: CurrentActor) -> list[ChatModelConfig]:
    async with db.read() as conn:
        rows = await mq.list_model_configs(conn, enabled_only=not actor.is_admin())
    return [mq.model_config_view(row) for row in rows]


@router.post(
    "/chats/model-configs",
    status_code=201,
    response_model=ChatModelConfig,
    summary="Create model config",
    openapi_extra=json_body(CreateChatModelConfigRequest),
)
async def create_model_config(request: Request, db: DB, actor: CurrentActor) -> ChatModelConfig:
    check.require_admin(actor)
    body = await read_json(request, CreateChatModelConfigRequest)
    provider = check.provider_name(body.provider)
    model = check.model_name(body.model)
    if body.context_limit is None or body.context_limit <= 0:
        raise bad_request("Context limit is required.", "context_limit must be greater than zero.")
    new = mq.NewModelConfig(
        provider=provider,
        model=model,
        display_name=(body.display_name or "").strip(),
        enabled=_flag(body.enabled, True),
        is_default=_flag(body.is_default, False),
        context_limit=body.context_limit,
        compression_threshold=check.compression_threshold(body.compression_threshold),
        options=check.call_options(body.model_config_),
        created_by=actor.user_id,
    )
    async with audited_write(
        db,
        request,
        AuditAction.create,
        ResourceType.chat_model_config,
        user_id=actor.user_id,
        status_code=201,
    ) as (conn, change):
        try:
            row = await mq.create_model_config(conn, db.now(), new)
        except mq.ProviderNotConfigured:
            raise bad_request("Chat provider is not configured.") from None
        except mq.ModelConfigExists:
            raise ApiError(409, "Chat model config already exists.") from None
        change.resource_id = row["id"]
        change.resource_target = f"{provider}/{model}"
        change.fields = {"is_default": row["is_default"], "enabled": row["enabled"]}
    return mq.model_config_view(row)


@router.patch(
    "/chats/model-configs/{model_config_id}",
    response_model=ChatModelConfig,
    summary="Update model config",
    openapi_extra=json_body(UpdateChatModelConfigRequest),
)
async def update_model_config(
    model_config_id: ModelConfigPath, request: Request, db: DB, actor: CurrentActor
) -> ChatModelConfig:
    check.require_admin(actor)
    cid = check.parse_id(model_config_id, BAD_MODEL_CONFIG_ID)
    body = await read_json(request, UpdateChatModelConfigRequest)
    changes: dict[str, Any] = {"updated_by": actor.user_id}
    if body.provider and body.provider.strip():
        changes["provider"] = check.provider_name(body.provider)
    for name in ("model", "display_name"):
        text = (getattr(body, name) or "").strip()
        if text:
            changes[name] = text
    if body.enabled is not None:
        changes["enabled"] = body.enabled
    if body.context_limit is not None:
        if body.context_limit <= 0:
            raise bad_request("Context limit must be greater than zero.")
        changes["context_limit"] = body.context_limit
    if body.compression_threshold is not None:
        changes["compression_threshold"] = check.compression_threshold(body.compression_threshold)
    if body.model_config_ is not None:
        changes["options"] = check.call_options(body.model_config_)
    async with audited_write(
        db,
        request,
        AuditAction.write,
        ResourceType.chat_model_config,
        user_id=actor.user_id,
        status_code=200,
    ) as (conn, change):
        try:
            row = await mq.update_model_config(conn, db.now(), cid, changes, body.is_default)
        except mq.ProviderNotConfigured:
            raise bad_request("Chat provider is not configured.") from None
        except mq.ModelConfigExists:
            raise ApiError(409, "Chat model config already exists.") from None
        if row is None:
            raise not_found()
        change.resource_id = cid
        change.resource_target = f"{row['provider']}/{row['model']}"
        set_fields = _audited_fields(changes)
        if body.is_default is not None:
            set_fields.append("is_default")
        change.fields = {"fields": set_fields}
    return mq.model_config_view(row)


@router.delete(
    "/chats/model-configs/{model_config_id}",
    status_code=204,
    response_model=None,
    response_class=Response,
    summary="Delete model config",
)
async def delete_model_config(
    model_config_id: ModelConfigPath, request: Request, db: DB, actor: CurrentActor
) -> Response:
    check.require_admin(actor)
    cid = check.parse_id(model_config_id, BAD_MODEL_CONFIG_ID)
    async with audited_write(
        db,
        request,
        AuditAction.delete,
        ResourceType.chat_model_config,
        user_id=actor.user_id,
        status_code=204,
    ) as (conn, change):
        if not await mq.delete_model_config(conn, db.now(), cid):
            raise not_found()
        change.resource_id = cid
    return Response(status_code=204)
