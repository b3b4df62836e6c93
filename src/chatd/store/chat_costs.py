"""What chats cost: one user's totals by model and by root chat, and every user's (§9.5).

Only assistant messages count, those created in ``[start, end)``, in chats of every state,
archived ones included, and deleted messages too (their cost was spent). A message without a
price (``total_cost_micros`` NULL) adds its tokens but no cost. A message "counts" in
``message_count`` when it records any token usage.

A sub-agent chat's messages count under its root chat:
``coalesce(root_chat_id, parent_chat_id, id)``, the same rule as the ``root_chat_id`` the API
reports (see :func:`chatd.store.convert.chat`), so the by-chat list holds root chats only.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from chatd.sdk.chat_costs import ChatCostChatBreakdown, ChatCostModelBreakdown, ChatCostUserRollup
from chatd.store.sql import Connection, Row
from chatd.store.tables import chat_messages, chat_model_configs, chats, users

_M = chat_messages
_ROOT_KEY = sa.func.coalesce(chats.c.root_chat_id, chats.c.parent_chat_id, chats.c.id)
_HAS_USAGE = sa.or_(
    _M.c.input_tokens.is_not(None),
    _M.c.output_tokens.is_not(None),
    _M.c.reasoning_tokens.is_not(None),
    _M.c.cache_creation_tokens.is_not(None),
    _M.c.cache_read_tokens.is_not(None),
)
_IN_WINDOW = sa.and_(
    _M.c.role == "assistant",
    _M.c.created_at >= sa.bindparam("start", type_=_M.c.created_at.type),
    _M.c.created_at < sa.bindparam("end", type_=_M.c.created_at.type),
)
_OWNED = chats.c.owner_id == sa.bindparam("owner_id", type_=chats.c.owner_id.type)
_MESSAGES_OF_CHATS = _M.join(chats, chats.c.id == _M.c.chat_id)


def _sum(column: sa.ColumnElement[int], name: str) -> sa.Label[int]:
    return sa.func.coalesce(sa.func.sum(column), 0).label(name)


def _usage_columns() -> list[sa.Label[int]]:
    """The cost and token sums and the message count shared by every breakdown."""
    return [
        _sum(_M.c.total_cost_micros, "total_cost_micros"),
        sa.func.count().filter(_HAS_USAGE).label("message_count"),
        _sum(_M.c.input_tokens, "total_input_tokens"),
        _sum(_M.c.output_tokens, "total_output_tokens"),
        _sum(_M.c.cache_read_tokens, "total_cache_read_tokens"),
        _sum(_M.c.cache_creation_tokens, "total_cache_creation_tokens"),
    ]


_USAGE_NAMES = (
    "total_cost_micros",
    "message_count",
    "total_input_tokens",
    "total_output_tokens",
    "total_cache_read_tokens",
    "total_cache_creation_tokens",
)


def _usage(row: Row) -> dict[str, int]:
    # PostgreSQL sums bigints as numeric (Decimal): every figure goes out as an int.
    return {name: int(getattr(row, name)) for name in _USAGE_NAMES}


_SUMMARY = (
    sa.select(
        _sum(_M.c.total_cost_micros, "total_cost_micros"),
        sa.func.count(_M.c.total_cost_micros).label("priced"),
        sa.func.count().filter(_M.c.total_cost_micros.is_(None), _HAS_USAGE).label("unpriced"),
        _sum(_M.c.input_tokens, "total_input_tokens"),
        _sum(_M.c.output_tokens, "total_output_tokens"),
        _sum(_M.c.cache_read_tokens, "total_cache_read_tokens"),
        _sum(_M.c.cache_creation_tokens, "total_cache_creation_tokens"),
    )
    .select_from(_MESSAGES_OF_CHATS)
    .where(_OWNED, _IN_WINDOW)
)

_BY_MODEL = (
    sa.select(
        chat_model_configs.c.id,
        chat_model_configs.c.display_name,
        chat_model_configs.c.provider,
        chat_model_configs.c.model,
        *_usage_columns(),
    )
    .select_from(
        _MESSAGES_OF_CHATS.join(chat_model_configs, chat_model_configs.c.id == _M.c.model_config_id)
    )
    .where(_OWNED, _IN_WINDOW)
    .group_by(
        chat_model_configs.c.id,
        chat_model_configs.c.display_name,
        chat_model_configs.c.provider,
        chat_model_configs.c.model,
    )
    .order_by(sa.desc("total_cost_micros"), chat_model_configs.c.model, chat_model_configs.c.id)
)

_PER_ROOT = (
    sa.select(_ROOT_KEY.label("root_chat_id"), *_usage_columns())
    .select_from(_MESSAGES_OF_CHATS)
    .where(_OWNED, _IN_WINDOW)
    .group_by(_ROOT_KEY)
    .subquery("per_root")
)
_ROOT = chats.alias("root_chat")
_BY_CHAT = (
    sa.select(_PER_ROOT, sa.func.coalesce(_ROOT.c.title, "").label("chat_title"))
    .select_from(_PER_ROOT.outerjoin(_ROOT, _ROOT.c.id == _PER_ROOT.c.root_chat_id))
    .order_by(_PER_ROOT.c.total_cost_micros.desc(), _PER_ROOT.c.root_chat_id)
)


@dataclass(frozen=True)
class CostTotals:
    total_cost_micros: int
    priced_message_count: int
    unpriced_message_count: int
    total_input_tokens: int
    total_output_tokens: int
    total_cache_read_tokens: int
    total_cache_creation_tokens: int


def _window(owner_id: uuid.UUID, start: dt.datetime, end: dt.datetime) -> dict[str, object]:
    return {"owner_id": owner_id, "start": start, "end": end}


async def user_totals(
    conn: Connection, owner_id: uuid.UUID, start: dt.datetime, end: dt.datetime
) -> CostTotals:
    row = (await conn.execute(_SUMMARY, _window(owner_id, start, end))).one()
    return CostTotals(
        total_cost_micros=int(row.total_cost_micros),
        priced_message_count=int(row.priced),
        unpriced_message_count=int(row.unpriced),
        total_input_tokens=int(row.total_input_tokens),
        total_output_tokens=int(row.total_output_tokens),
        total_cache_read_tokens=int(row.total_cache_read_tokens),
        total_cache_creation_tokens=int(row.total_cache_creation_tokens),
    )


async def by_model(
    conn: Connection, owner_id: uuid.UUID, start: dt.datetime, end: dt.datetime
) -> list[ChatCostModelBreakdown]:
    """Per model config, most expensive first (messages that name no model are left out)."""
    rows = await conn.execute(_BY_MODEL, _window(owner_id, start, end))
    return [
        ChatCostModelBreakdown(
            model_config_id=r.id,
            display_name=r.display_name,
            provider=r.provider,
            model=r.model,
            **_usage(r),
        )
        for r in rows
    ]


async def by_root_chat(
    conn: Connection, owner_id: uuid.UUID, start: dt.datetime, end: dt.datetime
) -> list[ChatCostChatBreakdown]:
    """Per root chat (its sub-agent chats counted in), most expensive first."""
    rows = await conn.execute(_BY_CHAT, _window(owner_id, start, end))
    return [
        ChatCostChatBreakdown(root_chat_id=r.root_chat_id, chat_title=r.chat_title, **_usage(r))
        for r in rows
    ]


async def by_user(
    conn: Connection,
    start: dt.datetime,
    end: dt.datetime,
    *,
    search: str = "",
    limit: int,
    offset: int,
) -> tuple[list[ChatCostUserRollup], int]:
    """One page of users with assistant messages in the window, most expensive first, and how
    many such users there are in all. ``search`` keeps users whose username or name holds it
    (case-insensitive)."""
    conds: list[sa.ColumnElement[bool]] = [_IN_WINDOW]
    if search:
        conds.append(
            sa.or_(
                users.c.username.icontains(search, autoescape=True),
                users.c.name.icontains(search, autoescape=True),
            )
        )
    per_user = (
        sa.select(
            users.c.id.label("user_id"),
            users.c.username,
            users.c.name,
            *_usage_columns(),
            sa.func.count(sa.distinct(_ROOT_KEY)).label("chat_count"),
        )
        .select_from(_MESSAGES_OF_CHATS.join(users, users.c.id == chats.c.owner_id))
        .where(*conds)
        .group_by(users.c.id, users.c.username, users.c.name)
        .subquery("per_user")
    )
    page = (
        sa.select(per_user, sa.func.count().over().label("total_count"))
        .order_by(per_user.c.total_cost_micros.desc(), per_user.c.username)
        .limit(limit)
        .offset(offset)
    )
    params = {"start": start, "end": end}
    rows = (await conn.execute(page, params)).all()
    if rows:
        total = int(rows[0].total_count)
    elif offset:
        # Past the last page: the window count has no row to ride on.
        count = sa.select(sa.func.count()).select_from(per_user)
        total = int((await conn.execute(count, params)).scalar_one())
    else:
        total = 0
    rollups = [
        ChatCostUserRollup(
            user_id=r.user_id,
            username=r.username,
            name=r.name,
            avatar_url="",
            chat_count=int(r.chat_count),
            **_usage(r),
        )
        for r in rows
    ]
    return rollups, total
