"""``WireModel.trusted``: an instance without validation, equal to the validated one."""

from __future__ import annotations

import json
import uuid

import pytest
from pydantic import Field

from chatd.sdk.base import WireModel
from chatd.sdk.chats import ChatMessagePart, ChatMessagePartType, ChatMessageRole
from chatd.sdk.events import ChatStreamEvent, ChatStreamEventType, ChatStreamMessagePart


def test_equals_the_validated_model_and_dumps_the_same() -> None:
    chat_id = uuid.uuid4()
    trusted = ChatStreamEvent.trusted(
        type=ChatStreamEventType.message_part,
        chat_id=chat_id,
        message_part=ChatStreamMessagePart.trusted(
            role=ChatMessageRole.assistant,
            part=ChatMessagePart.trusted(type=ChatMessagePartType.text, text="hi"),
        ),
    )
    validated = ChatStreamEvent.model_validate_json(trusted.model_dump_json())
    assert trusted == validated
    assert trusted.model_dump_json() == validated.model_dump_json()
    assert trusted.model_fields_set == {"type", "chat_id", "message_part"}
    # Field order (the JSON order) is the declaration order, whatever the keyword order.
    reordered = ChatStreamEvent.trusted(
        message_part=None, chat_id=chat_id, type=ChatStreamEventType.status
    )
    assert list(vars(reordered)) == list(ChatStreamEvent.model_fields)
    assert list(json.loads(trusted.model_dump_json())) == ["type", "chat_id", "message_part"]


def test_a_missing_required_field_or_an_unknown_one_is_refused() -> None:
    with pytest.raises(TypeError, match="missing or unknown"):
        ChatStreamEvent.trusted(type=ChatStreamEventType.status)
    with pytest.raises(TypeError, match="missing or unknown"):
        ChatMessagePart.trusted(type=ChatMessagePartType.text, txet="typo")


def test_a_model_with_a_default_factory_is_refused() -> None:
    class Listy(WireModel):
        items: list[int] = Field(default_factory=list)

    with pytest.raises(TypeError, match="default factory"):
        Listy.trusted()
