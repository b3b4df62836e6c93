"""The workspace context of a chat: its agent's instruction files and skills (§9.3, §9.4).

They are kept as one user-role message (visibility ``both``, no creator) of ``context-file``
and ``skill`` parts per agent the chat has reached; the newest such message is the one the
prompt uses. ``chats.last_injected_context`` holds a copy without the internal fields.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from chatd.sdk.chats import (
    ChatMessagePart,
    ChatMessagePartType,
    ChatMessageRole,
    StoredMessagePart,
    parts_json,
)
from chatd.store import stream_log
from chatd.store.chats import UPDATE_CHAT, lock_chat
from chatd.store.messages import insert_message
from chatd.store.outbox import Outbox
from chatd.store.sql import Connection
from chatd.store.tables import chat_messages
from chatd.store.transition_steps import message_event

_CONTEXT_TYPES = (ChatMessagePartType.context_file.value, ChatMessagePartType.skill.value)
# Context messages are the user rows nobody wrote; a few of the newest are looked at (a
# compaction summary is model-only, so not among them).
_CANDIDATES = (
    sa.select(chat_messages.c.content)
    .where(
        chat_messages.c.chat_id == sa.bindparam("chat_id"),
        chat_messages.c.role == ChatMessageRole.user.value,
        chat_messages.c.created_by.is_(None),
        chat_messages.c.visibility == "both",
        chat_messages.c.deleted.is_(False),
    )
    .order_by(chat_messages.c.id.desc())
    .limit(5)
)


async def latest_context(conn: Connection, chat_id: uuid.UUID) -> list[dict[str, Any]] | None:
    """The parts (with their internal fields) of the chat's newest context message."""
    for content in (await conn.execute(_CANDIDATES, {"chat_id": chat_id})).scalars():
        parts = [p for p in content if isinstance(p, dict)] if isinstance(content, list) else []
        if any(p.get("type") in _CONTEXT_TYPES for p in parts):
            return parts
    return None


def is_context_message(row: Mapping[str, Any]) -> bool:
    """A chat's context message (nobody's words: titles and prompts pass over it)."""
    content = row.get("content")
    return (
        row.get("role") == ChatMessageRole.user.value
        and row.get("created_by") is None
        and isinstance(content, list)
        and any(isinstance(p, dict) and p.get("type") in _CONTEXT_TYPES for p in content)
    )


def context_agent(parts: Sequence[dict[str, Any]] | None) -> str | None:
    """The agent id a context message was made from (as stored text)."""
    for part in parts or ():
        agent = part.get("context_file_agent_id")
        if part.get("type") == ChatMessagePartType.context_file.value and agent:
            return str(agent)
    return None


async def persist_context(
    conn: Connection,
    now: dt.datetime,
    chat_id: uuid.UUID,
    worker_id: uuid.UUID,
    parts: list[StoredMessagePart],
) -> Outbox | None:
    """Store the context message of the agent the parts name, unless the chat's newest one
    is of that agent already, or the chat is no longer ``worker_id``'s. None: nothing stored."""
    row = await lock_chat(conn, chat_id)
    if row is None or row["worker_id"] != worker_id:
        return None
    agent = context_agent(parts_json(list(parts)))
    if agent is not None and context_agent(await latest_context(conn, chat_id)) == agent:
        return None
    message = await insert_message(
        conn,
        now=now,
        chat_id=chat_id,
        role=ChatMessageRole.user.value,
        content=parts_json(list(parts)),
    )
    stripped = parts_json([ChatMessagePart.model_validate(p.model_dump()) for p in parts])
    await conn.execute(UPDATE_CHAT, {"chat_key": chat_id, "last_injected_context": stripped})
    return await stream_log.seal(conn, Outbox(stream=[message_event(message)]), now)
