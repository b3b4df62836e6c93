"""Persisting one step of a turn (engine-behaviour §5.7, §5.8) in one transaction.

The assistant message (content, usage, cost, context limit, runtime, provider response id),
then one tool message per local result. The chat row is locked first; a worker that no longer
owns the chat may still write only when the chat is now ``waiting`` (a plain interrupt keeps
its partial output). Otherwise (an edit made it ``pending``, another worker took it) the
write is refused so stale output never lands after an edit.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncConnection

from chatd.events.outbox import Outbox
from chatd.llm.types import Usage
from chatd.sdk.chats import ChatMessagePart, ChatMessageRole, ChatStatus, parts_json
from chatd.store.messages import insert_message
from chatd.store.transition_steps import TransitionError, lock, message_event


class StepRefused(TransitionError):
    """The chat is no longer this worker's to write to."""


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


async def persist_step(
    conn: AsyncConnection, now: dt.datetime, chat_id: uuid.UUID, worker_id: uuid.UUID, step: Step
) -> Outbox:
    chat = await lock(conn, chat_id)
    if chat["worker_id"] != worker_id and chat["status"] != ChatStatus.waiting:
        raise StepRefused(str(chat_id))
    usage = step.usage or Usage()
    assistant = await insert_message(
        conn,
        now=now,
        chat_id=chat_id,
        role=ChatMessageRole.assistant.value,
        content=parts_json(step.assistant),
        model_config_id=step.model_config_id,
        model_is_current=chat["last_model_config_id"] == step.model_config_id,
        input_tokens=usage.input_tokens,
        output_tokens=usage.output_tokens,
        total_tokens=usage.total_tokens,
        reasoning_tokens=usage.reasoning_tokens,
        cache_creation_tokens=usage.cache_creation_tokens,
        cache_read_tokens=usage.cache_read_tokens,
        context_limit=step.context_limit,
        total_cost_micros=step.cost_micros,
        runtime_ms=step.runtime_ms,
        provider_response_id=step.provider_response_id,
    )
    outbox = Outbox(stream=[message_event(assistant)])
    for result in step.tool_results:
        message = await insert_message(
            conn,
            now=now,
            chat_id=chat_id,
            role=ChatMessageRole.tool.value,
            content=parts_json([result]),
            model_config_id=step.model_config_id,
            model_is_current=True,  # the assistant message above made it so
        )
        outbox.stream.append(message_event(message))
    return outbox
