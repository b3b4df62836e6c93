"""Building blocks of chat state transitions: refusals, the row lock, status writes, events.

Every transition (:mod:`chatd.store.chat_state`, :mod:`chatd.store.tool_calls`) runs in the
caller's single ``db.write()`` transaction and starts with :func:`lock`. A refusal is a
:class:`TransitionError`; raising it rolls the whole transaction back, so nothing is stored.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import JsonValue

from chatd.sdk.chats import Chat, ChatError, ChatMessage, ChatMessageRole, ChatStatus
from chatd.sdk.events import (
    ChatStreamEvent,
    ChatStreamEventType,
    ChatStreamStatus,
    ChatWatchEvent,
    ChatWatchEventKind,
)
from chatd.store import convert
from chatd.store import messages as mq
from chatd.store.chats import LAST_MODEL_LIVE, UPDATE_CHAT_RETURNING, get_chat_row, lock_chat
from chatd.store.model_configs import default_model_config, get_model_config
from chatd.store.outbox import Outbox
from chatd.store.sql import Connection

Row = Mapping[Any, Any]


class TransitionError(Exception):
    """A state change was refused; nothing was written."""


class ChatNotFound(TransitionError):
    pass


class ChatArchived(TransitionError):
    pass


class QueueFull(TransitionError):
    pass


class InvalidModelConfig(TransitionError):
    """The requested model config does not exist."""


class NoModelConfig(TransitionError):
    """Nothing to fall back to: the chat's last model and the default are both gone."""


class MessageNotFound(TransitionError):
    pass


class NotUserMessage(TransitionError):
    pass


class QueuedMessageNotFound(TransitionError):
    pass


class NotAwaitingToolResults(TransitionError):
    pass


class ToolResultsMismatch(TransitionError):
    """The submitted results do not answer exactly the pending calls."""

    def __init__(self, kind: str, tool_call_id: str) -> None:
        super().__init__(f"{kind}: {tool_call_id}")
        self.kind = kind  # "duplicate", "missing", "unexpected" or "invalid_output"
        self.tool_call_id = tool_call_id


async def lock(conn: Connection, chat_id: uuid.UUID) -> Row:
    row = await lock_chat(conn, chat_id)
    if row is None:
        raise ChatNotFound(str(chat_id))
    return row


async def set_status(
    conn: Connection,
    now: dt.datetime,
    chat_id: uuid.UUID,
    status: ChatStatus,
    last_error: dict[str, JsonValue] | None = None,
) -> Row:
    """Write a status with the worker fields cleared and ``last_error`` (NULL when none);
    bumps ``updated_at`` (which is also the requires_action timeout's clock).

    Returns the row as written (as ``get_chat_row`` reads it), for :func:`announce_status`.
    """
    result = await conn.execute(
        UPDATE_CHAT_RETURNING,
        {
            "chat_key": chat_id,
            "status": status.value,
            "worker_id": None,
            "started_at": None,
            "heartbeat_at": None,
            "awaiting_until": None,
            "last_error": last_error,
            "updated_at": now,
        },
    )
    return result.one().as_dict()


async def publish_status(
    conn: Connection, outbox: Outbox, chat_id: uuid.UUID, *, watch: bool = True
) -> Chat:
    """:func:`announce_status` with the row as it is now (read)."""
    row = await get_chat_row(conn, chat_id)
    assert row is not None  # the row is locked by this transaction
    return announce_status(outbox, row, watch=watch)


def announce_status(outbox: Outbox, row: Row, *, watch: bool = True) -> Chat:
    """Stream ``status`` and (when ``watch``) watch ``status_change`` for the chat ``row``
    as this transaction wrote it (the row lock is held)."""
    chat = convert.chat(row)
    chat_id = chat.id
    outbox.add_status(
        ChatStreamEvent(
            type=ChatStreamEventType.status,
            chat_id=chat_id,
            status=ChatStreamStatus(status=chat.status),
        )
    )
    if watch:
        outbox.watch.append(
            (chat.owner_id, ChatWatchEvent(kind=ChatWatchEventKind.status_change, chat=chat))
        )
    return chat


def message_event(message: ChatMessage) -> ChatStreamEvent:
    return ChatStreamEvent(
        type=ChatStreamEventType.message, chat_id=message.chat_id, message=message
    )


async def publish_queue(conn: Connection, outbox: Outbox, chat_id: uuid.UUID) -> None:
    outbox.stream.append(
        ChatStreamEvent(
            type=ChatStreamEventType.queue_update,
            chat_id=chat_id,
            queued_messages=await mq.queued_messages(conn, chat_id),
        )
    )


async def resolve_model(
    conn: Connection, chat: Row, requested: uuid.UUID | None, *, strict: bool = True
) -> uuid.UUID:
    """api-behaviour §5.4: the requested config, else the chat's last one, else the default.

    ``strict``: a requested config that does not exist is an error, not a fall-through.
    """
    if requested is not None:
        if await get_model_config(conn, requested) is not None:
            return requested
        if strict:
            raise InvalidModelConfig(str(requested))
    last: uuid.UUID | None = chat["last_model_config_id"]
    if last is not None and await _is_live(conn, chat, last):
        return last
    default = await default_model_config(conn)
    if default is None:
        raise NoModelConfig(str(chat["id"]))
    chosen: uuid.UUID = default["id"]
    return chosen


async def _is_live(conn: Connection, chat: Row, config_id: uuid.UUID) -> bool:
    if LAST_MODEL_LIVE in chat:  # read with the row lock (lock_chat)
        return bool(chat[LAST_MODEL_LIVE])
    return await get_model_config(conn, config_id) is not None


async def insert_user_message(
    conn: Connection,
    now: dt.datetime,
    chat_id: uuid.UUID,
    content: list[dict[str, Any]],
    model_config_id: uuid.UUID,
    author_id: uuid.UUID | None,
    visibility: str = "both",
    *,
    model_is_current: bool = False,
) -> ChatMessage:
    return await mq.insert_message(
        conn,
        now=now,
        chat_id=chat_id,
        role=ChatMessageRole.user.value,
        content=content,
        visibility=visibility,
        model_config_id=model_config_id,
        created_by=author_id,
        model_is_current=model_is_current,
    )


async def promote_queue_head(
    conn: Connection, now: dt.datetime, chat: Row, outbox: Outbox
) -> bool:
    """T4: the oldest queued message becomes the owner's user message (``message`` and
    ``queue_update`` events; the workers are woken). The caller holds the row lock, then
    writes ``pending``. False (nothing written) when the queue is empty."""
    if not chat["queue_length"]:
        return False
    queue = await mq.queued_messages(conn, chat["id"])
    if not queue:
        return False
    head = await mq.get_queued_row(conn, chat["id"], queue[0].id)
    assert head is not None  # the chat row lock keeps the queue still
    model_id = await resolve_model(conn, chat, head["model_config_id"], strict=False)
    await mq.delete_queued(conn, chat["id"], head["id"])
    message = await insert_user_message(
        conn, now, chat["id"], list(head["content"]), model_id, chat["owner_id"]
    )
    outbox.stream.append(message_event(message))
    await publish_queue(conn, outbox, chat["id"])
    outbox.wake_workers = True
    return True


def error_json(error: ChatError) -> dict[str, JsonValue]:
    """A chat error as ``last_error`` stores it."""
    return error.model_dump(mode="json", exclude_none=True)
