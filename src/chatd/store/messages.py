"""Queries for chat messages and queued messages.

The functions that add or remove queued messages also keep ``chats.queue_length``; they run
under the chat's row lock, as every transition does.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa

from chatd.sdk.chats import ChatMessage, ChatPrompt, ChatQueuedMessage
from chatd.store import convert
from chatd.store.sql import Connection, RowDict
from chatd.store.tables import chat_messages, chat_queued_messages, chats

# Rows the API shows: not hidden from users, not deleted.
VISIBLE = sa.and_(
    chat_messages.c.visibility.in_(("user", "both")), chat_messages.c.deleted.is_(False)
)

# Statements run on every turn, built once with bound parameters (see chatd.store.chats).
_INSERT_MESSAGE = chat_messages.insert().returning(*chat_messages.c)
_FOR_MODEL = sa.and_(
    chat_messages.c.chat_id == sa.bindparam("chat_id"),
    chat_messages.c.visibility.in_(("model", "both")),
    chat_messages.c.deleted.is_(False),
)
_PLAIN = chat_messages.c.compressed.is_(False)
_IN_ORDER = (chat_messages.c.created_at, chat_messages.c.id)
# The newest context summary's id, 0 without one (its own alias: not correlated to the outer
# query). With 0, "the summary and every plain row after it" is every plain row.
_summary_m = chat_messages.alias("summary_m")
_SUMMARY_ID = sa.func.coalesce(
    sa.select(sa.func.max(_summary_m.c.id))
    .where(
        _summary_m.c.chat_id == sa.bindparam("chat_id"),
        _summary_m.c.visibility == "model",
        _summary_m.c.deleted.is_(False),
        _summary_m.c.compressed.is_(True),
    )
    .scalar_subquery(),
    0,
)
_PROMPT_ROWS = (
    sa.select(chat_messages)
    .where(
        _FOR_MODEL,
        sa.or_(
            sa.and_(_PLAIN, chat_messages.c.role == "system"),
            chat_messages.c.id == _SUMMARY_ID,
            sa.and_(_PLAIN, chat_messages.c.id > _SUMMARY_ID),
        ),
    )
    .order_by(*_IN_ORDER)
)
_PLAIN_ROW = sa.and_(
    chat_messages.c.chat_id == sa.bindparam("chat_id"),
    chat_messages.c.deleted.is_(False),
    _PLAIN,
)
_LAST_TURN_START = (
    sa.select(sa.func.max(chat_messages.c.id))
    .where(_PLAIN_ROW, chat_messages.c.role.in_(("user", "assistant")))
    .scalar_subquery()
)
_HISTORY_TAIL = (
    sa.select(chat_messages)
    .where(_PLAIN_ROW, chat_messages.c.id >= _LAST_TURN_START)
    .order_by(chat_messages.c.id)
)
_QUEUED = (
    sa.select(chat_queued_messages)
    .where(chat_queued_messages.c.chat_id == sa.bindparam("chat_id"))
    .order_by(chat_queued_messages.c.created_at, chat_queued_messages.c.id)
)
_MODEL_ID = sa.bindparam("model_config_id", type_=chats.c.last_model_config_id.type)
_FOLLOW_MODEL = (
    chats.update()
    .where(chats.c.id == sa.bindparam("chat_id"), chats.c.last_model_config_id != _MODEL_ID)
    .values(last_model_config_id=_MODEL_ID)
)
_CHANGE_QUEUE_LENGTH = (
    chats.update()
    .where(chats.c.id == sa.bindparam("chat_id"))
    .values(queue_length=chats.c.queue_length + sa.bindparam("change"))
)


async def insert_message(
    conn: Connection,
    *,
    now: dt.datetime,
    chat_id: uuid.UUID,
    role: str,
    content: list[dict[str, Any]],
    visibility: str = "both",
    model_config_id: uuid.UUID | None = None,
    created_by: uuid.UUID | None = None,
    compressed: bool = False,
    model_is_current: bool = False,
    **usage: Any,
) -> ChatMessage:
    """Insert one message; ``last_model_config_id`` follows a message that names a model
    (``model_is_current``: the caller's locked chat row already names it, nothing to write)."""
    zero_is_null = {k: (v or None) for k, v in usage.items()}
    values = {
        "chat_id": chat_id,
        "created_at": now,
        "role": role,
        "content": content,
        "content_version": 1,
        "visibility": visibility,
        "model_config_id": model_config_id,
        "created_by": created_by,
        "compressed": compressed,
        **zero_is_null,
    }
    row = (await conn.execute(_INSERT_MESSAGE, values)).one()
    if model_config_id is not None and not model_is_current:
        await follow_model(conn, chat_id, model_config_id)
    return convert.message(row.as_dict())


async def follow_model(
    conn: Connection, chat_id: uuid.UUID, model_config_id: uuid.UUID
) -> None:
    """The chat's ``last_model_config_id`` becomes the model of the message just stored."""
    await conn.execute(_FOLLOW_MODEL, {"chat_id": chat_id, "model_config_id": model_config_id})


async def prompt_rows(conn: Connection, chat_id: uuid.UUID) -> list[RowDict]:
    """The rows a turn sends to the model (engine-behaviour §2.2), oldest first.

    Of the undeleted rows the model sees: every non-compressed system row, the newest
    compressed model-only row (a context summary) and every non-compressed row after it;
    without a summary, every non-compressed row. Raw rows: content keeps internal fields.
    """
    rows = await conn.execute(_PROMPT_ROWS, {"chat_id": chat_id})
    return [r.as_dict() for r in rows]


async def history_tail(conn: Connection, chat_id: uuid.UUID) -> list[RowDict]:
    """The chat's plain rows (undeleted, not compressed) from its last user or assistant
    message on, oldest first: where its latest turn stands, whatever a context summary left
    out of the prompt. Empty for a chat without such a message."""
    rows = await conn.execute(_HISTORY_TAIL, {"chat_id": chat_id})
    return [r.as_dict() for r in rows]


async def queued_messages(conn: Connection, chat_id: uuid.UUID) -> list[ChatQueuedMessage]:
    """The chat's queue, FIFO."""
    rows = await conn.execute(_QUEUED, {"chat_id": chat_id})
    return [convert.queued_message(r.as_dict()) for r in rows]


async def list_messages(
    conn: Connection, chat_id: uuid.UUID, *, before_id: int, after_id: int, limit: int
) -> tuple[list[ChatMessage], bool]:
    """One page of visible history (api-behaviour §6.11); cursors <= 0 are unset.

    Only ``after_id`` set pages forward (ascending); anything else pages back (newest first).
    Returns the page and whether more rows lie beyond it.
    """
    query = sa.select(chat_messages).where(chat_messages.c.chat_id == chat_id, VISIBLE)
    if before_id > 0:
        query = query.where(chat_messages.c.id < before_id)
    if after_id > 0:
        query = query.where(chat_messages.c.id > after_id)
    forward = after_id > 0 and before_id <= 0
    order = chat_messages.c.id.asc() if forward else chat_messages.c.id.desc()
    rows = (await conn.execute(query.order_by(order).limit(limit + 1))).all()
    return [convert.message(r.as_dict()) for r in rows[:limit]], len(rows) > limit


async def visible_messages(conn: Connection, chat_id: uuid.UUID) -> list[ChatMessage]:
    """The whole visible history, oldest first."""
    rows = await conn.execute(
        sa.select(chat_messages)
        .where(chat_messages.c.chat_id == chat_id, VISIBLE)
        .order_by(chat_messages.c.id)
    )
    return [convert.message(r.as_dict()) for r in rows]


async def user_prompts(conn: Connection, chat_id: uuid.UUID, limit: int) -> list[ChatPrompt]:
    """The chat's user prompts, newest first: text parts joined without separator.

    Prompts without any non-blank text are skipped and do not count towards ``limit``.
    """
    rows = await conn.execute(
        sa.select(chat_messages.c.id, chat_messages.c.content)
        .where(chat_messages.c.chat_id == chat_id, chat_messages.c.role == "user", VISIBLE)
        .order_by(chat_messages.c.id.desc())
    )
    prompts: list[ChatPrompt] = []
    for row in rows:
        if not isinstance(row.content, list):
            continue
        text = "".join(
            str(p.get("text") or "")
            for p in row.content
            if isinstance(p, dict) and p.get("type") == "text"
        )
        if text.strip():
            prompts.append(ChatPrompt(id=row.id, text=text))
            if len(prompts) >= limit:
                break
    return prompts


async def get_message_row(
    conn: Connection, chat_id: uuid.UUID, message_id: int
) -> RowDict | None:
    """An undeleted message of this chat."""
    row = (
        await conn.execute(
            sa.select(chat_messages).where(
                chat_messages.c.id == message_id,
                chat_messages.c.chat_id == chat_id,
                chat_messages.c.deleted.is_(False),
            )
        )
    ).first()
    return row.as_dict() if row else None


async def soft_delete_from(conn: Connection, chat_id: uuid.UUID, message_id: int) -> None:
    """Soft-delete a message and every later message of the chat."""
    await conn.execute(
        chat_messages.update()
        .where(chat_messages.c.chat_id == chat_id, chat_messages.c.id >= message_id)
        .values(deleted=True)
    )


async def last_assistant_message(conn: Connection, chat_id: uuid.UUID) -> RowDict | None:
    row = (
        await conn.execute(
            sa.select(chat_messages)
            .where(
                chat_messages.c.chat_id == chat_id,
                chat_messages.c.role == "assistant",
                chat_messages.c.deleted.is_(False),
            )
            .order_by(chat_messages.c.id.desc())
            .limit(1)
        )
    ).first()
    return row.as_dict() if row else None


async def tool_result_ids_after(
    conn: Connection, chat_id: uuid.UUID, message_id: int
) -> set[str]:
    """Tool call ids answered by undeleted tool messages newer than ``message_id``."""
    rows = await conn.execute(
        sa.select(chat_messages.c.content).where(
            chat_messages.c.chat_id == chat_id,
            chat_messages.c.role == "tool",
            chat_messages.c.deleted.is_(False),
            chat_messages.c.id > message_id,
        )
    )
    answered: set[str] = set()
    for (content,) in rows:
        for part in content if isinstance(content, list) else []:
            if isinstance(part, dict) and part.get("type") == "tool-result":
                answered.add(str(part.get("tool_call_id") or ""))
    return answered


async def _count_queue(conn: Connection, chat_id: uuid.UUID, change: int) -> None:
    """Keep ``chats.queue_length`` (the caller holds the chat's row lock)."""
    if change:
        await conn.execute(_CHANGE_QUEUE_LENGTH, {"chat_id": chat_id, "change": change})


async def insert_queued(
    conn: Connection,
    *,
    now: dt.datetime,
    chat_id: uuid.UUID,
    content: list[dict[str, Any]],
    model_config_id: uuid.UUID | None,
    created_by: uuid.UUID | None,
) -> ChatQueuedMessage:
    row = (
        await conn.execute(
            chat_queued_messages.insert()
            .values(
                chat_id=chat_id,
                content=content,
                model_config_id=model_config_id,
                created_by=created_by,
                created_at=now,
            )
            .returning(*chat_queued_messages.c)
        )
    ).one()
    await _count_queue(conn, chat_id, 1)
    return convert.queued_message(row.as_dict())


async def get_queued_row(
    conn: Connection, chat_id: uuid.UUID, queued_id: int
) -> RowDict | None:
    row = (
        await conn.execute(
            sa.select(chat_queued_messages).where(
                chat_queued_messages.c.id == queued_id, chat_queued_messages.c.chat_id == chat_id
            )
        )
    ).first()
    return row.as_dict() if row else None


async def delete_queued(conn: Connection, chat_id: uuid.UUID, queued_id: int) -> None:
    """Delete one queued message of this chat (an unknown id is a no-op)."""
    deleted = await conn.execute(
        chat_queued_messages.delete().where(
            chat_queued_messages.c.id == queued_id, chat_queued_messages.c.chat_id == chat_id
        )
    )
    await _count_queue(conn, chat_id, -deleted.rowcount)


async def clear_queue(conn: Connection, chat_id: uuid.UUID) -> None:
    deleted = await conn.execute(
        chat_queued_messages.delete().where(chat_queued_messages.c.chat_id == chat_id)
    )
    await _count_queue(conn, chat_id, -deleted.rowcount)


async def move_queued_to_front(conn: Connection, chat_id: uuid.UUID, queued_id: int) -> None:
    """Give a queued message a created_at 1µs before the current head (api-behaviour §3.3)."""
    head = (
        await conn.execute(
            sa.select(sa.func.min(chat_queued_messages.c.created_at)).where(
                chat_queued_messages.c.chat_id == chat_id
            )
        )
    ).scalar_one()
    if head is None:
        return
    await conn.execute(
        chat_queued_messages.update()
        .where(chat_queued_messages.c.id == queued_id, chat_queued_messages.c.chat_id == chat_id)
        .values(created_at=head - dt.timedelta(microseconds=1))
    )
