"""What a newly connected stream client reads from the database (engine-behaviour §10.2)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field

import sqlalchemy as sa

from chatd.sdk.chats import ChatMessage, ChatQueuedMessage, ChatStatus
from chatd.store import convert
from chatd.store.messages import VISIBLE, queued_messages
from chatd.store.sql import Connection
from chatd.store.tables import chat_messages, chats

# Built once with bound parameters: every stream connection reads them (see chatd.store.chats).
_STATUS = sa.select(chats.c.status).where(chats.c.id == sa.bindparam("chat_id"))
_MESSAGES_AFTER = (
    sa.select(chat_messages)
    .where(
        chat_messages.c.chat_id == sa.bindparam("chat_id"),
        chat_messages.c.id > sa.bindparam("after_id"),
        VISIBLE,
    )
    .order_by(chat_messages.c.id)
)


@dataclass
class StoredState:
    status: ChatStatus
    messages: list[ChatMessage] = field(default_factory=list)
    queue: list[ChatQueuedMessage] = field(default_factory=list)


async def stored_state(
    conn: Connection, chat_id: uuid.UUID, after_id: int
) -> StoredState | None:
    """The status, the visible messages with id > ``after_id`` (oldest first) and the queue."""
    status = (await conn.execute(_STATUS, {"chat_id": chat_id})).scalar_one_or_none()
    if status is None:
        return None
    rows = await conn.execute(_MESSAGES_AFTER, {"chat_id": chat_id, "after_id": after_id})
    return StoredState(
        status=ChatStatus(status),
        messages=[convert.message(r.as_dict()) for r in rows],
        queue=await queued_messages(conn, chat_id),
    )
