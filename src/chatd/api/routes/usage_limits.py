"""Spend limits: the deployment limit, per-user overrides, and each user's status (§9.5)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Request, Response

from chatd.api.deps import DB, CurrentActor
from chatd.api.errors import ERROR_RESPONSES, ApiError, forbidden, not_found
from chatd.api.openapi import json_body, uuid_path
from chatd.api.params import read_json
from chatd.authz import Actor
from chatd.sdk.usage import (
    ChatUsageLimitConfig,
    ChatUsageLimitOverride,
    ChatUsageLimitStatus,
    UpdateChatUsageLimitConfigRequest,
    UpsertChatUsageLimitOverrideRequest,
)
from chatd.store import usage_limits as q
from chatd.store import users as user_queries
from chatd.store.db import Database
from chatd.store.model_configs import list_model_configs
from chatd.store.sql import Connection

router = APIRouter(prefix="/api/experimental", tags=["Chats"], responses=ERROR_RESPONSES)

BAD_PERIOD = "Invalid chat usage limit period."
BAD_LIMIT = "Invalid chat usage limit spend limit."
UserIdPath = Annotated[str, uuid_path("User ID.")]


def _require_admin(actor: Actor) -> None:
    if not actor.is_admin():
        raise forbidden()


def _unpriced(options: object) -> bool:
    cost = options.get("cost") if isinstance(options, dict) else None
    return not isinstance(cost, dict) or not any(v for v in cost.values() if v is not None)


async def _config_view(db: Database) -> ChatUsageLimitConfig:
    async with db.read() as conn:
        config = await q.get_config(conn)
        overrides = await q.list_overrides(conn)
        models = await list_model_configs(conn, enabled_only=True)
    return ChatUsageLimitConfig(
        spend_limit_micros=config.default_limit_micros if config.enabled else None,
        period=config.period,
        updated_at=config.updated_at,
        unpriced_model_count=sum(1 for m in models if _unpriced(m["options"])),
        overrides=[
            ChatUsageLimitOverride(
                user_id=o.user_id,
                username=o.username,
                spend_limit_micros=o.spend_limit_micros,
                created_at=o.created_at,
                updated_at=o.updated_at,
            )
            for o in overrides
        ],
        group_overrides=[],
    )


@router.get("/chats/usage-limits", response_model=ChatUsageLimitConfig)
async def get_usage_limits(db: DB, actor: CurrentActor) -> ChatUsageLimitConfig:
    _require_admin(actor)
    return await _config_view(db)


@router.put(
    "/chats/usage-limits",
    response_model=ChatUsageLimitConfig,
    openapi_extra=json_body(UpdateChatUsageLimitConfigRequest),
)
async def put_usage_limits(request: Request, db: DB, actor: CurrentActor) -> ChatUsageLimitConfig:
    _require_admin(actor)
    body = await read_json(request, UpdateChatUsageLimitConfigRequest)
    period = body.period or "month"
    if period not in q.PERIODS:
        raise ApiError(400, BAD_PERIOD, "Period must be one of: day, week, month.")
    if body.spend_limit_micros is not None and body.spend_limit_micros <= 0:
        raise ApiError(400, BAD_LIMIT, "Spend limit must be greater than zero.")
    async with db.write() as conn:
        await q.put_config(conn, db.now(), limit_micros=body.spend_limit_micros, period=period)
    return await _config_view(db)


async def limit_status(
    conn: Connection, user_id: uuid.UUID, now: dt.datetime
) -> ChatUsageLimitStatus | None:
    """The user's spend in the current period against their limit; None when none applies."""
    limit = await q.user_limit(conn, user_id)
    if limit is None:
        return None
    limit_micros, period = limit
    start, end = q.period_window(now, period)
    spent = await q.spent_micros(conn, user_id, start, end)
    return ChatUsageLimitStatus(
        is_limited=True,
        period=period,
        spend_limit_micros=limit_micros,
        current_spend=spent,
        period_start=start,
        period_end=end,
    )


@router.get("/chats/usage-limits/status", response_model=ChatUsageLimitStatus)
async def usage_status(db: DB, actor: CurrentActor) -> ChatUsageLimitStatus:
    async with db.read() as conn:
        status = await limit_status(conn, actor.user_id, db.now())
    return status or ChatUsageLimitStatus(is_limited=False)


def _user_id(raw: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(raw)
    except ValueError:
        return None


@router.put(
    "/chats/usage-limits/overrides/{user}",
    response_model=ChatUsageLimitOverride,
    openapi_extra=json_body(UpsertChatUsageLimitOverrideRequest),
)
async def put_override(
    user: UserIdPath, request: Request, db: DB, actor: CurrentActor
) -> ChatUsageLimitOverride:
    _require_admin(actor)
    body = await read_json(request, UpsertChatUsageLimitOverrideRequest)
    if body.spend_limit_micros is None or body.spend_limit_micros <= 0:
        raise ApiError(400, BAD_LIMIT, "Spend limit must be greater than zero.")
    user_id = _user_id(user)
    async with db.write() as conn:
        target = await user_queries.get_user(conn, user_id) if user_id else None
        if target is None:
            raise not_found()
        await q.put_override(conn, db.now(), target.id, body.spend_limit_micros)
        saved = [o for o in await q.list_overrides(conn) if o.user_id == target.id][0]
    return ChatUsageLimitOverride(
        user_id=saved.user_id,
        username=saved.username,
        spend_limit_micros=saved.spend_limit_micros,
        created_at=saved.created_at,
        updated_at=saved.updated_at,
    )


@router.delete("/chats/usage-limits/overrides/{user}", status_code=204, response_class=Response)
async def delete_override(user: UserIdPath, db: DB, actor: CurrentActor) -> Response:
    _require_admin(actor)
    user_id = _user_id(user)
    async with db.write() as conn:
        target = await user_queries.get_user(conn, user_id) if user_id else None
        if target is None:
            raise ApiError(400, "Invalid user.", f'No user with ID "{user}".')
        if not await q.delete_override(conn, target.id):
            raise ApiError(400, "Chat usage limit override not found.")
    return Response(status_code=204)
