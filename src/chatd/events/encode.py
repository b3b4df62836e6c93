"""The wire form of a streamed ``message_part`` event, without pydantic on the common path.

A text or reasoning delta (a part with only ``type`` and ``text``) is by far the most frequent
event; it is written from a template, exactly as ``ChatStreamEvent.model_dump_json()`` writes
it (compact, UTF-8 rather than ``\\u`` escapes, the same field order and string escapes).
Any other part goes through pydantic.
"""

from __future__ import annotations

import uuid
from json.encoder import encode_basestring

from chatd.sdk.chats import ChatMessagePart, ChatMessagePartType, ChatMessageRole
from chatd.sdk.events import ChatStreamEvent, ChatStreamEventType, ChatStreamMessagePart

_DELTA = (
    '{"type":"message_part","chat_id":"%s",'
    '"message_part":{"role":"%s","part":{"type":"%s","text":%s}}}'
)


def delta_text(part: ChatMessagePart) -> str | None:
    """The text of a text or reasoning delta (a part with only ``type`` and ``text``), else None."""
    if part.text is None or sum(v is not None for v in part.__dict__.values()) != 2:
        return None
    return part.text


def part_event(chat_id: uuid.UUID, role: ChatMessageRole, part: ChatMessagePart) -> ChatStreamEvent:
    """The ``message_part`` event, assembled without re-validating its typed values."""
    return ChatStreamEvent.trusted(
        type=ChatStreamEventType.message_part,
        chat_id=chat_id,
        message_part=ChatStreamMessagePart.trusted(role=role, part=part),
    )


def delta_json(
    chat_id: uuid.UUID, role: ChatMessageRole, kind: ChatMessagePartType, text: str
) -> str:
    return _DELTA % (chat_id, role.value, kind.value, encode_basestring(text))


def message_part_json(chat_id: uuid.UUID, role: ChatMessageRole, part: ChatMessagePart) -> str:
    text = delta_text(part)
    if text is not None:
        return delta_json(chat_id, role, part.type, text)
    return part_event(chat_id, role, part).model_dump_json()
