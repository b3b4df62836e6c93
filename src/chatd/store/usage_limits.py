"""Spend limits: the deployment setting, per-user overrides, and the spend check (§14, §9.5).

Spend is the sum of ``total_cost_micros`` of messages created in the current period window in
every chat the user owns. Windows are UTC calendar periods: a day, a week starting Monday, a
month. The check runs inside the transaction of create, send, edit, promote and title
regeneration; queued messages promoted at the end of a turn are not re-checked.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from chatd.store.sql import Connection
from chatd.store.tables import (
    chat_messages,
    chat_usage_limit_config,
    chat_usage_limit_overrides,
    chats,
    users,
)

PERIODS = ("day", "week", "month")


class UsageLimitExceeded(Exception):
    """The user has spent their limit for the current period."""

    def __init__(self, spent_micros: int, limit_micros: int, resets_at: dt.datetime) -> None:
        super().__init__(f"spent {spent_micros} of {limit_micros} micros")
        self.spent_micros = spent_micros
        self.limit_micros = limit_micros
        self.resets_at = resets_at


@dataclass(frozen=True)
class LimitConfig:
    enabled: bool
    default_limit_micros: int
    period: str
    updated_at: dt.datetime | None


@dataclass(frozen=True)
class Override:
    user_id: uuid.UUID
    username: str
    spend_limit_micros: int
    created_at: dt.datetime
    updated_at: dt.datetime


def period_window(now: dt.datetime, period: str) -> tuple[dt.datetime, dt.datetime]:
    """The UTC calendar window [start, end) of ``period`` that contains ``now``."""
    day = now.astimezone(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "day":
        return day, day + dt.timedelta(days=1)
    if period == "week":
        start = day - dt.timedelta(days=day.weekday())
        return start, start + dt.timedelta(days=7)
    start = day.replace(day=1)
    end = (start + dt.timedelta(days=32)).replace(day=1)
    return start, end


_CONFIG = sa.select(chat_usage_limit_config)  # read on every send: built once


async def get_config(conn: Connection) -> LimitConfig:
    row = (await conn.execute(_CONFIG)).first()
    if row is None:
        return LimitConfig(enabled=False, default_limit_micros=0, period="month", updated_at=None)
    return LimitConfig(row.enabled, row.default_limit_micros, row.period, row.updated_at)


async def put_config(
    conn: Connection, now: dt.datetime, *, limit_micros: int | None, period: str
) -> None:
    """``limit_micros=None`` disables the limit (the period is kept)."""
    values = {
        "enabled": limit_micros is not None,
        "default_limit_micros": limit_micros or 0,
        "period": period,
        "updated_at": now,
    }
    updated = await conn.execute(
        chat_usage_limit_config.update()
        .where(chat_usage_limit_config.c.singleton.is_(True))
        .values(**values)
    )
    if not updated.rowcount:
        await conn.execute(chat_usage_limit_config.insert().values(singleton=True, **values))


async def list_overrides(conn: Connection) -> list[Override]:
    rows = await conn.execute(
        sa.select(chat_usage_limit_overrides, users.c.username)
        .join(users, users.c.id == chat_usage_limit_overrides.c.user_id)
        .order_by(users.c.username)
    )
    return [
        Override(r.user_id, r.username, r.spend_limit_micros, r.created_at, r.updated_at)
        for r in rows
    ]


async def put_override(
    conn: Connection, now: dt.datetime, user_id: uuid.UUID, limit_micros: int
) -> None:
    updated = await conn.execute(
        chat_usage_limit_overrides.update()
        .where(chat_usage_limit_overrides.c.user_id == user_id)
        .values(spend_limit_micros=limit_micros, updated_at=now)
    )
    if not updated.rowcount:
        await conn.execute(
            chat_usage_limit_overrides.insert().values(
                user_id=user_id, spend_limit_micros=limit_micros, created_at=now, updated_at=now
            )
        )


async def delete_override(conn: Connection, user_id: uuid.UUID) -> bool:
    deleted = await conn.execute(
        chat_usage_limit_overrides.delete().where(chat_usage_limit_overrides.c.user_id == user_id)
    )
    return bool(deleted.rowcount)


async def user_limit(conn: Connection, user_id: uuid.UUID) -> tuple[int, str] | None:
    """(limit in micros, period) for the user, or None when limits are off."""
    config = await get_config(conn)
    if not config.enabled:
        return None
    override = (
        await conn.execute(
            sa.select(chat_usage_limit_overrides.c.spend_limit_micros).where(
                chat_usage_limit_overrides.c.user_id == user_id
            )
        )
    ).scalar_one_or_none()
    return (override if override is not None else config.default_limit_micros), config.period


async def spent_micros(
    conn: Connection, user_id: uuid.UUID, start: dt.datetime, end: dt.datetime
) -> int:
    total = (
        await conn.execute(
            sa.select(sa.func.coalesce(sa.func.sum(chat_messages.c.total_cost_micros), 0))
            .select_from(chat_messages.join(chats, chats.c.id == chat_messages.c.chat_id))
            .where(
                chats.c.owner_id == user_id,
                chat_messages.c.created_at >= start,
                chat_messages.c.created_at < end,
            )
        )
    ).scalar_one()
    return int(total)


async def check_spend(conn: Connection, user_id: uuid.UUID, now: dt.datetime) -> None:
    """Raise :class:`UsageLimitExceeded` when the user's spend reached their limit."""
    limit = await user_limit(conn, user_id)
    if limit is None:
        return
    limit_micros, period = limit
    start, end = period_window(now, period)
    spent = await spent_micros(conn, user_id, start, end)
    if spent >= limit_micros:
        raise UsageLimitExceeded(spent, limit_micros, end)
