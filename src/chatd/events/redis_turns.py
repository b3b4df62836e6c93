"""Turns' events through Redis Streams, when ``CHATD_REDIS_URL`` is set: the other way for a
turn's parts to reach the replicas that follow it (instead of the internal relay).

The replica running a turn writes every event of it, in its order, to one Redis stream per
turn, ``chatd:turn:<chat>:<n>`` (``n``: the logged number of the turn's ``running`` status),
then an end entry; the stream is trimmed to :data:`MAX_ENTRIES` and expires
:data:`KEEP_SECONDS` after its last write. A sorted set per chat, ``chatd:turns:<chat>``, lists
its turns by ``n``. Writes are batched: what one pass of the event loop produced goes in one
pipeline.

A replica whose client follows a chat running elsewhere reads the turn's stream from its start
(``XREAD BLOCK``) and feeds its hub what comes after where it stands
(:meth:`EventHub.relay_events`), until the end entry, or until the chat no longer runs on the
replica that wrote it (it died: the log takes over, and the next owner's turn is followed).
Because the streams outlive their writers, a client resuming after a number on any replica gets
a dead replica's parts too (:class:`~chatd.events.resume.TurnSource`).
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from typing import Any

import structlog
from redis.asyncio import Redis
from redis.exceptions import RedisError

from chatd.events.delivery import Delivery
from chatd.events.hub import EventHub, Relayed, Ring
from chatd.events.relay import Following, decode, encode
from chatd.sdk.chats import ChatStatus
from chatd.sdk.events import ChatStreamEvent
from chatd.store import stream_log
from chatd.store.db import Database
from chatd.store.errors import StoreError

log = structlog.get_logger(__name__)

MAX_ENTRIES = 20_000
KEEP_SECONDS = 3600
# How long a follower's read blocks before it looks whether the writer still runs the turn.
BLOCK_MS = 1000
END = "e"
# A turn just claimed elsewhere is looked for this many times, this many seconds apart.
TURN_LISTED_TRIES = 40
TURN_LISTED_PAUSE = 0.05


def turn_key(chat_id: uuid.UUID, turn_seq: int) -> str:
    return f"chatd:turn:{chat_id}:{turn_seq}"


def turns_key(chat_id: uuid.UUID) -> str:
    return f"chatd:turns:{chat_id}"


class RedisTurns:
    def __init__(self, db: Database, hub: EventHub, url: str) -> None:
        self.db = db
        self.hub = hub
        self.redis: Redis = Redis.from_url(url, decode_responses=True)
        # Entries written since the last flush, per stream key, in order.
        self._pending: defaultdict[str, list[str]] = defaultdict(list)
        self._new_turns: list[tuple[uuid.UUID, int]] = []
        # The streams of turns running here, once listed in their chat's set.
        self._listed: set[str] = set()
        self._flushing: asyncio.Task[None] | None = None
        self._following = Following(self._follow, "chatd-redis-follow")
        hub.turn_sink = self
        hub.follower = self._following.follow

    async def start(self) -> None:
        await self.redis.ping()

    async def close(self) -> None:
        await self._following.close()
        if self._flushing is not None:
            await asyncio.gather(self._flushing, return_exceptions=True)
        await self.redis.aclose()

    # ---- writing the turns that run here ----------------------------------------------------

    def record(
        self, chat_id: uuid.UUID, turn_seq: int, delivery: Delivery[ChatStreamEvent]
    ) -> None:
        key = turn_key(chat_id, turn_seq)
        if key not in self._listed:
            self._listed.add(key)
            self._new_turns.append((chat_id, turn_seq))
        self._pending[key].append(encode([delivery]))
        self._schedule()

    def end(self, chat_id: uuid.UUID, turn_seq: int, seq: int) -> None:
        key = turn_key(chat_id, turn_seq)
        self._listed.discard(key)
        self._pending[key].append(f"{seq} {END}0 ")
        self._schedule()

    def _schedule(self) -> None:
        if self._flushing is None or self._flushing.done():
            self._flushing = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        await asyncio.sleep(0)  # let the rest of this pass of the loop add to the batch
        while self._pending:
            pending, self._pending = self._pending, defaultdict(list)
            new_turns, self._new_turns = self._new_turns, []
            try:
                async with self.redis.pipeline(transaction=False) as pipe:
                    for chat_id, turn_seq in new_turns:
                        pipe.zadd(turns_key(chat_id), {str(turn_seq): turn_seq})
                        pipe.expire(turns_key(chat_id), KEEP_SECONDS)
                    for key, entries in pending.items():
                        for entry in entries:
                            pipe.xadd(key, {"e": entry}, maxlen=MAX_ENTRIES, approximate=True)
                        pipe.expire(key, KEEP_SECONDS)
                    await pipe.execute()
            except RedisError as error:
                log.warning("writing a turn's events to Redis failed", error=str(error))

    # ---- following turns that run elsewhere -------------------------------------------------

    async def _follow(self, chat_id: uuid.UUID, turn: int) -> None:
        """Follow turn ``turn`` (0: the chat's latest) while it is written, even when it
        already ended: its stream holds it all."""
        try:
            state = await self.db.run_read(stream_log.follow, chat_id)
            if state.worker_id == self.db.origin:
                return
            listed = await self._listed_turn(chat_id, turn or state.seq, exact=bool(turn))
            if listed is None or self.hub.relay_started(chat_id) is None:
                return
            await self._read(chat_id, listed, state.worker_id)
        except (RedisError, StoreError, OSError) as error:
            log.info("following a turn through Redis ended", chat_id=str(chat_id), error=str(error))
        except Exception:
            log.exception("following a turn through Redis failed", chat_id=str(chat_id))
        finally:
            self.hub.relay_ended(chat_id)  # the log takes over (or, not relayed, goes on)

    async def _listed_turn(self, chat_id: uuid.UUID, n: int, *, exact: bool) -> int | None:
        """Turn ``n`` (``exact``), or the latest at or before logged event ``n``: listed by its
        replica's first write, which may come a moment after its running status is read."""
        for _ in range(TURN_LISTED_TRIES):
            turn = await self.turn_before(chat_id, n)
            if turn is not None and (turn == n or not exact):
                return turn
            await asyncio.sleep(TURN_LISTED_PAUSE)
        return None

    async def _read(self, chat_id: uuid.UUID, turn: int, writer: uuid.UUID | None) -> None:
        key, last = turn_key(chat_id, turn), "0"
        while self.hub.has_subscribers(chat_id):
            answer: Any = await self.redis.xread({key: last}, count=512, block=BLOCK_MS)
            if not answer:
                state = await self.db.run_read(stream_log.follow, chat_id)
                if state.status != ChatStatus.running or state.worker_id != writer:
                    return  # the turn ended, or its replica died: the log goes on
                latest = await self.turn_before(chat_id, state.seq)
                if latest is not None and latest > turn:
                    return  # a newer turn runs (its status, held here, starts its follow)
                continue
            relayed: list[Relayed] = []
            for _key, entries in answer:
                for entry_id, fields in entries:
                    last = str(entry_id)
                    (item,) = decode(str(fields["e"]))
                    if item.kind == END:
                        self.hub.relay_events(chat_id, relayed)
                        return
                    relayed.append(item)
            self.hub.relay_events(chat_id, relayed)

    # ---- resuming clients (TurnSource) ------------------------------------------------------

    async def turn_before(self, chat_id: uuid.UUID, n: int) -> int | None:
        found: Any = await self.redis.zrevrangebyscore(
            turns_key(chat_id), n, "-inf", start=0, num=1
        )
        return int(found[0]) if found else None

    async def ring(self, chat_id: uuid.UUID, turn_seq: int) -> Ring | None:
        entries: Any = await self.redis.xrange(turn_key(chat_id, turn_seq))
        events: list[Delivery[ChatStreamEvent]] = []
        end: int | None = None
        for _entry_id, fields in entries:
            (item,) = decode(str(fields["e"]))
            if item.kind == END:
                end = item.seq
                break
            events.append(Delivery.from_json(item.json, ChatStreamEvent, item.refresh, item.seq))
        if not events:
            return None
        start = events[0].seq - 1  # a turn's stream begins with its running status
        return Ring(start=start, end=end if end is not None else events[-1].seq, events=events)
