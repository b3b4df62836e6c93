"""The owner's read cursor (api-behaviour §8.5): what clears ``has_unread``."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from chatd.store.tables import chat_messages, chats


async def mark_read(conn: AsyncConnection, chat_id: uuid.UUID) -> None:
    """Point ``last_read_message_id`` at the newest undeleted assistant message.

    Nothing changes when the chat has none. ``updated_at`` is left alone: reading a chat is
    not activity that reorders the list. One statement, so it needs no row lock of its own.
    """
    newest = (
        sa.select(sa.func.max(chat_messages.c.id))
        .where(
            chat_messages.c.chat_id == chat_id,
            chat_messages.c.role == "assistant",
            chat_messages.c.deleted.is_(False),
        )
        .scalar_subquery()
    )
    await conn.execute(
        chats.update()
        .where(chats.c.id == chat_id, newest.is_not(None))
        .values(last_read_message_id=newest)
    )
