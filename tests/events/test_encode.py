"""The hub's wire encoding of streamed parts matches pydantic's, byte for byte."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

from chatd.events.delivery import Delta, PartDelivery
from chatd.events.encode import message_part_json
from chatd.events.hub import EventHub
from chatd.sdk.chats import ChatMessagePart, ChatMessagePartType, ChatMessageRole
from chatd.sdk.events import ChatStreamEvent, ChatStreamEventType, ChatStreamMessagePart

CHAT = uuid.UUID("0b7c4a52-3d51-4a40-9d0e-6d1bf3f0c2a1")
SEQ = (41 << 24) + 3


def validated_json(role: ChatMessageRole, part: ChatMessagePart, seq: int = SEQ) -> str:
    event = ChatStreamEvent(
        type=ChatStreamEventType.message_part,
        chat_id=CHAT,
        message_part=ChatStreamMessagePart(role=role, part=part),
        seq=seq,
    )
    return event.model_dump_json()


@given(
    text=st.text(),
    kind=st.sampled_from([ChatMessagePartType.text, ChatMessagePartType.reasoning]),
    role=st.sampled_from(list(ChatMessageRole)),
)
def test_deltas_encode_as_pydantic_does(
    text: str, kind: ChatMessagePartType, role: ChatMessageRole
) -> None:
    trusted = ChatMessagePart.trusted(type=kind, text=text)
    expected = validated_json(role, ChatMessagePart(type=kind, text=text))
    assert message_part_json(CHAT, role, trusted, SEQ) == expected


@given(
    text=st.text(),
    kind=st.sampled_from([ChatMessagePartType.text, ChatMessagePartType.reasoning]),
)
def test_a_published_delta_is_the_event_a_part_would_be(
    text: str, kind: ChatMessagePartType
) -> None:
    """The engine publishes deltas without building parts; clients see the same event."""
    role = ChatMessageRole.assistant
    delivery = PartDelivery(CHAT, role, Delta(kind, text), SEQ)
    assert delivery.json == validated_json(role, ChatMessagePart(type=kind, text=text))
    assert delivery.item == ChatStreamEvent.model_validate_json(delivery.json)
    assert delivery.part == ChatMessagePart(type=kind, text=text)


def test_control_characters_quotes_and_non_ascii() -> None:
    text = 'a"b\\c\n\t\x00\x1f\x7f é 😀 \u2028'
    part = ChatMessagePart.trusted(type=ChatMessagePartType.text, text=text)
    encoded = message_part_json(CHAT, ChatMessageRole.assistant, part, SEQ)
    assert encoded == validated_json(ChatMessageRole.assistant, part)
    assert '"text":"a\\"b\\\\c\\n\\t\\u0000\\u001f\x7f é 😀 \u2028"' in encoded


@given(args_delta=st.text(), call_id=st.text(min_size=1))
def test_other_parts_fall_back_to_pydantic(args_delta: str, call_id: str) -> None:
    part = ChatMessagePart(
        type=ChatMessagePartType.tool_call,
        tool_call_id=call_id,
        tool_name="echo",
        args_delta=args_delta,
    )
    assert message_part_json(CHAT, ChatMessageRole.assistant, part, SEQ) == validated_json(
        ChatMessageRole.assistant, part
    )


def test_a_text_part_with_more_fields_is_not_a_delta() -> None:
    part = ChatMessagePart(type=ChatMessagePartType.reasoning, text="why", signature="sig")
    encoded = message_part_json(CHAT, ChatMessageRole.assistant, part, SEQ)
    assert '"signature":"sig"' in encoded
    assert encoded == validated_json(ChatMessageRole.assistant, part)


@pytest.mark.anyio
async def test_subscribers_share_one_delivery_and_its_encoding() -> None:
    hub = EventHub()
    hub.start_turn(CHAT)
    part = ChatMessagePart.trusted(type=ChatMessagePartType.text, text="hi")
    with hub.chat(CHAT) as first, hub.chat(CHAT) as second:
        hub.publish_part(CHAT, ChatMessageRole.assistant, part)
        batches = await first.batch(10), await second.batch(10)
    assert batches[0] is not None and batches[1] is not None
    [a], [b] = batches
    assert a is b
    assert a.json == a.item.model_dump_json()
    assert hub.turn_snapshot(CHAT) == (None, [a])


def test_a_delta_delivery_keeps_only_kind_and_text_yet_gives_the_same_event() -> None:
    delta = ChatMessagePart.trusted(type=ChatMessagePartType.reasoning, text="hm")
    delivery = PartDelivery(CHAT, ChatMessageRole.assistant, delta, SEQ)
    assert delivery.part == delta and delivery.part is not delta  # rebuilt on demand
    expected = ChatStreamEvent(
        type=ChatStreamEventType.message_part,
        chat_id=CHAT,
        message_part=ChatStreamMessagePart(role=ChatMessageRole.assistant, part=delta),
        seq=SEQ,
    )
    assert delivery.item == expected
    assert delivery.json == expected.model_dump_json()

    call = ChatMessagePart(type=ChatMessagePartType.tool_call, tool_call_id="c1", tool_name="x")
    kept = PartDelivery(CHAT, ChatMessageRole.assistant, call, SEQ)
    assert kept.part is call
    assert kept.json == validated_json(ChatMessageRole.assistant, call)
