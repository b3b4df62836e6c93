"""The wire form of a streamed ``message_part`` event, without pydantic on the common path.

A text or reasoning delta (a part with only ``type`` and ``text``) is by far the most frequent
event; it is written from a template, exactly as ``ChatStreamEvent.model_dump_json()`` writes
it (compact, UTF-8 rather than ``\\u`` escapes, the same field order and string escapes).
Any other part goes through pydantic.
"""

from __future__ import annotations

import uuid
from json.encoder import encode_basestring

from chatd.sdk.chats import ChatMessagePart, ChatMessageRole
from chatd.sdk.events import ChatStreamEvent, ChatStreamEventType, ChatStreamMessagePart

_DELTA = (
    '{"type":"message_part","chat_id":"%s",'
    '"message_part":{"role":"%s","part":{"type":"%s","text":%s}}}'
)
_DELTA_FIELDS = 2  # type and text


def message_part_json(chat_id: uuid.UUID, role: ChatMessageRole, part: ChatMessagePart) -> str:
    text = part.text
    fields = part.__dict__
    if text is not None and sum(v is not None for v in fields.values()) == _DELTA_FIELDS:
        return _DELTA % (chat_id, role.value, part.type.value, encode_basestring(text))
    event = ChatStreamEvent.trusted(
        type=ChatStreamEventType.message_part,
        chat_id=chat_id,
        message_part=ChatStreamMessagePart.trusted(role=role, part=part),
    )
    return event.model_dump_json()
