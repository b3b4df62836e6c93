"""The in-process event hub: per-chat and per-owner subscriptions with bounded queues.

Durable events (messages, status, queue, errors, retries) come from committed state changes
(:class:`~chatd.store.outbox.Outbox`). ``message_part`` events come straight from the worker
running a turn: they are kept in a turn-scoped buffer so a client that connects mid-turn gets
the parts it missed, and are never written to the database.

Each event is wrapped once in a :class:`~chatd.events.delivery.Delivery` that every
subscriber shares. Listeners (the worker's control channel) see durable events only, not parts.

Outboxes are published after their commits, so two transactions on one chat can be published
in the other order. A status announcement stamped older than one already published for its
chat (:attr:`~chatd.store.outbox.Outbox.stamp`) is dropped, stream ``status`` and watch
``status_change`` alike, so clients never end on a status the chat has left (§3.2 step 5); the
outbox's other events still go out.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from chatd.events.delivery import Delivery, Delta, PartDelivery, Subscription
from chatd.sdk.chats import ChatMessagePart, ChatMessageRole
from chatd.sdk.events import (
    ChatStreamEvent,
    ChatStreamEventType,
    ChatStreamRetry,
    ChatWatchEvent,
    ChatWatchEventKind,
)
from chatd.store.outbox import Outbox

DEFAULT_QUEUE_SIZE = 4096
MAX_BUFFERED_PARTS = 10_000
# Chats whose last published status stamp is remembered. Announcements are out of order only
# within the moments between a commit and its publish, so the most recent few thousand suffice.
STATUS_STAMPS_KEPT = 4096
# Called with each durable stream event and its outbox's stamp (see Outbox.stamp).
StreamListener = Callable[[ChatStreamEvent, int], None]


@dataclass
class TurnState:
    """What a client connecting mid-turn needs beyond the database."""

    buffering: bool = False
    parts: deque[PartDelivery] = field(default_factory=lambda: deque(maxlen=MAX_BUFFERED_PARTS))
    retry: Delivery[ChatStreamEvent] | None = None


class EventHub:
    def __init__(self, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        self.queue_size = queue_size
        self._chats: dict[uuid.UUID, set[Subscription[ChatStreamEvent]]] = {}
        self._owners: dict[uuid.UUID, set[Subscription[ChatWatchEvent]]] = {}
        self._turns: dict[uuid.UUID, TurnState] = {}
        self._listeners: list[StreamListener] = []
        self._status_stamps: OrderedDict[uuid.UUID, int] = OrderedDict()
        self.worker_wakeup = asyncio.Event()

    # ---- durable events ---------------------------------------------------------------------

    def publish(self, outbox: Outbox) -> None:
        stale = self._stale_status_chats(outbox)
        for event in outbox.stream:
            if event.type == ChatStreamEventType.status and event.chat_id in stale:
                continue
            refresh = outbox.history_refresh and event.type == ChatStreamEventType.message
            self._deliver(Delivery(event, refresh), outbox.stamp)
        for owner_id, watch_event in outbox.watch:
            kind = watch_event.kind
            if kind == ChatWatchEventKind.status_change and watch_event.chat.id in stale:
                continue
            watch_delivery = Delivery(watch_event)
            for wsub in self._owners.get(owner_id, ()):
                wsub.offer(watch_delivery)
        if outbox.wake_workers:
            self.worker_wakeup.set()

    def _stale_status_chats(self, outbox: Outbox) -> set[uuid.UUID]:
        """The chats whose status in ``outbox`` is older than one already published; the
        others are remembered with the outbox's stamp."""
        stale: set[uuid.UUID] = set()
        if not outbox.stamp:
            return stale
        stamps = self._status_stamps
        for event in outbox.stream:
            if event.type != ChatStreamEventType.status:
                continue
            if stamps.get(event.chat_id, 0) > outbox.stamp:
                stale.add(event.chat_id)
                continue
            stamps[event.chat_id] = outbox.stamp
            stamps.move_to_end(event.chat_id)
            if len(stamps) > STATUS_STAMPS_KEPT:
                stamps.popitem(last=False)
        return stale

    def _deliver(self, delivery: Delivery[ChatStreamEvent], stamp: int = 0) -> None:
        event = delivery.item
        turn = self._turns.get(event.chat_id)
        if turn is not None and event.type in (
            ChatStreamEventType.status,
            ChatStreamEventType.error,
        ):
            turn.retry = None
        for sub in self._chats.get(event.chat_id, ()):
            sub.offer(delivery)
        for listener in self._listeners:
            listener(event, stamp)

    def add_listener(self, listener: StreamListener) -> None:
        """Called with every durable stream event published here (the worker's control channel)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: StreamListener) -> None:
        self._listeners.remove(listener)

    # ---- the running turn -------------------------------------------------------------------

    def start_turn(self, chat_id: uuid.UUID) -> None:
        """A worker starts a turn: an empty part buffer, before ``running`` is published."""
        self._turns[chat_id] = TurnState(buffering=True)

    def publish_part(
        self, chat_id: uuid.UUID, role: ChatMessageRole, part: ChatMessagePart | Delta
    ) -> None:
        """One streamed part (the hot path: once per delta, no listener sees it)."""
        turn = self._turns.get(chat_id)
        if turn is None or not turn.buffering:
            return
        delivery = PartDelivery(chat_id, role, part)
        turn.retry = None
        turn.parts.append(delivery)
        for sub in self._chats.get(chat_id, ()):
            sub.offer(delivery)

    def publish_retry(self, chat_id: uuid.UUID, retry: ChatStreamRetry) -> None:
        """A model call failed and will be retried: drop the attempt's parts, tell clients."""
        event = ChatStreamEvent(type=ChatStreamEventType.retry, chat_id=chat_id, retry=retry)
        delivery = Delivery(event)
        turn = self._turns.get(chat_id)
        if turn is not None:
            turn.parts.clear()
        self._deliver(delivery)
        if turn is not None:
            turn.retry = delivery

    def end_turn(self, chat_id: uuid.UUID) -> None:
        self._turns.pop(chat_id, None)

    def turn_snapshot(
        self, chat_id: uuid.UUID
    ) -> tuple[Delivery[ChatStreamEvent] | None, list[PartDelivery]]:
        """(pending retry, buffered parts) of the chat's running turn."""
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
