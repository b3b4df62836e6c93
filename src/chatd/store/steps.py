"""Persisting one step of a turn (engine-behaviour §5.7, §5.8), all or nothing.

The assistant message (content, usage, cost, context limit, runtime, provider response id),
then one tool message per local result. Each row is inserted only while the chat is still
this worker's, or ``waiting`` and not claimed since this turn's claim (a plain interrupt keeps
its partial output; ``turn_seq`` tells this turn's claim from a later one): the INSERT selects
from the chat's row under its lock, so a step never lands after an edit made the chat
``pending``, after another worker took it, or after a turn that followed an edit ended.
The step's rows and their logged ``message`` events are one transaction.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from chatd.llm.types import Usage
from chatd.sdk.chats import ChatMessagePart, ChatMessageRole, ChatStatus, parts_json
from chatd.store import convert, stream_log
from chatd.store.db import Database
from chatd.store.messages import follow_model
from chatd.store.outbox import Outbox
from chatd.store.sql import Connection
from chatd.store.tables import chat_messages, chats
from chatd.store.transition_steps import TransitionError, message_event


class StepRefused(TransitionError):
    """The chat is no longer this worker's to write to (or is gone)."""


@dataclass(frozen=True)
class Step:
    model_config_id: uuid.UUID
    assistant: list[ChatMessagePart]
    tool_results: list[ChatMessagePart] = field(default_factory=list)
    usage: Usage | None = None
    context_limit: int | None = None
    cost_micros: int | None = None
    runtime_ms: int | None = None
    provider_response_id: str | None = None
    # The chat's last_model_config_id already names ``model_config_id`` (the turn knows what
    # its chat row named); False: the transaction makes it so if it does not.
    model_is_current: bool = False


_USAGE = (*convert.USAGE_FIELDS, "total_cost_micros", "runtime_ms", "provider_response_id")
_VALUES = ("created_at", "role", "content", "model_config_id", *_USAGE)
_OURS = sa.or_(
    chats.c.worker_id == sa.bindparam("worker_id", type_=chats.c.worker_id.type),
    sa.and_(
        chats.c.status == ChatStatus.waiting.value,
        chats.c.turn_seq == sa.bindparam("turn_seq", type_=chats.c.turn_seq.type),
    ),
)
# Built once (see chatd.store.chats). SQLite has no FOR UPDATE (the clause compiles to
# nothing); its writer lock, taken by BEGIN IMMEDIATE, keeps the row still instead.
_INSERT_IF_OURS = (
    chat_messages.insert()
    .from_select(
        ["chat_id", *_VALUES],
        sa.select(
            chats.c.id, *(sa.bindparam(name, type_=chat_messages.c[name].type) for name in _VALUES)
        )
        .where(chats.c.id == sa.bindparam("chat_id"), _OURS)
        .with_for_update(),
    )
    .returning(*chat_messages.c)
)


async def save_step(
    db: Database,
    now: dt.datetime,
    chat_id: uuid.UUID,
    worker_id: uuid.UUID,
    step: Step,
    *,
    turn_seq: int,
) -> Outbox:
    """Store the step of the turn claimed as ``turn_seq`` (the chat's ``turn_seq`` then) and
    return its ``message`` events (sealed); :class:`StepRefused` stores nothing."""
    return await db.run_write(_insert_step, now, chat_id, worker_id, turn_seq, step)


async def _insert_step(
    conn: Connection,
    now: dt.datetime,
    chat_id: uuid.UUID,
    worker_id: uuid.UUID,
    turn_seq: int,
    step: Step,
) -> Outbox:
    usage = step.usage or Usage()
    common = {
        "chat_id": chat_id,
        "worker_id": worker_id,
        "turn_seq": turn_seq,
        "created_at": now,
        "model_config_id": step.model_config_id,
    }
    # Zero counts are stored as NULL, as every message insert does.
    assistant: dict[str, Any] = {
        "role": ChatMessageRole.assistant.value,
        "content": parts_json(step.assistant),
        "input_tokens": usage.input_tokens or None,
        "output_tokens": usage.output_tokens or None,
        "total_tokens": usage.total_tokens or None,
        "reasoning_tokens": usage.reasoning_tokens or None,
        "cache_creation_tokens": usage.cache_creation_tokens or None,
        "cache_read_tokens": usage.cache_read_tokens or None,
        "context_limit": step.context_limit or None,
        "total_cost_micros": step.cost_micros or None,
        "runtime_ms": step.runtime_ms or None,
        "provider_response_id": step.provider_response_id or None,
    }
    rows = [assistant] if step.assistant else []  # none: results of calls resumed after a wait
    rows += [
        {"role": ChatMessageRole.tool.value, "content": parts_json([result])}
        for result in step.tool_results
    ]
    outbox = Outbox()
    for values in rows:
        params = dict.fromkeys(_USAGE) | common | values
        row = (await conn.execute(_INSERT_IF_OURS, params)).first()
        if row is None:
            raise StepRefused(str(chat_id))  # the caller's transaction rolls back
        outbox.stream.append(message_event(convert.message(row.as_dict())))
    if not step.model_is_current:
        await follow_model(conn, chat_id, step.model_config_id)
    return await stream_log.seal(conn, outbox, now)
