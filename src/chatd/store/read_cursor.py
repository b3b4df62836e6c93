"""The owner's read cursor (api-behaviour §8.5): what clears ``has_unread``."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from chatd.store.sql import Connection
from chatd.store.tables import chat_messages, chats

# Built once with a bound ``chat_id``: every stream connection and disconnection runs it.
_NEWEST_REPLY = (
    sa.select(sa.func.max(chat_messages.c.id))
    .where(
        chat_messages.c.chat_id == sa.bindparam("chat_id"),
        chat_messages.c.role == "assistant",
        chat_messages.c.deleted.is_(False),
    )
    .scalar_subquery()
)
_MARK_READ = (
    chats.update()
    .where(chats.c.id == sa.bindparam("chat_id"), _NEWEST_REPLY.is_not(None))
    .values(last_read_message_id=_NEWEST_REPLY)
)


async def mark_read(conn: Connection, chat_id: uuid.UUID) -> None:
    """Point ``last_read_message_id`` at the newest undeleted assistant message.

    Nothing changes when the chat has none. ``updated_at`` is left alone: reading a chat is
    not activity that reorders the list. One statement, so it needs no row lock of its own.
    """
    await conn.execute(_MARK_READ, {"chat_id": chat_id})
