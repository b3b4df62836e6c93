"""Hub subscriptions as the stream sees them: batches, lag, the refresh mark, the cursor."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest

from chatd.events.cursor import MessageCursor
from chatd.events.delivery import Delivery, Subscription
from chatd.events.hub import STATUS_STAMPS_KEPT, EventHub
from chatd.events.snapshot import FRAME_LIMIT, frames
from chatd.sdk.chats import ChatMessage, ChatMessageRole, ChatStatus
from chatd.sdk.events import ChatStreamEvent, ChatStreamEventType, ChatStreamStatus
from chatd.store.outbox import Outbox, next_stamp

pytestmark = pytest.mark.anyio
CHAT = uuid.uuid4()


def message(message_id: int) -> ChatStreamEvent:
    return ChatStreamEvent(
        type=ChatStreamEventType.message,
        chat_id=CHAT,
        message=ChatMessage(
            id=message_id,
            chat_id=CHAT,
            created_at=dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
            role=ChatMessageRole.user,
        ),
    )


def status() -> ChatStreamEvent:
    return ChatStreamEvent(
        type=ChatStreamEventType.status,
        chat_id=CHAT,
        status=ChatStreamStatus(status=ChatStatus.pending),
    )


async def test_batch_takes_what_is_queued_up_to_the_limit() -> None:
    hub = EventHub()
    with hub.chat(CHAT) as sub:
        hub.publish(Outbox(stream=[message(i) for i in range(1, 6)]))
        first = await sub.batch(3)
        second = await sub.batch(3)
    assert first is not None and second is not None
    assert [d.item.message.id for d in first + second if d.item.message] == [1, 2, 3, 4, 5]
    assert (len(first), len(second)) == (3, 2)


async def test_lagged_subscriber_gets_none_and_others_continue() -> None:
    hub = EventHub(queue_size=4)
    with hub.chat(CHAT) as slow, hub.chat(CHAT) as fast:
        for i in range(1, 6):
            hub.publish(Outbox(stream=[message(i)]))
            assert await fast.batch(10) is not None
        assert slow.lagged and await slow.batch(10) is None
        hub.publish(Outbox(stream=[status()]))
        batch = await fast.batch(10)
    assert batch is not None and batch[0].item.type == ChatStreamEventType.status


async def test_history_refresh_marks_only_its_messages() -> None:
    hub = EventHub()
    with hub.chat(CHAT) as sub:
        hub.publish(Outbox(stream=[message(1)]))
        hub.publish(Outbox(stream=[message(1), message(3), status()], history_refresh=True))
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
    with hub.chat(CHAT) as sub:
        waiting = asyncio.ensure_future(sub.batch(10))
        await asyncio.sleep(0)
        assert not waiting.done()
        hub.publish(Outbox(stream=[message(1)]))
        batch = await asyncio.wait_for(waiting, 5)
        assert batch is not None and [d.item.message.id for d in batch if d.item.message] == [1]

        waiting = asyncio.ensure_future(sub.batch(10))
        hub.publish(Outbox(stream=[message(2), message(3), message(4)]))  # one too many
        assert await asyncio.wait_for(waiting, 5) is None
        assert sub.lagged and sub.drain() == []


def status_outbox(status: ChatStatus, stamp: int) -> Outbox:
    event = ChatStreamEvent(
        type=ChatStreamEventType.status, chat_id=CHAT, status=ChatStreamStatus(status=status)
    )
    return Outbox(stream=[event, message(stamp)], stamp=stamp)


def seen(sub: Subscription[ChatStreamEvent]) -> list[str]:
    return [
        f"status:{e.status.status}" if e.status else f"message:{e.message.id}"
        for e in sub.drain()
        if e.status or e.message
    ]


async def test_a_status_older_than_one_published_is_dropped_with_its_other_events_kept() -> None:
    hub = EventHub()
    heard: list[tuple[str, int]] = []
    hub.add_listener(lambda e, stamp: heard.append((str(e.type), stamp)))
    with hub.chat(CHAT) as sub:
        hub.publish(status_outbox(ChatStatus.pending, 5))
        hub.publish(status_outbox(ChatStatus.running, 7))
        hub.publish(status_outbox(ChatStatus.waiting, 6))  # committed before 7, published after
        hub.publish(status_outbox(ChatStatus.waiting, 8))
        hub.publish(Outbox(stream=[status()]))  # unstamped (built outside a transaction)
        assert seen(sub) == [
            "status:pending",
            "message:5",
            "status:running",
            "message:7",
            "message:6",
            "status:waiting",
            "message:8",
            "status:pending",
        ]
    assert ("status", 6) not in heard and ("status", 7) in heard and ("status", 0) in heard


async def test_status_stamps_are_remembered_for_a_bounded_number_of_chats() -> None:
    hub = EventHub()
    for _ in range(STATUS_STAMPS_KEPT + 10):
        other = ChatStreamEvent(
            type=ChatStreamEventType.status,
            chat_id=uuid.uuid4(),
            status=ChatStreamStatus(status=ChatStatus.running),
        )
        hub.publish(Outbox(stream=[other], stamp=next_stamp()))
    assert len(hub._status_stamps) == STATUS_STAMPS_KEPT
