"""Relaying a turn's events from the replica that runs it to one whose clients follow it.

A turn's parts and retries never leave the memory of the replica running it (they are not
logged). When a client here follows a chat whose turn runs on another replica, this replica
opens one internal WebSocket to that one (``/api/internal/chats/{chat}/relay``, signed with
the replicas' shared secret; :mod:`chatd.api.routes.replica_relay` serves it) and feeds its hub
what comes back: every event of the turn after the number this replica's stream stands at,
logged events included, in the owner's order (:meth:`EventHub.relay_events`). The owner closes
the relay once its turn ends; if it goes away instead, the log takes over here and the turn's
next owner is followed in turn.

On the wire each frame is one or more lines ``<seq> <kind><refresh> <event JSON>``: the kind is
``p`` (part), ``r`` (retry) or ``l`` (logged), refresh ``1`` for a message that re-sends history.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Iterable

import structlog
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosedError, InvalidHandshake

from chatd.events.delivery import Delivery, PartDelivery
from chatd.events.hub import LOGGED, PART, RETRY, EventHub, Relayed
from chatd.sdk.chats import ChatStatus
from chatd.sdk.events import ChatStreamEvent, ChatStreamEventType
from chatd.store import stream_log
from chatd.store.db import Database
from chatd.store.errors import StoreError

log = structlog.get_logger(__name__)

RELAY_PATH = "/api/internal/chats/{}/relay"
MAX_FRAME_BYTES = 64 * 1024 * 1024
CONNECT_TIMEOUT = 5.0


def encode(deliveries: Iterable[Delivery[ChatStreamEvent]]) -> str:
    lines = []
    for d in deliveries:
        if isinstance(d, PartDelivery):
            kind = PART
        elif d.item.type == ChatStreamEventType.retry:
            kind = RETRY
        else:
            kind = LOGGED
        lines.append(f"{d.seq} {kind}{int(d.refresh)} {d.json}")
    return "\n".join(lines)


def decode(frame: str) -> list[Relayed]:
    events = []
    for line in frame.split("\n"):
        seq, flags, json = line.split(" ", 2)
        events.append(Relayed(int(seq), flags[0], flags[1:] == "1", json))
    return events


def _ws_url(address: str) -> str:
    """A replica's internal address (http or https) as a WebSocket URL."""
    scheme, sep, rest = address.rstrip("/").partition("://")
    return {"http": "ws", "https": "wss"}.get(scheme, scheme) + sep + rest


class Following:
    """One task per followed chat running ``run(chat_id, turn)`` (``turn``: the logged number
    of the turn's running status, 0 when not known); asked again while it runs (the next turn
    started as this one ended), it runs once more, for the newest turn asked, when done."""

    def __init__(self, run: Callable[[uuid.UUID, int], Awaitable[None]], name: str) -> None:
        self._run = run
        self._name = name
        self._tasks: dict[uuid.UUID, asyncio.Task[None]] = {}
        self._again: dict[uuid.UUID, int] = {}

    def follow(self, chat_id: uuid.UUID, turn: int) -> None:
        if chat_id in self._tasks:
            self._again[chat_id] = max(turn, self._again.get(chat_id, 0))
            return
        task = asyncio.create_task(self._loop(chat_id, turn), name=f"{self._name}-{chat_id}")
        self._tasks[chat_id] = task

    async def _loop(self, chat_id: uuid.UUID, turn: int) -> None:
        try:
            while True:
                await self._run(chat_id, turn)
                if chat_id not in self._again:
                    return
                turn = self._again.pop(chat_id)
        finally:
            self._tasks.pop(chat_id, None)
            self._again.pop(chat_id, None)

    async def close(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


class Relays:
    """This replica's relays, one per followed chat whose turn runs elsewhere."""

    def __init__(
        self,
        db: Database,
        hub: EventHub,
        token: Callable[[], str],
        address_of: Callable[[uuid.UUID], Awaitable[str | None]],
    ) -> None:
        self.db = db
        self.hub = hub
        self.token = token
        self.address_of = address_of
        self._following = Following(self._relay, "chatd-relay")
        # The hub calls this for a followed chat whose turn runs elsewhere.
        hub.follower = self._following.follow

    async def _relay(self, chat_id: uuid.UUID, turn: int) -> None:
        try:
            state = await self.db.run_read(stream_log.follow, chat_id)
            if state.status != ChatStatus.running or state.worker_id in (None, self.db.origin):
                return
            assert state.worker_id is not None
            address = await self.address_of(state.worker_id)
            if address is None:
                return
            after = self.hub.relay_started(chat_id)
            if after is not None:
                await self._receive(chat_id, address, after)
        except ConnectionClosedError:
            log.info("relay from the turn's replica ended", chat_id=str(chat_id))
        except (InvalidHandshake, OSError, TimeoutError, StoreError) as failed:
            log.info(
                "relay from the turn's replica failed", chat_id=str(chat_id), error=str(failed)
            )
        except Exception:
            log.exception("relay failed", chat_id=str(chat_id))
        finally:
            self.hub.relay_ended(chat_id)  # the log takes over (or, not relayed, goes on)

    async def _receive(self, chat_id: uuid.UUID, address: str, after: int) -> None:
        # The websockets client hands each frame over from the socket's read callback; an
        # HTTP client's WebSocket read it in a task of its own, one more wait in a busy loop.
        url = f"{_ws_url(address)}{RELAY_PATH.format(chat_id)}?after_seq={after}"
        async with connect(
            url,
            additional_headers={"Authorization": f"Bearer {self.token()}"},
            max_size=MAX_FRAME_BYTES,
            open_timeout=CONNECT_TIMEOUT,
            compression=None,
        ) as ws:
            async for frame in ws:  # ends when the owner closes it (its turn ended)
                text = frame if isinstance(frame, str) else frame.decode()
                self.hub.relay_events(chat_id, decode(text))
                if not self.hub.has_subscribers(chat_id):
                    return

    async def close(self) -> None:
        await self._following.close()
