"""Hub subscriptions as the stream sees them: batches, lag, the refresh mark, the cursor, and
each chat's events in their logged order."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest

from chatd.events import hub as hub_module
from chatd.events.cursor import MessageCursor
from chatd.events.delivery import Delivery, Delta, Subscription
from chatd.events.hub import STATUS_SEQS_KEPT, EventHub
from chatd.events.snapshot import FRAME_LIMIT, frames
from chatd.sdk.chats import ChatMessagePartType, ChatMessageRole, ChatStatus
from chatd.sdk.events import ChatStreamEvent, ChatStreamEventType, ChatStreamStatus
from chatd.store.outbox import Outbox
from chatd.store.seqs import durable_seq
from tests.events.fake_log import FakeLog, message_event

pytestmark = pytest.mark.anyio
CHAT = uuid.uuid4()


def sealed(*events: ChatStreamEvent, refresh: bool = False, log: FakeLog | None = None) -> Outbox:
    return (log or FakeLog()).seal(Outbox(stream=list(events), history_refresh=refresh))


def message(message_id: int) -> ChatStreamEvent:
    return message_event(CHAT, message_id)


def status() -> ChatStreamEvent:
    return ChatStreamEvent(
        type=ChatStreamEventType.status,
        chat_id=CHAT,
        status=ChatStreamStatus(status=ChatStatus.pending),
    )


async def test_batch_takes_what_is_queued_up_to_the_limit() -> None:
    hub = EventHub()
    with hub.chat(CHAT) as sub:
        hub.publish(sealed(*(message(i) for i in range(1, 6))))
        first = await sub.batch(3)
        second = await sub.batch(3)
    assert first is not None and second is not None
    assert [d.item.message.id for d in first + second if d.item.message] == [1, 2, 3, 4, 5]
    assert (len(first), len(second)) == (3, 2)


async def test_lagged_subscriber_gets_none_and_others_continue() -> None:
    hub = EventHub(queue_size=4)
    log = FakeLog()
    with hub.chat(CHAT) as slow, hub.chat(CHAT) as fast:
        for i in range(1, 6):
            hub.publish(sealed(message(i), log=log))
            assert await fast.batch(10) is not None
        assert slow.lagged and await slow.batch(10) is None
        hub.publish(sealed(status(), log=log))
        batch = await fast.batch(10)
    assert batch is not None and batch[0].item.type == ChatStreamEventType.status


async def test_history_refresh_marks_only_its_messages() -> None:
    hub = EventHub()
    log = FakeLog()
    with hub.chat(CHAT) as sub:
        hub.publish(sealed(message(1), log=log))
        hub.publish(sealed(message(1), message(3), status(), refresh=True, log=log))
        batch = await sub.batch(10)
    assert batch is not None
    assert [d.refresh for d in batch] == [False, True, True, False]
    assert sub.drain() == []


def test_cursor_drops_copies_but_passes_refreshes() -> None:
    cursor = MessageCursor(5)
    assert not cursor.admit(Delivery(message(4)))
    assert not cursor.admit(Delivery(message(5)))
    assert cursor.admit(Delivery(status()))
    assert cursor.admit(Delivery(message(6)))
    assert not cursor.admit(Delivery(message(6)))
    # An edit re-sends 1..2 and the replacement 9; afterwards 9 is the cursor.
    assert all(cursor.admit(Delivery(message(i), refresh=True)) for i in (1, 2, 9))
    assert cursor.last_message_id == 9
    assert not cursor.admit(Delivery(message(8)))
    assert cursor.admit(Delivery(message(10)))


def test_frames_split_at_the_limit() -> None:
    events = [status()] * (2 * FRAME_LIMIT + 1)
    assert [len(f) for f in frames(events)] == [FRAME_LIMIT, FRAME_LIMIT, 1]
    assert list(frames([])) == []


async def test_a_waiting_writer_wakes_for_an_event_and_for_its_lag() -> None:
    hub = EventHub(queue_size=2)
    log = FakeLog()
    with hub.chat(CHAT) as sub:
        waiting = asyncio.ensure_future(sub.batch(10))
        await asyncio.sleep(0)
        assert not waiting.done()
        hub.publish(sealed(message(1), log=log))
        batch = await asyncio.wait_for(waiting, 5)
        assert batch is not None and [d.item.message.id for d in batch if d.item.message] == [1]

        waiting = asyncio.ensure_future(sub.batch(10))
        hub.publish(sealed(message(2), message(3), message(4), log=log))  # one too many
        assert await asyncio.wait_for(waiting, 5) is None
        assert sub.lagged and sub.drain() == []


def seen(sub: Subscription[ChatStreamEvent]) -> list[str]:
    return [
        f"status:{e.status.status}" if e.status else f"message:{e.message.id}"
        for e in sub.drain()
        if e.status or e.message
    ]


async def test_events_go_out_in_their_logged_order_once_whatever_order_they_arrive_in() -> None:
    hub = EventHub()
    log = FakeLog()
    heard: list[tuple[str, int]] = []
    hub.add_listener(lambda e, seq: heard.append((str(e.type), seq)))
    first = sealed(status(), message(1), log=log)  # 1, 2
    second = sealed(message(2), log=log)  # 3
    third = sealed(message(3), log=log)  # 4
    with hub.chat(CHAT) as sub:
        hub.publish(first)
        hub.publish(third)  # committed after the second, published before it: it waits
        assert seen(sub) == ["status:pending", "message:1"]
        hub.publish(second)
        hub.publish(first)  # again: nothing new
        assert seen(sub) == ["message:2", "message:3"]
        assert hub.seq(CHAT) == durable_seq(4)
    assert [seq for _, seq in heard] == [1, 2, 3, 4]


async def test_a_gap_nothing_fills_is_given_up_after_a_while(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(hub_module, "GAP_WAIT", 0.05)
    hub = EventHub()  # no database to read the missing events from
    log = FakeLog()
    first, lost, after = (sealed(message(i), log=log) for i in (1, 2, 3))
    with hub.chat(CHAT) as sub:
        hub.publish(first)
        hub.publish(after)
        assert seen(sub) == ["message:1"]
        await asyncio.sleep(0.2)
        assert seen(sub) == ["message:3"]
        hub.publish(lost)  # too late: older than what went out
        assert seen(sub) == []


async def test_parts_are_numbered_after_the_last_logged_event() -> None:
    hub = EventHub()
    log = FakeLog()
    running = sealed(status(), log=log)
    with hub.chat(CHAT) as sub:
        hub.start_turn(CHAT, 1)
        hub.publish(running)
        hub.publish_part(CHAT, ChatMessageRole.assistant, Delta(ChatMessagePartType.text, "a"))
        hub.publish_part(CHAT, ChatMessageRole.assistant, Delta(ChatMessagePartType.text, "b"))
        hub.publish(sealed(message(1), log=log))
        hub.publish_part(CHAT, ChatMessageRole.assistant, Delta(ChatMessagePartType.text, "c"))
        batch = await sub.batch(10)
    assert batch is not None
    seqs = [d.seq for d in batch]
    assert seqs == [
        durable_seq(1),
        durable_seq(1) + 1,
        durable_seq(1) + 2,
        durable_seq(2),
        durable_seq(2) + 1,
    ]
    assert [json.loads(d.json)["seq"] for d in batch] == seqs
    ring = hub.ring(CHAT)
    assert ring is not None and [d.seq for d in ring.events] == seqs


async def test_status_numbers_of_unfollowed_chats_are_remembered_for_a_bounded_number() -> None:
    hub = EventHub()
    log = FakeLog()
    for _ in range(STATUS_SEQS_KEPT + 10):
        other = ChatStreamEvent(
            type=ChatStreamEventType.status,
            chat_id=uuid.uuid4(),
            status=ChatStreamStatus(status=ChatStatus.running),
        )
        with hub.chat(other.chat_id):
            hub.publish(sealed(other, log=log))
        # the chat's line came and went: its last number is remembered
    assert len(hub._status_seqs) == STATUS_SEQS_KEPT


async def test_relays_to_other_replicas_are_woken_before_the_streams_here() -> None:
    """A relay subscribed last still has its writer run first: the clients behind it on
    another replica do not wait for every socket here to be written."""
    hub = EventHub()
    woke: list[str] = []

    async def writer(name: str, sub: Subscription[ChatStreamEvent]) -> None:
        assert await sub.batch(10) is not None
        woke.append(name)

    with hub.chat(CHAT) as a, hub.chat(CHAT) as b, hub.chat(CHAT, relay=True) as relay:
        writers = [
            asyncio.create_task(writer(name, sub))
            for name, sub in (("a", a), ("b", b), ("relay", relay))
        ]
        await asyncio.sleep(0)  # every writer waits
        hub.publish(sealed(message(1)))
        await asyncio.gather(*writers)
    assert woke == ["relay", "a", "b"]
