"""Hearing the other replicas: event hints from PostgreSQL's LISTEN/NOTIFY, into the hub.

Every write transaction that logs events sends a hint on :data:`~chatd.store.stream_log.CHANNEL`
(:func:`chatd.store.stream_log.seal`). One :class:`HintListener` per replica hands each to its
hub (:meth:`~chatd.events.hub.EventHub.on_hint`), which reads the events of the chats someone
here follows from the log. Hints can be lost (the listener's connection dropped, this
subscriber fell behind): then the hub resyncs from the log.

On SQLite there is one process and no other replica to hear, so there is no listener.
"""

from __future__ import annotations

import asyncio
import contextlib

import structlog

from chatd.events.hub import EventHub
from chatd.events.pg_pubsub import PostgresPubSub
from chatd.store.db import Database
from chatd.store.stream_log import CHANNEL, parse_hint

log = structlog.get_logger(__name__)


class HintListener:
    def __init__(self, db: Database, hub: EventHub, pubsub: PostgresPubSub | None = None) -> None:
        self.hub = hub
        self.pubsub = pubsub or PostgresPubSub(db)
        self._task: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        self._remove_callback = self.pubsub.on_reconnect(hub.resync)

    async def start(self) -> None:
        """Connect and subscribe (a StoreError when the database cannot be reached)."""
        await self.pubsub.start()
        self._task = asyncio.create_task(self._listen(), name="chatd-event-hints")
        await self._subscribed.wait()

    async def _listen(self) -> None:
        while True:
            async with self.pubsub.subscribe(CHANNEL) as sub:
                if self._subscribed.is_set():
                    self.hub.resync()  # what arrived while resubscribing is read from the log
                self._subscribed.set()
                async for payload in sub:
                    hint = parse_hint(payload)
                    if hint is not None:
                        self.hub.on_hint(hint)
                if not sub.lagged:
                    return  # the pub/sub stopped
            log.warning("event hints fell behind; resyncing from the log")

    async def stop(self) -> None:
        self._remove_callback()
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.pubsub.stop()
