"""Stream and watch event wire types."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

from chatd.sdk.base import WireModel
from chatd.sdk.chats import (
    Chat,
    ChatError,
    ChatErrorKind,
    ChatMessage,
    ChatMessagePart,
    ChatMessageRole,
    ChatQueuedMessage,
    ChatStatus,
)


class ChatStreamEventType(StrEnum):
    message_part = "message_part"
    message = "message"
    status = "status"
    error = "error"
    queue_update = "queue_update"
    retry = "retry"
    action_required = "action_required"
    # An addition to the reference's types: a stream resumed with ``after_seq`` could not be
    # given every event after it (older than the server keeps); the snapshot follows.
    history_reset = "history_reset"


class ChatWatchEventKind(StrEnum):
    status_change = "status_change"
    summary_change = "summary_change"
    title_change = "title_change"
    created = "created"
    deleted = "deleted"
    diff_status_change = "diff_status_change"
    action_required = "action_required"
    # An addition to the reference's types: a stream resumed with ``after_seq`` could not be
    # given every event after it (older than the server keeps); the snapshot follows.
    history_reset = "history_reset"


class ChatStreamMessagePart(WireModel):
    role: ChatMessageRole | None = None
    part: ChatMessagePart


class ChatStreamStatus(WireModel):
    status: ChatStatus


class ChatStreamRetry(WireModel):
    attempt: int
    delay_ms: int
    error: str
    kind: ChatErrorKind | None = None
    provider: str | None = None
    status_code: int | None = None
    retrying_at: dt.datetime


class ChatStreamToolCall(WireModel):
    tool_call_id: str
    tool_name: str
    args: str


class ChatStreamActionRequired(WireModel):
    tool_calls: list[ChatStreamToolCall]


class ChatStreamEvent(WireModel):
    type: ChatStreamEventType
    chat_id: uuid.UUID
    message: ChatMessage | None = None
    message_part: ChatStreamMessagePart | None = None
    status: ChatStreamStatus | None = None
    error: ChatError | None = None
    retry: ChatStreamRetry | None = None
    queued_messages: list[ChatQueuedMessage] | None = None
    action_required: ChatStreamActionRequired | None = None
    # The event's place in the chat's stream (an addition to the reference's fields): strictly
    # increasing, and what ``GET /chats/{chat}/stream?after_seq=`` resumes after.
    seq: int | None = None


class ChatWatchEvent(WireModel):
    kind: ChatWatchEventKind
    chat: Chat
    tool_calls: list[ChatStreamToolCall] | None = None
