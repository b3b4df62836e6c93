"""The stream snapshot a client receives on connect, and the frames it is sent in.

Order (engine-behaviour §10.2): ``status``, ``retry`` (when one is waiting), the buffered
``message_part`` events of the running turn, a ``message`` for every visible message after the
client's ``after_id``, and ``queue_update`` when the queue is not empty.

The events read from the database carry the number of the newest event delivered here when the
client subscribed (``seq``): the snapshot holds everything up to it, and the live events that
follow are numbered above it. The buffered parts keep their own (lower) numbers.

The turn's buffer is copied at the moment the client subscribes (:func:`turn_events`, no await
in between), so every part is either in the copy or in the subscription, never both. The
database is read afterwards; a message committed meanwhile may reach the client twice, and
:class:`chatd.events.cursor.MessageCursor` drops the second copy.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TypeVar

import structlog

from chatd.events.delivery import Delivery
from chatd.events.hub import EventHub
from chatd.sdk.chats import ChatError, ChatErrorKind
from chatd.sdk.events import ChatStreamEvent, ChatStreamEventType, ChatStreamStatus
from chatd.store.db import Database
from chatd.store.errors import StoreError
from chatd.store.stream_snapshot import stored_state

log = structlog.get_logger(__name__)

T = TypeVar("T")
FRAME_LIMIT = 256  # events per WebSocket frame, snapshot and live alike
SNAPSHOT_FAILED = "failed to load initial snapshot"


@dataclass
class Snapshot:
    events: list[Delivery[ChatStreamEvent]]
    last_message_id: int  # the newest message id the client has after this snapshot


def turn_events(hub: EventHub, chat_id: uuid.UUID) -> list[Delivery[ChatStreamEvent]]:
    """The pending retry (if any) and the buffered parts of the chat's running turn."""
    retry, parts = hub.turn_snapshot(chat_id)
    return [retry, *parts] if retry is not None else list(parts)


async def load_snapshot(
    db: Database,
    chat_id: uuid.UUID,
    after_id: int,
    turn: list[Delivery[ChatStreamEvent]],
    seq: int = 0,
) -> Snapshot:
    """The snapshot as of stream number ``seq``; a database failure becomes a single ``error``
    event."""
    try:
        state = await db.run_read(stored_state, chat_id, after_id)
    except StoreError:
        log.exception("stream snapshot failed", chat_id=str(chat_id))
        state = None
    if state is None:
        error = ChatError(message=SNAPSHOT_FAILED, kind=ChatErrorKind.generic)
        event = ChatStreamEvent(
            type=ChatStreamEventType.error, chat_id=chat_id, error=error, seq=seq
        )
        return Snapshot(events=[Delivery(event, seq=seq)], last_message_id=after_id)
    status = ChatStreamEvent(
        type=ChatStreamEventType.status,
        chat_id=chat_id,
        status=ChatStreamStatus(status=state.status),
        seq=seq,
    )
    events = [
        Delivery(status, seq=seq),
        *turn,
        *(
            Delivery(
                ChatStreamEvent(
                    type=ChatStreamEventType.message, chat_id=chat_id, message=m, seq=seq
                ),
                seq=seq,
            )
            for m in state.messages
        ),
    ]
    if state.queue:
        queue = ChatStreamEvent(
            type=ChatStreamEventType.queue_update,
            chat_id=chat_id,
            queued_messages=state.queue,
            seq=seq,
        )
        events.append(Delivery(queue, seq=seq))
    last = state.messages[-1].id if state.messages else 0
    return Snapshot(events=events, last_message_id=max(after_id, last))


def frames(events: Sequence[T]) -> Iterator[Sequence[T]]:
    """``events`` in order, at most :data:`FRAME_LIMIT` per frame."""
    for start in range(0, len(events), FRAME_LIMIT):
        yield events[start : start + FRAME_LIMIT]


def frame_json(events: Iterable[Delivery[ChatStreamEvent]]) -> str:
    """One WebSocket frame: the events' JSON array (each event encoded once, by its delivery)."""
    return "[" + ",".join(d.json for d in events) + "]"
