"""Client-side (dynamic) tool calls: which are pending, their results, T11 (engine §11)."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import JsonValue

from chatd.sdk.chats import (
    ChatMessage,
    ChatMessagePart,
    ChatMessagePartType,
    ChatStatus,
    ToolResult,
    parts_json,
)
from chatd.store.messages import insert_message, last_assistant_message, tool_result_ids_after
from chatd.store.outbox import Outbox
from chatd.store.sql import Connection
from chatd.store.transition_steps import (
    ChatArchived,
    NotAwaitingToolResults,
    ToolResultsMismatch,
    announce_status,
    lock,
    message_event,
    set_status,
)

INTERRUPTED_BY_USER = "Tool execution interrupted by user"
INTERRUPTED_BY_PROMOTION = "Tool execution interrupted by queued message promotion"


@dataclass(frozen=True)
class PendingCall:
    tool_call_id: str
    tool_name: str


def dynamic_tool_names(raw: Any) -> set[str]:
    """Names of the tools a chat declared at creation (``chats.dynamic_tools``)."""
    if not isinstance(raw, list):
        return set()
    return {str(t["name"]) for t in raw if isinstance(t, dict) and t.get("name")}


async def pending_calls(
    conn: Connection, chat: Mapping[Any, Any], *, dynamic_only: bool = True
) -> list[PendingCall]:
    """Dynamic tool calls (every call, unless ``dynamic_only``) in the last assistant message
    that have no result after it."""
    names = dynamic_tool_names(chat["dynamic_tools"])
    if dynamic_only and not names:
        return []
    assistant = await last_assistant_message(conn, chat["id"])
    if assistant is None or not isinstance(assistant["content"], list):
        return []
    answered = await tool_result_ids_after(conn, chat["id"], assistant["id"])
    calls: list[PendingCall] = []
    for part in assistant["content"]:
        if not isinstance(part, dict) or part.get("type") != "tool-call":
            continue
        call_id, name = str(part.get("tool_call_id") or ""), str(part.get("tool_name") or "")
        if (name in names or not dynamic_only) and call_id not in answered:
            calls.append(PendingCall(tool_call_id=call_id, tool_name=name))
    return calls


async def insert_tool_result(
    conn: Connection,
    *,
    now: dt.datetime,
    chat: Mapping[Any, Any],
    call: PendingCall,
    result: JsonValue,
    is_error: bool,
    created_by: uuid.UUID | None,
) -> ChatMessage:
    """One ``tool`` message holding one result, on the chat's last model."""
    part = ChatMessagePart(
        type=ChatMessagePartType.tool_result,
        tool_call_id=call.tool_call_id,
        tool_name=call.tool_name,
        result=result,
        is_error=is_error or None,
        created_at=now,
    )
    return await insert_message(
        conn,
        now=now,
        chat_id=chat["id"],
        role="tool",
        content=parts_json([part]),
        model_config_id=chat["last_model_config_id"],
        created_by=created_by,
    )


async def interrupt_pending_calls(
    conn: Connection,
    now: dt.datetime,
    chat: Mapping[Any, Any],
    text: str,
    *,
    dynamic_only: bool = True,
) -> list[ChatMessage]:
    """Answer every pending dynamic call (every open call, unless ``dynamic_only``) with a
    synthetic error result."""
    return [
        await insert_tool_result(
            conn,
            now=now,
            chat=chat,
            call=call,
            result={"error": text},
            is_error=True,
            created_by=None,
        )
        for call in await pending_calls(conn, chat, dynamic_only=dynamic_only)
    ]


async def submit_tool_results(
    conn: Connection,
    now: dt.datetime,
    chat_id: uuid.UUID,
    submitter_id: uuid.UUID,
    results: list[ToolResult],
) -> Outbox:
    """T11: answer exactly the pending dynamic calls, one tool message each; then pending.

    A result whose ``output`` is absent from the body is "not valid JSON"; an explicit JSON
    ``null`` is valid and gives a tool-result part without ``result``.
    """
    chat = await lock(conn, chat_id)
    if chat["archived"]:
        raise ChatArchived(str(chat_id))
    if chat["status"] != ChatStatus.requires_action:
        raise NotAwaitingToolResults(str(chat_id))
    pending = await pending_calls(conn, chat)
    by_id: dict[str, ToolResult] = {}
    for result in results:
        if result.tool_call_id in by_id:
            raise ToolResultsMismatch("duplicate", result.tool_call_id)
        by_id[result.tool_call_id] = result
    pending_ids = {call.tool_call_id for call in pending}
    for call in pending:
        if call.tool_call_id not in by_id:
            raise ToolResultsMismatch("missing", call.tool_call_id)
    for result in results:
        if result.tool_call_id not in pending_ids:
            raise ToolResultsMismatch("unexpected", result.tool_call_id)
        if "output" not in result.model_fields_set:
            raise ToolResultsMismatch("invalid_output", result.tool_call_id)
    outbox = Outbox(wake_workers=True)
    for call in pending:
        answer = by_id[call.tool_call_id]
        message = await insert_tool_result(
            conn,
            now=now,
            chat=chat,
            call=call,
            result=answer.output,
            is_error=answer.is_error,
            created_by=submitter_id,
        )
        outbox.stream.append(message_event(message))
    announce_status(outbox, await set_status(conn, now, chat_id, ChatStatus.pending))
    return outbox
