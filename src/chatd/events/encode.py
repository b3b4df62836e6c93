"""The wire form of a streamed ``message_part`` event, without pydantic on the common path.

A text or reasoning delta (a part with only ``type`` and ``text``) is by far the most frequent
event; it is written from a template, exactly as ``ChatStreamEvent.model_dump_json()`` writes
it (compact, UTF-8 rather than ``\\u`` escapes, the same field order and string escapes).
Any other part goes through pydantic.
"""

from __future__ import annotations

import functools
import uuid
from json.encoder import encode_basestring

from chatd.sdk.chats import ChatMessagePart, ChatMessagePartType, ChatMessageRole
from chatd.sdk.events import ChatStreamEvent, ChatStreamEventType, ChatStreamMessagePart

# Everything of a delta's event before its text: the same for every delta of a chat's turn,
# so written once per (chat, role, kind) rather than per delta (a UUID's str() alone cost more
# than the rest of the encoding).
_DELTA_HEAD = (
    '{"type":"message_part","chat_id":"%s","message_part":{"role":"%s","part":{"type":"%s","text":'
)
_DELTA_TAIL = '}},"seq":%d}'


@functools.lru_cache(maxsize=4096)
def _delta_head(chat_id: uuid.UUID, role: ChatMessageRole, kind: ChatMessagePartType) -> str:
    return _DELTA_HEAD % (chat_id, role.value, kind.value)


def delta_text(part: ChatMessagePart) -> str | None:
    """The text of a text or reasoning delta (a part with only ``type`` and ``text``), else None."""
    if part.text is None or sum(v is not None for v in part.__dict__.values()) != 2:
        return None
    return part.text


def part_event(
    chat_id: uuid.UUID, role: ChatMessageRole, part: ChatMessagePart, seq: int | None = None
) -> ChatStreamEvent:
    """The ``message_part`` event, assembled without re-validating its typed values."""
    return ChatStreamEvent.trusted(
        type=ChatStreamEventType.message_part,
        chat_id=chat_id,
        message_part=ChatStreamMessagePart.trusted(role=role, part=part),
        seq=seq,
    )


def delta_json(
    chat_id: uuid.UUID, role: ChatMessageRole, kind: ChatMessagePartType, text: str, seq: int
) -> str:
    return _delta_head(chat_id, role, kind) + encode_basestring(text) + _DELTA_TAIL % seq


def message_part_json(
    chat_id: uuid.UUID, role: ChatMessageRole, part: ChatMessagePart, seq: int
) -> str:
    text = delta_text(part)
    if text is not None:
        return delta_json(chat_id, role, part.type, text, seq)
    return part_event(chat_id, role, part, seq).model_dump_json()
