"""Queries for chat messages and queued messages."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from chatd.sdk.chats import ChatMessage, ChatQueuedMessage
from chatd.store import convert
from chatd.store.tables import chat_messages, chat_queued_messages, chats

# Rows the API shows: not hidden from users, not deleted.
VISIBLE = sa.and_(
    chat_messages.c.visibility.in_(("user", "both")), chat_messages.c.deleted.is_(False)
)


async def insert_message(
    conn: AsyncConnection,
    *,
    now: dt.datetime,
    chat_id: uuid.UUID,
    role: str,
    content: list[dict[str, Any]],
    visibility: str = "both",
    model_config_id: uuid.UUID | None = None,
    created_by: uuid.UUID | None = None,
    **usage: Any,
) -> ChatMessage:
    """Insert one message; ``last_model_config_id`` follows a message that names a model."""
    zero_is_null = {k: (v or None) for k, v in usage.items()}
    row = (
        await conn.execute(
            chat_messages.insert()
            .values(
                chat_id=chat_id,
                created_at=now,
                role=role,
                content=content,
                content_version=1,
                visibility=visibility,
                model_config_id=model_config_id,
                created_by=created_by,
                **zero_is_null,
            )
            .returning(*chat_messages.c)
        )
    ).one()
    if model_config_id is not None:
        await conn.execute(
            chats.update()
            .where(chats.c.id == chat_id, chats.c.last_model_config_id != model_config_id)
            .values(last_model_config_id=model_config_id)
        )
    return convert.message(row._mapping)


async def queued_messages(conn: AsyncConnection, chat_id: uuid.UUID) -> list[ChatQueuedMessage]:
    """The chat's queue, FIFO."""
    rows = await conn.execute(
        sa.select(chat_queued_messages)
        .where(chat_queued_messages.c.chat_id == chat_id)
        .order_by(chat_queued_messages.c.created_at, chat_queued_messages.c.id)
    )
    return [convert.queued_message(r._mapping) for r in rows]
