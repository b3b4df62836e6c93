"""What a newly connected stream client reads from the database (engine-behaviour §10.2)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from chatd.sdk.chats import ChatMessage, ChatQueuedMessage, ChatStatus
from chatd.store import convert
from chatd.store.messages import VISIBLE, queued_messages
from chatd.store.tables import chat_messages, chats


@dataclass
class StoredState:
    status: ChatStatus
    messages: list[ChatMessage] = field(default_factory=list)
    queue: list[ChatQueuedMessage] = field(default_factory=list)


async def stored_state(
    conn: AsyncConnection, chat_id: uuid.UUID, after_id: int
) -> StoredState | None:
    """The status, the visible messages with id > ``after_id`` (oldest first) and the queue."""
    status = (
        await conn.execute(sa.select(chats.c.status).where(chats.c.id == chat_id))
    ).scalar_one_or_none()
    if status is None:
        return None
    rows = await conn.execute(
        sa.select(chat_messages)
        .where(chat_messages.c.chat_id == chat_id, chat_messages.c.id > after_id, VISIBLE)
        .order_by(chat_messages.c.id)
    )
    return StoredState(
        status=ChatStatus(status),
        messages=[convert.message(r._mapping) for r in rows],
        queue=await queued_messages(conn, chat_id),
    )
