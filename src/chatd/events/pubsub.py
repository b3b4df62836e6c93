"""Pub/sub between replicas: small state-change hints on named channels.

The contract every backend keeps (one test suite, ``tests/events/test_pubsub_contract.py``,
runs over all of them):

- **What travels.** Hints, never data: a payload tells a receiver what changed so it can read
  the database (the source of truth), e.g. a chat's new status and versions. Token deltas never
  go through here. A payload is text (``str``, or UTF-8 ``bytes``) under
  :data:`MAX_PAYLOAD_BYTES` bytes (:class:`PayloadTooLarge` otherwise); subscribers receive it
  as ``bytes``. A channel name is 1 to 63 characters out of ``A-Z a-z 0-9 _ . : -``
  (:class:`InvalidChannel` otherwise); it is checked before it reaches any SQL.
- **Publishing.** :meth:`PubSub.publish` sends at once. A state change publishes inside the
  transaction that makes it, with :func:`chatd.store.notify.notify` on the transaction's
  connection: delivered when it commits, never when it rolls back, and identical notifications
  in one transaction are delivered once.
- **Subscribing.** ``async with pubsub.subscribe(channel) as sub: async for payload in sub``.
  Once the ``async with`` is entered, what is published on the channel reaches ``sub``, in the
  order published (per publisher; across transactions, in commit order). Every subscriber of a
  channel gets every payload; other channels' payloads never. Leaving the block unsubscribes.
- **Delivery is at most once.** A subscriber that falls :data:`QUEUE_SIZE` payloads behind is
  dropped: its iteration ends with :attr:`Subscription.lagged` set. Stopping the pub/sub ends
  every iteration too. PostgreSQL drops what is sent while the listener is disconnected; after
  it is back, the callbacks given to :meth:`PubSub.on_reconnect` run, and each subscriber
  resyncs from the database. So receivers must tolerate lost, repeated and stale hints.

Backends: :class:`MemoryPubSub` (one process: SQLite deployments, tests) here, and
:class:`chatd.events.pg_pubsub.PostgresPubSub` (LISTEN/NOTIFY, any number of replicas).
"""

from __future__ import annotations

import abc
import asyncio
import inspect
from collections import deque
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from types import TracebackType
from typing import Protocol, Self

import structlog

from chatd.store.db import Database
from chatd.store.notify import (
    MAX_PAYLOAD_BYTES,
    InvalidChannel,
    InvalidPayload,
    NotificationError,
    PayloadTooLarge,
    check_channel,
    encode_payload,
)

__all__ = [
    "MAX_PAYLOAD_BYTES",
    "QUEUE_SIZE",
    "FanOut",
    "InvalidChannel",
    "InvalidPayload",
    "MemoryPubSub",
    "NotificationError",
    "PayloadTooLarge",
    "PubSub",
    "ReconnectCallback",
    "Subscription",
]

log = structlog.get_logger(__name__)

# Payloads a subscriber may have waiting before it is dropped as lagging.
QUEUE_SIZE = 1024
# Called after the listener came back from a disconnection (plain or async function).
ReconnectCallback = Callable[[], Awaitable[None] | None]


class Subscription:
    """One subscriber's payloads on one channel, as an async iterator of ``bytes``."""

    def __init__(self, channel: str, queue_size: int = QUEUE_SIZE) -> None:
        self.channel = channel
        self.queue_size = queue_size
        # True once it fell too far behind and was dropped (it resubscribes and resyncs).
        self.lagged = False
        self._payloads: deque[bytes] = deque()
        self._ready = asyncio.Event()
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def offer(self, payload: bytes) -> None:
        if self._closed:
            return
        if len(self._payloads) >= self.queue_size:
            self.lagged = True
            self._payloads.clear()
            self.close()
            return
        self._payloads.append(payload)
        self._ready.set()

    def close(self) -> None:
        """End the iteration once what is queued has been read (nothing, when lagged)."""
        self._closed = True
        self._ready.set()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> bytes:
        while not self._payloads:
            if self._closed:
                raise StopAsyncIteration
            self._ready.clear()
            await self._ready.wait()
        return self._payloads.popleft()


