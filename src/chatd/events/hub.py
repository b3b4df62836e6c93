"""The in-process event hub: per-chat and per-owner subscriptions with bounded queues.

A subscriber that falls behind is dropped (its queue is closed with ``None``) rather than
slowing the publisher; it reconnects and catches up from the database.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Generic, TypeVar

from chatd.events.outbox import Outbox
from chatd.sdk.events import ChatStreamEvent, ChatWatchEvent

DEFAULT_QUEUE_SIZE = 4096
T = TypeVar("T")


class Subscription(Generic[T]):
    def __init__(self, maxsize: int) -> None:
        self.queue: asyncio.Queue[T | None] = asyncio.Queue(maxsize=maxsize + 1)
        self.maxsize = maxsize
        self.lagged = False

    def offer(self, item: T) -> None:
        if self.lagged:
            return
        if self.queue.qsize() >= self.maxsize:
            self.lagged = True
            self.queue.put_nowait(None)
            return
        self.queue.put_nowait(item)

    async def get(self) -> T | None:
        """The next event, or None when the subscriber lagged and was dropped."""
        return await self.queue.get()

    def drain(self) -> list[T]:
        items: list[T] = []
        while not self.queue.empty():
            item = self.queue.get_nowait()
            if item is not None:
                items.append(item)
        return items


class EventHub:
    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.queue_size = queue_size
        self._chats: dict[uuid.UUID, set[Subscription[ChatStreamEvent]]] = {}
        self._owners: dict[uuid.UUID, set[Subscription[ChatWatchEvent]]] = {}
        self.worker_wakeup = asyncio.Event()

    def publish(self, outbox: Outbox) -> None:
        for event in outbox.stream:
            for sub in self._chats.get(event.chat_id, ()):
                sub.offer(event)
        for owner_id, watch_event in outbox.watch:
            for wsub in self._owners.get(owner_id, ()):
                wsub.offer(watch_event)
        if outbox.wake_workers:
            self.worker_wakeup.set()

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
