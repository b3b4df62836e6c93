"""Chat resource wire types: chats, messages, parts, files, requests and responses."""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum
from typing import Annotated, Any, ClassVar

from pydantic import Field, JsonValue

from chatd.sdk.base import INT32_MAX, Int32, RequestModel, StrictBool, WireModel


class ChatStatus(StrEnum):
    waiting = "waiting"
    pending = "pending"
    running = "running"
    paused = "paused"
    completed = "completed"
    error = "error"
    requires_action = "requires_action"


class ChatClientType(StrEnum):
    ui = "ui"
    api = "api"


class ChatPlanMode(StrEnum):
    plan = "plan"


class ChatErrorKind(StrEnum):
    generic = "generic"
    overloaded = "overloaded"
    rate_limit = "rate_limit"
    timeout = "timeout"
    startup_timeout = "startup_timeout"
    auth = "auth"
    config = "config"
    usage_limit = "usage_limit"
    missing_key = "missing_key"
    provider_disabled = "provider_disabled"


class ChatMessageRole(StrEnum):
    system = "system"
    user = "user"
    assistant = "assistant"
    tool = "tool"


class ChatMessagePartType(StrEnum):
    text = "text"
    reasoning = "reasoning"
    tool_call = "tool-call"
    tool_result = "tool-result"
    source = "source"
    file = "file"
    file_reference = "file-reference"
    context_file = "context-file"
    skill = "skill"


class ChatMessagePart(WireModel):
    type: ChatMessagePartType
    text: str | None = None
    signature: str | None = None
    created_at: dt.datetime | None = None
    completed_at: dt.datetime | None = None
    tool_call_id: str | None = None
    tool_name: str | None = None
    mcp_server_config_id: uuid.UUID | None = None
    args: JsonValue | None = None
    args_delta: str | None = None
    parsed_commands: list[list[str]] | None = None
    provider_executed: bool | None = None
    result: JsonValue | None = None
    result_delta: str | None = None
    result_reset: bool | None = None
    is_error: bool | None = None
    is_media: bool | None = None
    source_id: str | None = None
    url: str | None = None
    title: str | None = None
    media_type: str | None = None
    name: str | None = None
    file_id: uuid.UUID | None = None
    data: str | None = None
    file_name: str | None = None
    start_line: int | None = None
    end_line: int | None = None
    content: str | None = None
    context_file_path: str | None = None
    context_file_truncated: bool | None = None
    context_file_agent_id: uuid.UUID | None = None
    skill_name: str | None = None
    skill_description: str | None = None


class StoredMessagePart(ChatMessagePart):
    """A part as the database keeps it: the wire fields plus internal ones the server never
    sends (reading a stored part as :class:`ChatMessagePart` drops them)."""

    context_file_content: str | None = None
    context_file_os: str | None = None
    context_file_directory: str | None = None
    skill_dir: str | None = None


# A line number in a file reference: 1-based, 0 when not given.
LineNumber = Annotated[int, Field(strict=True, ge=0, le=INT32_MAX)]


class ChatInputPart(RequestModel):
    type: str = ""
    text: str | None = None
    file_id: uuid.UUID | None = None
    file_name: str | None = None
    start_line: LineNumber | None = None
    end_line: LineNumber | None = None
    content: str | None = None


class ChatError(WireModel):
    message: str
    detail: str | None = None
    kind: ChatErrorKind | None = None
    provider: str | None = None
    retryable: bool = False
    status_code: int | None = None


class ChatDiffStatus(WireModel):
    chat_id: uuid.UUID
    url: str | None = None
    pull_request_state: str | None = None
    pull_request_title: str = ""
    pull_request_draft: bool = False
    changes_requested: bool = False
    additions: int = 0
    deletions: int = 0
    changed_files: int = 0
    author_login: str | None = None
    author_avatar_url: str | None = None
    base_branch: str | None = None
    head_branch: str | None = None
    pr_number: int | None = None
    commits: int | None = None
    approved: bool | None = None
    reviewer_count: int | None = None
    refreshed_at: dt.datetime | None = None
    stale_at: dt.datetime | None = None


class ChatFileMetadata(WireModel):
    id: uuid.UUID
    owner_id: uuid.UUID
    organization_id: uuid.UUID
    name: str
    mime_type: str
    created_at: dt.datetime


