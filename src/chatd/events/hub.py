"""The in-process event hub: per-chat and per-owner subscriptions with bounded queues.

Durable events (messages, status, queue, errors, retries) come from committed state changes
(:class:`~chatd.events.outbox.Outbox`). ``message_part`` events come straight from the worker
running a turn: they are kept in a turn-scoped buffer so a client that connects mid-turn gets
the parts it missed, and are never written to the database.

A subscriber that falls behind is dropped (its queue yields ``None``) rather than slowing the
publisher; it reconnects and catches up from the database and the buffer.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Generic, TypeVar

from chatd.events.outbox import Outbox
from chatd.sdk.chats import ChatMessagePart, ChatMessageRole
from chatd.sdk.events import (
    ChatStreamEvent,
    ChatStreamEventType,
    ChatStreamMessagePart,
    ChatStreamRetry,
    ChatWatchEvent,
)

DEFAULT_QUEUE_SIZE = 4096
MAX_BUFFERED_PARTS = 10_000
T = TypeVar("T")
StreamListener = Callable[[ChatStreamEvent], None]


@dataclass(frozen=True, slots=True)
class Delivery(Generic[T]):
    """One queued event; ``refresh`` marks a ``message`` that re-sends history after an edit."""

    item: T
    refresh: bool = False


class Subscription(Generic[T]):
    def __init__(self, maxsize: int) -> None:
        self.queue: asyncio.Queue[Delivery[T] | None] = asyncio.Queue(maxsize=maxsize + 1)
        self.maxsize = maxsize
        self.lagged = False

    def offer(self, item: T, *, refresh: bool = False) -> None:
        if self.lagged:
            return
        if self.queue.qsize() >= self.maxsize:
            self.lagged = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(Delivery(item, refresh))

    async def get(self) -> T | None:
        """The next event, or None when the subscriber lagged and was dropped."""
        delivery = await self.queue.get()
        return None if delivery is None else delivery.item

    async def batch(self, limit: int) -> list[Delivery[T]] | None:
        """Wait for one event, then take what else is queued (``limit`` in all).

        None once the subscriber lagged: what is still queued is incomplete, so it is not
        worth sending; the client must reconnect and resync.
        """
        first = await self.queue.get()
        if first is None or self.lagged:
            return None
        items = [first]
        while len(items) < limit and not self.queue.empty():
            item = self.queue.get_nowait()
            if item is None:
                return None
            items.append(item)
        return items

    def drain(self) -> list[T]:
        items: list[T] = []
        while not self.queue.empty():
            delivery = self.queue.get_nowait()
            if delivery is not None:
                items.append(delivery.item)
        return items


@dataclass
class TurnState:
    """What a client connecting mid-turn needs beyond the database."""

    buffering: bool = False
    parts: deque[ChatStreamEvent] = field(default_factory=lambda: deque(maxlen=MAX_BUFFERED_PARTS))
    retry: ChatStreamEvent | None = None


class EventHub:
    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.queue_size = queue_size
        self._chats: dict[uuid.UUID, set[Subscription[ChatStreamEvent]]] = {}
        self._owners: dict[uuid.UUID, set[Subscription[ChatWatchEvent]]] = {}
        self._turns: dict[uuid.UUID, TurnState] = {}
        self._listeners: list[StreamListener] = []
        self.worker_wakeup = asyncio.Event()

    # ---- durable events ---------------------------------------------------------------------

    def publish(self, outbox: Outbox) -> None:
        for event in outbox.stream:
            refresh = outbox.history_refresh and event.type == ChatStreamEventType.message
            self._deliver(event, refresh=refresh)
        for owner_id, watch_event in outbox.watch:
            for wsub in self._owners.get(owner_id, ()):
                wsub.offer(watch_event)
        if outbox.wake_workers:
            self.worker_wakeup.set()

    def _deliver(self, event: ChatStreamEvent, *, refresh: bool = False) -> None:
        turn = self._turns.get(event.chat_id)
        if turn is not None and event.type in (
            ChatStreamEventType.status,
            ChatStreamEventType.error,
        ):
            turn.retry = None
        for sub in self._chats.get(event.chat_id, ()):
            sub.offer(event, refresh=refresh)
        for listener in self._listeners:
            listener(event)

    def add_listener(self, listener: StreamListener) -> None:
        """Called with every stream event published here (the worker's control channel)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: StreamListener) -> None:
        self._listeners.remove(listener)

    # ---- the running turn -------------------------------------------------------------------

    def start_turn(self, chat_id: uuid.UUID) -> None:
        """A worker starts a turn: an empty part buffer, before ``running`` is published."""
        self._turns[chat_id] = TurnState(buffering=True)

    def publish_part(
        self, chat_id: uuid.UUID, role: ChatMessageRole, part: ChatMessagePart
    ) -> None:
        turn = self._turns.get(chat_id)
        if turn is None or not turn.buffering:
            return
        # The hot path (one call per streamed delta): the values are already typed, so the
        # event is assembled without re-validating them.
        event = ChatStreamEvent.model_construct(
            type=ChatStreamEventType.message_part,
            chat_id=chat_id,
            message_part=ChatStreamMessagePart.model_construct(role=role, part=part),
        )
        turn.retry = None
        turn.parts.append(event)
        self._deliver(event)

    def publish_retry(self, chat_id: uuid.UUID, retry: ChatStreamRetry) -> None:
        """A model call failed and will be retried: drop the attempt's parts, tell clients."""
        event = ChatStreamEvent(type=ChatStreamEventType.retry, chat_id=chat_id, retry=retry)
        turn = self._turns.get(chat_id)
        if turn is not None:
            turn.parts.clear()
        self._deliver(event)
        if turn is not None:
            turn.retry = event

    def end_turn(self, chat_id: uuid.UUID) -> None:
        self._turns.pop(chat_id, None)

    def turn_snapshot(
        self, chat_id: uuid.UUID
    ) -> tuple[ChatStreamEvent | None, list[ChatStreamEvent]]:
        """(pending retry event, buffered parts) of the chat's running turn."""
        turn = self._turns.get(chat_id)
        if turn is None:
            return None, []
        return turn.retry, list(turn.parts)

    # ---- subscriptions ----------------------------------------------------------------------

    @contextmanager
    def chat(self, chat_id: uuid.UUID) -> Iterator[Subscription[ChatStreamEvent]]:
        sub: Subscription[ChatStreamEvent] = Subscription(self.queue_size)
        self._chats.setdefault(chat_id, set()).add(sub)
        try:
            yield sub
        finally:
            subs = self._chats.get(chat_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._chats[chat_id]

    @contextmanager
    def owner(self, owner_id: uuid.UUID) -> Iterator[Subscription[ChatWatchEvent]]:
        sub: Subscription[ChatWatchEvent] = Subscription(self.queue_size)
        self._owners.setdefault(owner_id, set()).add(sub)
        try:
            yield sub
        finally:
            subs = self._owners.get(owner_id)
            if subs is not None:
                subs.discard(sub)
                if not subs:
                    del self._owners[owner_id]
