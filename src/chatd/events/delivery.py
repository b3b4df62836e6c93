"""What the hub hands to subscribers: one :class:`Delivery` per event, shared by all of them.

A delivery encodes its event to JSON at most once, however many clients send it. A streamed
``message_part`` (one per delta, the hot path) is a :class:`PartDelivery`: it keeps the part (a
plain delta only its kind and text) and writes the JSON from it; the ``ChatStreamEvent`` object
is only built if something asks for ``item`` (a test, say): the stream sends JSON and the
buffer keeps deliveries.

A subscriber that falls behind is dropped (its queue yields ``None``) rather than slowing the
publisher; it reconnects and catches up from the database and the turn buffer.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import deque
from typing import Generic, NamedTuple, Self, TypeVar

from chatd.events.encode import delta_json, delta_text, message_part_json, part_event
from chatd.sdk.base import WireModel
from chatd.sdk.chats import ChatMessagePart, ChatMessagePartType, ChatMessageRole
from chatd.sdk.events import ChatStreamEvent

T = TypeVar("T", bound=WireModel)


class Delta(NamedTuple):
    """A streamed text or reasoning delta as the engine publishes it: no part object built."""

    kind: ChatMessagePartType
    text: str


class Delivery(Generic[T]):
    """One published event; ``refresh`` marks a ``message`` that re-sends history after an edit.

    ``seq`` is the event's place in its chat's stream (:mod:`chatd.store.seqs`; 0 for events
    outside it, such as watch events). A delivery read back from the event log has only its
    JSON until something asks for ``item``.
    """

    __slots__ = ("_item", "refresh", "_json", "seq", "_model")

    def __init__(self, item: T | None, refresh: bool = False, seq: int = 0) -> None:
        self._item = item
        self.refresh = refresh
        self.seq = seq
        self._json: str | None = None
        self._model: type[T] | None = None

    @classmethod
    def encoded(cls, item: T, json: str, refresh: bool = False, seq: int = 0) -> Self:
        """A delivery of ``item`` whose JSON is already known."""
        delivery = cls(item, refresh, seq)
        delivery._json = json
        return delivery

    @classmethod
    def from_json(cls, json: str, model: type[T], refresh: bool = False, seq: int = 0) -> Self:
        delivery = cls(None, refresh, seq)
        delivery._json = json
        delivery._model = model
        return delivery

    @property
    def item(self) -> T:
        if self._item is None:
            assert self._model is not None and self._json is not None
            self._item = self._model.model_validate_json(self._json)
        return self._item

    @property
    def json(self) -> str:
        """The event's wire form, encoded on first use."""
        if self._json is None:
            self._json = self.item.model_dump_json()
        return self._json


class PartDelivery(Delivery[ChatStreamEvent]):
    """A ``message_part`` event, kept as its part until its JSON or event is asked for.

    A plain delta keeps only its kind and text: one object per delta stays alive in the turn
    buffer instead of four, which the garbage collector would otherwise scan again and again
    while the turn runs (a full pass over 100 chats' buffers stalled every stream ~70 ms).
    """

    __slots__ = ("chat_id", "role", "_part", "_kind", "_text")

    def __init__(
        self,
        chat_id: uuid.UUID,
        role: ChatMessageRole,
        part: ChatMessagePart | Delta,
        seq: int = 0,
    ) -> None:
        super().__init__(None, seq=seq)
        self.chat_id = chat_id
        self.role = role
        self._part: ChatMessagePart | None = None
        self._kind: ChatMessagePartType | None = None
        self._text: str | None = None
        if isinstance(part, Delta):
            self._kind, self._text = part
            return
        text = delta_text(part)
        if text is not None:
            self._kind, self._text = part.type, text
        else:
            self._part = part

    @property
    def part(self) -> ChatMessagePart:
        if self._part is not None:
            return self._part
        return ChatMessagePart.trusted(type=self._kind, text=self._text)

    @property
    def item(self) -> ChatStreamEvent:
        if self._item is None:
            self._item = part_event(self.chat_id, self.role, self.part, self.seq)
        return self._item

    @property
    def json(self) -> str:
        if self._json is None:
            if self._part is None:
                assert self._kind is not None and self._text is not None
                self._json = delta_json(self.chat_id, self.role, self._kind, self._text, self.seq)
            else:
                self._json = message_part_json(self.chat_id, self.role, self._part, self.seq)
        return self._json


class Subscription(Generic[T]):
    """One subscriber's queue of deliveries, read by one task (its stream writer).

    A deque and a single waiter: ``offer`` runs once per subscriber per delta, so it is kept
    to an append (an ``asyncio.Queue`` cost several times more there).
    """

    def __init__(self, maxsize: int) -> None:
        self._items: deque[Delivery[T]] = deque()
        self._waiter: asyncio.Future[None] | None = None
        self.maxsize = maxsize
        self.lagged = False

    def offer(self, delivery: Delivery[T]) -> None:
        if self.lagged:
            return
        if len(self._items) >= self.maxsize:
            self.lagged = True
            self._items.clear()
        else:
            self._items.append(delivery)
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self) -> None:
        while not self._items and not self.lagged:
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None

    async def get(self) -> T | None:
        """The next event, or None when the subscriber lagged and was dropped."""
        await self._wait()
        if self.lagged:
            return None
        return self._items.popleft().item

    async def batch(self, limit: int) -> list[Delivery[T]] | None:
        """Wait for one event, then take what else is queued (``limit`` in all).

        None once the subscriber lagged: what was queued is incomplete, so it is not worth
        sending; the client must reconnect and resync.
        """
        await self._wait()
        if self.lagged:
            return None
        items = self._items
        if len(items) <= limit:
            batch = list(items)
            items.clear()
            return batch
        return [items.popleft() for _ in range(limit)]

    def take_queued(self) -> list[Delivery[T]]:
        """What is queued now, without waiting (empty once lagged)."""
        items = list(self._items)
        self._items.clear()
        return items

    def drain(self) -> list[T]:
        items = [delivery.item for delivery in self._items]
        self._items.clear()
        return items
