"""Database rows to wire types (the only place that knows both shapes)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from chatd.github_site import GITHUB_COM, GitHubSite
from chatd.sdk.chats import (
    Chat,
    ChatDiffStatus,
    ChatError,
    ChatErrorKind,
    ChatFileMetadata,
    ChatMessage,
    ChatMessagePart,
    ChatMessageUsage,
    ChatQueuedMessage,
)

Row = Mapping[Any, Any]
FALLBACK_ERROR = "The chat request failed unexpectedly."
USAGE_FIELDS = (
    "input_tokens",
    "output_tokens",
    "total_tokens",
    "reasoning_tokens",
    "cache_creation_tokens",
    "cache_read_tokens",
    "context_limit",
)
# Beyond the reference's usage: the step's cost in millionths of a dollar, when its model
# config has prices (NULL, and left out, when the cost is unknown).
WIRE_USAGE_FIELDS = (*USAGE_FIELDS, "total_cost_micros")


def parts(raw: Any) -> list[ChatMessagePart]:
    if not isinstance(raw, list):
        return []
    return [ChatMessagePart.model_validate(p) for p in raw]


def chat_error(raw: Any) -> ChatError | None:
    """Decode ``chats.last_error`` leniently (api-behaviour §4.6)."""
    if raw is None:
        return None
    if not isinstance(raw, dict):
        return ChatError(message=FALLBACK_ERROR, kind=ChatErrorKind.generic)
    message = str(raw.get("message") or "").strip() or FALLBACK_ERROR
    kind_raw = str(raw.get("kind") or "").strip()
    try:
        kind = ChatErrorKind(kind_raw) if kind_raw else ChatErrorKind.generic
    except ValueError:
        kind = ChatErrorKind.generic
    detail = str(raw.get("detail") or "").strip() or None
    provider = str(raw.get("provider") or "").strip() or None
    status = raw.get("status_code")
    return ChatError(
        message=message,
        detail=detail,
        kind=kind,
        provider=provider,
        retryable=bool(raw.get("retryable", False)),
        status_code=status if isinstance(status, int) and status else None,
    )


def empty_diff_status(chat_id: uuid.UUID) -> ChatDiffStatus:
    return ChatDiffStatus(chat_id=chat_id)


def diff_status(row: Row, github: GitHubSite = GITHUB_COM) -> ChatDiffStatus:
    """A ``chat_diff_statuses`` row; without a stored URL, the branch's page on ``github``
    when the origin is there (api-behaviour §4.7)."""
    url = (row["url"] or "").strip() or github.branch_url(
        row["git_remote_origin"], row["git_branch"]
    )
    state = (row["pull_request_state"] or "").strip() or None
    return ChatDiffStatus(
        chat_id=row["chat_id"],
        url=url or None,
        pull_request_state=state,
        pull_request_title=row["pull_request_title"],
        pull_request_draft=row["pull_request_draft"],
        changes_requested=row["changes_requested"],
        additions=row["additions"],
        deletions=row["deletions"],
        changed_files=row["changed_files"],
        author_login=row["author_login"],
        author_avatar_url=row["author_avatar_url"],
        base_branch=row["base_branch"],
        head_branch=row["head_branch"],
        pr_number=row["pr_number"],
        commits=row["commits"],
        approved=row["approved"],
        reviewer_count=row["reviewer_count"],
        refreshed_at=row["refreshed_at"],
        stale_at=row["stale_at"],
    )


def chat(row: Row, *, has_unread: bool = False) -> Chat:
    """A chat row (joined with its owner's name and username) as the wire ``Chat``."""
    chat_id: uuid.UUID = row["id"]
    return Chat(
        id=chat_id,
        organization_id=row["organization_id"],
        owner_id=row["owner_id"],
        owner_name=row.get("owner_name") or "",
        owner_username=row.get("owner_username") or "",
        workspace_id=row["workspace_id"],
        build_id=row["build_id"],
        agent_id=row["agent_id"],
        parent_chat_id=row["parent_chat_id"],
        root_chat_id=row["root_chat_id"] or row["parent_chat_id"] or chat_id,
        last_model_config_id=row["last_model_config_id"],
        title=row["title"],
        status=row["status"],
        plan_mode=row["plan_mode"] or None,
        last_error=chat_error(row["last_error"]),
        last_turn_summary=row["last_turn_summary"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        archived=row["archived"],
        pin_order=row["pin_order"],
        mcp_server_ids=[uuid.UUID(str(v)) for v in row["mcp_server_ids"] or []],
        labels=dict(row["labels"] or {}),
        has_unread=has_unread,
        last_injected_context=parts(row["last_injected_context"])
        if row["last_injected_context"]
        else None,
        client_type=row["client_type"],
    )


def message(row: Row) -> ChatMessage:
    usage_values = {f: row[f] for f in WIRE_USAGE_FIELDS if row[f] is not None}
    content = parts(row["content"])
    return ChatMessage(
        id=row["id"],
        chat_id=row["chat_id"],
        created_by=row["created_by"],
        model_config_id=row["model_config_id"],
        created_at=row["created_at"],
        role=row["role"],
        content=content or None,
        usage=ChatMessageUsage(**usage_values) if usage_values else None,
    )


def queued_message(row: Row) -> ChatQueuedMessage:
    return ChatQueuedMessage(
        id=row["id"],
        chat_id=row["chat_id"],
        model_config_id=row["model_config_id"],
        content=parts(row["content"]),
        created_at=row["created_at"],
    )


def file_metadata(row: Row) -> ChatFileMetadata:
    return ChatFileMetadata(
        id=row["id"],
        owner_id=row["owner_id"],
        organization_id=row["organization_id"],
        name=row["name"],
        mime_type=row["mimetype"],
        created_at=row["created_at"],
    )
