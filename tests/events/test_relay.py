"""A hub fed by a relay from the replica running a chat's turn: the owner's order, each event
once, this replica's own copies of logged events dropped, the log taking over afterwards."""

from __future__ import annotations

import datetime as dt
import uuid

import pytest

from chatd.events.delivery import Delivery, Delta, PartDelivery
from chatd.events.hub import EventHub
from chatd.events.relay import decode, encode
from chatd.sdk.chats import ChatMessagePartType, ChatMessageRole, ChatStatus
from chatd.sdk.events import ChatStreamEvent, ChatStreamRetry, ChatStreamStatus
from chatd.store.outbox import Outbox
from chatd.store.seqs import durable_seq
from tests.events.fake_log import FakeLog, message_event, status_event

pytestmark = pytest.mark.anyio
CHAT = uuid.uuid4()


def message(message_id: int) -> ChatStreamEvent:
    return message_event(CHAT, message_id, ChatMessageRole.assistant)


def status(value: ChatStatus) -> ChatStreamEvent:
    return status_event(CHAT, value)


def owner_frames(log: FakeLog) -> tuple[list[Delivery[ChatStreamEvent]], Outbox]:
    """What the owner's hub delivers for a turn: running, two parts, a retry, a part, the
    step's message; and the message's outbox (which this replica also hears of itself)."""
    owner = EventHub()
    running = log.seal(Outbox(stream=[status(ChatStatus.running)]))
    step = log.seal(Outbox(stream=[message(7)]))
    with owner.chat(CHAT) as sub:
        owner.start_turn(CHAT, 1)
        owner.publish(running)
        owner.publish_part(CHAT, ChatMessageRole.assistant, Delta(ChatMessagePartType.text, "a"))
        owner.publish_part(CHAT, ChatMessageRole.assistant, Delta(ChatMessagePartType.text, "b"))
        at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
        owner.publish_retry(
            CHAT, ChatStreamRetry(attempt=1, delay_ms=10, error="x", retrying_at=at)
        )
        owner.publish_part(CHAT, ChatMessageRole.assistant, Delta(ChatMessagePartType.text, "c"))
        owner.publish(step)
        return [d for d in sub._items], step


def test_frames_round_trip() -> None:
    deliveries, _ = owner_frames(FakeLog())
    relayed = decode(encode(deliveries))
    assert [r.seq for r in relayed] == [d.seq for d in deliveries]
    assert [r.kind for r in relayed] == ["l", "p", "p", "r", "p", "l"]
    assert [r.json for r in relayed] == [d.json for d in deliveries]
    assert isinstance(deliveries[1], PartDelivery)


async def test_relayed_events_go_out_in_the_owners_order_once() -> None:
    log = FakeLog()
    deliveries, step = owner_frames(log)
    here = EventHub()
    followed: list[tuple[uuid.UUID, int]] = []
    here.follower = lambda chat_id, after: followed.append((chat_id, after))
    with here.chat(CHAT) as sub:
        here.publish(log.seal(Outbox(stream=[status(ChatStatus.pending)])))  # 3: before the turn
        assert sub.drain()[0].status == ChatStreamStatus(status=ChatStatus.pending)
        # The relay starts from where this replica stands (3): the owner's events numbered
        # before it are not delivered again.
        assert here.relay_started(CHAT) == durable_seq(3)
        relayed = decode(encode(deliveries))
        here.publish(step)  # this replica hears of the step's message itself: the relay has it
        here.relay_events(CHAT, relayed)
        here.relay_events(CHAT, relayed)  # again: nothing new
        assert sub.drain() == []  # all numbered before where this replica already was
        later = log.seal(Outbox(stream=[message(8)]))
        owner = EventHub()
        with owner.chat(CHAT) as owner_sub:
            owner.publish(later)
            relayed_later = decode(encode(owner_sub._items))
        here.publish(later)  # held: the relay brings it
        assert sub.drain() == []
        here.relay_events(CHAT, relayed_later)
        assert [e.message.id for e in sub.drain() if e.message] == [8]
        here.relay_ended(CHAT)
        assert here.seq(CHAT) == durable_seq(4)
    assert followed == []


async def test_a_client_connecting_mid_relay_gets_the_relayed_turns_parts() -> None:
    log = FakeLog()
    deliveries, _ = owner_frames(log)
    here = EventHub()
    with here.chat(CHAT):
        here.relay_started(CHAT)
        here.relay_events(CHAT, decode(encode(deliveries[:5])))  # up to part "c"
        retry, parts = here.turn_snapshot(CHAT)
        assert retry is None  # a part came after it
        assert [p.seq for p in parts] == [deliveries[4].seq]
        ring = here.ring(CHAT)
        assert ring is not None and [d.seq for d in ring.events] == [d.seq for d in deliveries[:5]]
        here.relay_ended(CHAT)
        assert here.turn_snapshot(CHAT) == (None, [])
