"""Persisting a context summary (engine-behaviour §8 step 4): three compressed rows at once."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass, field
from typing import Any

from chatd.sdk.chats import ChatMessagePart, ChatStatus, parts_json
from chatd.store.chats import lock_chat
from chatd.store.messages import insert_message
from chatd.store.outbox import Outbox
from chatd.store.sql import Connection
from chatd.store.transition_steps import message_event


@dataclass(frozen=True)
class ContextSummary:
    chat_id: uuid.UUID
    model_config_id: uuid.UUID
    # The model-only user row the prompt query later starts from.
    prompt_text: str
    # The assistant row's tool call and the tool row's result, both shown to users.
    call: ChatMessagePart
    result: ChatMessagePart
    # Tokens the summarising call used, carried by the assistant row.
    usage: dict[str, Any] = field(default_factory=dict)


async def persist_summary(
    conn: Connection, now: dt.datetime, worker_id: uuid.UUID, summary: ContextSummary
) -> Outbox | None:
    """Insert the summary rows if ``worker_id`` still runs the chat (else ``None``, nothing
    written). The assistant and tool rows are published as ``message`` events."""
    row = await lock_chat(conn, summary.chat_id)
    if row is None or row["status"] != ChatStatus.running or row["worker_id"] != worker_id:
        return None
    await insert_message(
        conn,
        now=now,
        chat_id=summary.chat_id,
        role="user",
        content=[{"type": "text", "text": summary.prompt_text}],
        visibility="model",
        compressed=True,
    )
    call = await insert_message(
        conn,
        now=now,
        chat_id=summary.chat_id,
        role="assistant",
        content=parts_json([summary.call]),
        visibility="user",
        model_config_id=summary.model_config_id,
        compressed=True,
        **summary.usage,
    )
    result = await insert_message(
        conn,
        now=now,
        chat_id=summary.chat_id,
        role="tool",
        content=parts_json([summary.result]),
        visibility="both",
        compressed=True,
    )
    return Outbox(stream=[message_event(call), message_event(result)])
