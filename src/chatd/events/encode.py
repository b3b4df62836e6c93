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


def is_plain_delta(part: ChatMessagePart) -> bool:
    """A text or reasoning delta: a part with only ``type`` and ``text``."""
    return part.text is not None and sum(v is not None for v in part.__dict__.values()) == 2


def delta_json(
    chat_id: uuid.UUID, role: ChatMessageRole, kind: ChatMessagePartType, text: str
) -> str:
    return _DELTA % (chat_id, role.value, kind.value, encode_basestring(text))


def message_part_json(chat_id: uuid.UUID, role: ChatMessageRole, part: ChatMessagePart) -> str:
    if part.text is not None and is_plain_delta(part):
        return delta_json(chat_id, role, part.type, part.text)
    event = ChatStreamEvent.trusted(
        type=ChatStreamEventType.message_part,
        chat_id=chat_id,
        message_part=ChatStreamMessagePart.trusted(role=role, part=part),
    )
    return event.model_dump_json()