class PubSub(Protocol):
    """What the hub, the workers and the API use, whatever the backend."""

    async def start(self) -> None:
        """Get ready to deliver (PostgreSQL: connect the listener; raises if it cannot)."""

    async def stop(self) -> None:
        """Stop delivering, end every subscription, leave no task behind."""

    async def publish(self, channel: str, payload: bytes | str) -> None:
        """Send ``payload`` on ``channel`` now (a state change uses ``notify`` instead)."""

    def subscribe(self, channel: str) -> AbstractAsyncContextManager[Subscription]:
        """Receive what is published on ``channel`` from the moment the block is entered."""

    def on_reconnect(self, callback: ReconnectCallback) -> Callable[[], None]:
        """Call ``callback`` each time delivery resumes after an interruption (notifications
        may have been lost: resync). Callbacks run one after another in the task that
        watches the connection, so a long resync should be handed to a task of its own.
        Returns a function that removes the callback."""


class FanOut(abc.ABC):
    """The subscribers of each channel, and the backends' common machinery."""

    def __init__(self, queue_size: int = QUEUE_SIZE) -> None:
        self.queue_size = queue_size
        self._channels: dict[str, set[Subscription]] = {}
        self._reconnect_callbacks: list[ReconnectCallback] = []

    @property
    def channels(self) -> frozenset[str]:
        """The channels with at least one subscriber."""
        return frozenset(self._channels)

    @abc.abstractmethod
    async def start(self) -> None: ...

    @abc.abstractmethod
    async def stop(self) -> None: ...

    @abc.abstractmethod
    async def publish(self, channel: str, payload: bytes | str) -> None: ...

    async def channel_added(self, channel: str) -> None:  # noqa: B027 (optional hook)
        """The first subscriber of ``channel`` arrived (a backend may LISTEN on it)."""

    async def channel_removed(self, channel: str) -> None:  # noqa: B027 (optional hook)
        """The last subscriber of ``channel`` left (a backend may UNLISTEN it)."""

    @asynccontextmanager
    async def subscribe(self, channel: str) -> AsyncIterator[Subscription]:
        check_channel(channel)
        sub = Subscription(channel, self.queue_size)
        subs = self._channels.get(channel)
        first = subs is None
        if subs is None:
            subs = self._channels[channel] = set()
        subs.add(sub)
        try:
            if first:
                await self.channel_added(channel)
            yield sub
        finally:
            sub.close()
            subs.discard(sub)
            if not subs and self._channels.get(channel) is subs:
                del self._channels[channel]
                await self.channel_removed(channel)

    def deliver(self, channel: str, payload: bytes) -> None:
        """Hand ``payload`` to every subscriber of ``channel``."""
        for sub in list(self._channels.get(channel, ())):
            sub.offer(payload)
            if sub.lagged:
                log.warning("a pub/sub subscriber fell behind and was dropped", channel=channel)

    def close_subscriptions(self) -> None:
        for subs in self._channels.values():
            for sub in subs:
                sub.close()

    def on_reconnect(self, callback: ReconnectCallback) -> Callable[[], None]:
        self._reconnect_callbacks.append(callback)

        def remove() -> None:
            if callback in self._reconnect_callbacks:
                self._reconnect_callbacks.remove(callback)

        return remove

    async def fire_reconnect(self) -> None:
        """Run the reconnect callbacks in order; one that fails is logged, the rest still run."""
        for callback in list(self._reconnect_callbacks):
            try:
                result = callback()
                if inspect.isawaitable(result):
                    await result
            except Exception:
                log.exception("a pub/sub reconnect callback failed")

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


class MemoryPubSub(FanOut):
    """Pub/sub inside one process.

    Given a SQLite ``database``, once started it also receives what the database's write
    transactions send with :func:`chatd.store.notify.notify`, after they commit. It never
    disconnects, so its reconnect callbacks never run.
    """

    def __init__(self, database: Database | None = None, *, queue_size: int = QUEUE_SIZE) -> None:
        super().__init__(queue_size)
        if database is not None and not database.is_sqlite:
            raise ValueError(
                "MemoryPubSub cannot hear PostgreSQL notifications: use PostgresPubSub"
            )
        self._database = database
        self._started = False

    async def start(self) -> None:
        if self._started:
            return
        if self._database is not None:
            self._database.add_notification_sink(self.deliver)
        self._started = True

    async def stop(self) -> None:
        if not self._started:
            return
        if self._database is not None:
            self._database.remove_notification_sink(self.deliver)
        self._started = False
        self.close_subscriptions()

    async def publish(self, channel: str, payload: bytes | str) -> None:
        check_channel(channel)
        self.deliver(channel, encode_payload(payload))
