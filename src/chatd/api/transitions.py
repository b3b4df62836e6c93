"""Route-side rules around chat state transitions: who may act, path ids, refusal answers."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

from chatd.api.errors import ApiError, forbidden, not_found
from chatd.authz import Actor
from chatd.store import transition_steps as cs
from chatd.store.chat_state import MAX_QUEUE_SIZE
from chatd.store.sql import RowDict

ARCHIVED_SEND = "Cannot send messages to an archived chat."
ARCHIVED_EDIT = "Cannot edit messages in an archived chat."
ARCHIVED_PROMOTE = "Cannot promote queued messages in an archived chat."
ARCHIVED_TOOL_RESULTS = "Cannot submit tool results to an archived chat."
INT64_MAX = 2**63 - 1
_INTEGER = re.compile(r"[+-]?[0-9]+")

_MISMATCH = {
    "duplicate": ("Duplicate tool_call_id in results.", 'Duplicate tool call ID "{}".'),
    "missing": ("Missing tool result.", 'Missing result for tool call "{}".'),
    "unexpected": ("Unexpected tool result.", 'No pending tool call with ID "{}".'),
    "invalid_output": (
        "Tool result output must be valid JSON.",
        'Output for tool call "{}" is missing.',
    ),
}


def can_update(actor: Actor, chat: RowDict) -> bool:
    """RBAC ``update`` on a chat: its owner, or a site owner (who still is not the chat owner)."""
    return actor.can_update_chat(chat["owner_id"]) or actor.is_owner


def require_owner(actor: Actor, chat: RowDict, message: str, *, update: bool = False) -> None:
    """Owner-only actions (api-behaviour §2); ``update`` first checks RBAC update (V1 403)."""
    if update and not can_update(actor, chat):
        raise forbidden()
    if chat["owner_id"] != actor.user_id:
        raise ApiError(403, message)


def _parse_int64(raw: str) -> int | None:
    if not _INTEGER.fullmatch(raw):
        return None
    value = int(raw)
    return value if -INT64_MAX - 1 <= value <= INT64_MAX else None


def parse_message_id(raw: str) -> int:
    value = _parse_int64(raw)
    if value is None or value <= 0:
        raise ApiError(400, "Invalid chat message ID.", "Message ID must be a positive integer.")
    return value


def parse_queued_id(raw: str) -> int:
    value = _parse_int64(raw)
    if value is None:
        reason = "value out of range" if _INTEGER.fullmatch(raw) else "invalid syntax"
        raise ApiError(
            400, "Invalid queued message ID.", f'strconv.ParseInt: parsing "{raw}": {reason}'
        )
    return value


def refusal(exc: cs.TransitionError, *, archived: str, failed: str) -> ApiError:
    """The reference answer for a refused transition."""
    match exc:
        case cs.ChatNotFound():
            return not_found()
        case cs.ChatArchived():
            return ApiError(400, archived)
        case cs.QueueFull():
            return ApiError(
                429,
                "Message queue is full.",
                f"Maximum {MAX_QUEUE_SIZE} messages can be queued.",
            )
        case cs.InvalidModelConfig():
            return ApiError(400, "Invalid model config ID.")
        case cs.MessageNotFound():
            return ApiError(404, "Chat message not found.", "Message does not belong to this chat.")
        case cs.NotUserMessage():
            return ApiError(400, "Only user messages can be edited.")
        case cs.QueuedMessageNotFound():
            return ApiError(404, "Queued message not found.")
        case cs.NotAwaitingToolResults():
            return ApiError(409, "Chat is not waiting for tool results.")
        case cs.ToolResultsMismatch(kind=kind, tool_call_id=call_id):
            message, detail = _MISMATCH[kind]
            return ApiError(400, message, detail.format(call_id))
    return ApiError(500, failed)


@contextmanager
def refusals(*, archived: str, failed: str) -> Iterator[None]:
    """Turn a :class:`TransitionError` raised inside the block into its API answer."""
    try:
        yield
    except cs.TransitionError as exc:
        raise refusal(exc, archived=archived, failed=failed) from None