class Chat(WireModel):
    nullable_fields: ClassVar[frozenset[str]] = frozenset({"last_turn_summary"})

    id: uuid.UUID
    organization_id: uuid.UUID
    owner_id: uuid.UUID
    owner_name: str = ""
    owner_username: str = ""
    workspace_id: uuid.UUID | None = None
    build_id: uuid.UUID | None = None
    agent_id: uuid.UUID | None = None
    parent_chat_id: uuid.UUID | None = None
    root_chat_id: uuid.UUID
    last_model_config_id: uuid.UUID
    title: str
    status: ChatStatus
    plan_mode: ChatPlanMode | None = None
    last_error: ChatError | None = None
    last_turn_summary: str | None = None
    diff_status: ChatDiffStatus | None = None
    created_at: dt.datetime
    updated_at: dt.datetime
    archived: bool = False
    pin_order: int = 0
    mcp_server_ids: list[uuid.UUID] = Field(default_factory=list)
    labels: dict[str, str] = Field(default_factory=dict)
    files: list[ChatFileMetadata] | None = None
    has_unread: bool = False
    last_injected_context: list[ChatMessagePart] | None = None
    warnings: list[str] | None = None
    client_type: ChatClientType = ChatClientType.api
    children: list[Chat] = Field(default_factory=list)


class ChatMessageUsage(WireModel):
    input_tokens: int | None = None
    output_tokens: int | None = None
    total_tokens: int | None = None
    reasoning_tokens: int | None = None
    cache_creation_tokens: int | None = None
    cache_read_tokens: int | None = None
    context_limit: int | None = None
    # chatd's addition: the step's cost in millionths of a US dollar, from its model config's
    # prices (absent when they are not set).
    total_cost_micros: int | None = None


class ChatMessage(WireModel):
    id: int
    chat_id: uuid.UUID
    created_by: uuid.UUID | None = None
    model_config_id: uuid.UUID | None = None
    created_at: dt.datetime
    role: ChatMessageRole
    content: list[ChatMessagePart] | None = None
    usage: ChatMessageUsage | None = None


class ChatQueuedMessage(WireModel):
    id: int
    chat_id: uuid.UUID
    model_config_id: uuid.UUID | None = None
    content: list[ChatMessagePart]
    created_at: dt.datetime


class ChatMessagesResponse(WireModel):
    messages: list[ChatMessage]
    queued_messages: list[ChatQueuedMessage]
    has_more: bool


class ChatPrompt(WireModel):
    id: int
    text: str


class ChatPromptsResponse(WireModel):
    prompts: list[ChatPrompt]


class DynamicTool(RequestModel):
    name: str = ""
    description: str | None = None
    input_schema: JsonValue = None


class CreateChatRequest(RequestModel):
    required_fields: ClassVar[frozenset[str]] = frozenset({"organization_id", "content"})

    organization_id: uuid.UUID | None = None
    content: list[ChatInputPart] | None = None
    system_prompt: str | None = None
    workspace_id: uuid.UUID | None = None
    model_config_id: uuid.UUID | None = None
    mcp_server_ids: list[uuid.UUID] | None = None
    labels: dict[str, str] | None = None
    unsafe_dynamic_tools: list[DynamicTool] | None = None
    plan_mode: str | None = None
    client_type: str | None = None


class UpdateChatRequest(RequestModel):
    title: str | None = None
    archived: StrictBool | None = None
    workspace_id: uuid.UUID | None = None
    pin_order: Int32 | None = None
    labels: dict[str, str] | None = None
    plan_mode: str | None = None


class ProposeChatTitleResponse(WireModel):
    """``POST /chats/{chat}/title/propose``: a generated title, not saved."""

    title: str


class CreateChatMessageRequest(RequestModel):
    required_fields: ClassVar[frozenset[str]] = frozenset({"content"})

    content: list[ChatInputPart] | None = None
    model_config_id: uuid.UUID | None = None
    mcp_server_ids: list[uuid.UUID] | None = None
    busy_behavior: str | None = None
    plan_mode: str | None = None


class CreateChatMessageResponse(WireModel):
    message: ChatMessage | None = None
    queued_message: ChatQueuedMessage | None = None
    queued: bool
    warnings: list[str] | None = None


class EditChatMessageRequest(RequestModel):
    required_fields: ClassVar[frozenset[str]] = frozenset({"content"})

    content: list[ChatInputPart] | None = None
    model_config_id: uuid.UUID | None = None


class EditChatMessageResponse(WireModel):
    message: ChatMessage
    warnings: list[str] | None = None


class ToolResult(RequestModel):
    tool_call_id: str = ""
    output: JsonValue = None
    is_error: StrictBool = False


class SubmitToolResultsRequest(RequestModel):
    required_fields: ClassVar[frozenset[str]] = frozenset({"results"})

    results: list[ToolResult] | None = None


class UploadChatFileResponse(WireModel):
    id: uuid.UUID


class ChatDiffContents(WireModel):
    chat_id: uuid.UUID
    provider: str | None = None
    remote_origin: str | None = None
    branch: str | None = None
    pull_request_url: str | None = None
    diff: str | None = None


def parts_json(parts: list[ChatMessagePart]) -> list[dict[str, Any]]:
    """Parts as stored in the database (the same omit-empty JSON the API sends)."""
    return [p.model_dump(mode="json") for p in parts]
