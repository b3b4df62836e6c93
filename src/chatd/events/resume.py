"""Resuming a stream after a sequence number: exactly the events a client missed, or nothing.

A client that reconnects with ``after_seq=N`` needs every event numbered above N up to where
this replica's live subscription starts (``start``, :meth:`EventHub.seq`), in order. They come
from two places (:mod:`chatd.store.seqs` explains the numbers):

- the turn's ring, where it covers them (the turn runs, or ran moments ago, here): every event
  of the turn, parts and retries included;
- the event log, for logged events. Parts are never logged, so the log serves a stretch only
  where the chat had no turn producing them: after each logged event the stretch covers, the
  chat's status (logged with it) must not be ``running``.

When neither covers the whole way (the log was trimmed, parts ran on a replica that has not got
them, the ring was released) :func:`resume_events` returns None, and the client gets the
snapshot after a ``history_reset`` event instead.
"""

from __future__ import annotations

import uuid
from typing import Protocol

from chatd.events.delivery import Delivery
from chatd.events.hub import Ring
from chatd.sdk.chats import ChatStatus
from chatd.sdk.events import ChatStreamEvent
from chatd.store import stream_log
from chatd.store.db import Database
from chatd.store.seqs import PART_BITS, durable_seq, logged_part
from chatd.store.stream_log import LoggedEvent


class _Gap(Exception):
    """The events asked for are not all here any more: those after logged event ``at`` (a
    turn's parts), or (``at`` None) logged ones."""

    def __init__(self, at: int | None = None) -> None:
        super().__init__(at)
        self.at = at


class TurnSource(Protocol):
    """Turns' events kept outside this process (Redis Streams: :mod:`chatd.events.redis_turns`)."""

    async def turn_before(self, chat_id: uuid.UUID, n: int) -> int | None:
        """The logged number of the chat's latest turn start at or before logged event ``n``."""
        ...

    async def ring(self, chat_id: uuid.UUID, turn_seq: int) -> Ring | None:
        """Every event of that turn, as its replica delivered them."""
        ...


async def resume_events(
    db: Database,
    chat_id: uuid.UUID,
    after: int,
    start: int,
    ring: Ring | None,
    *,
    parts_kept: bool = True,
    turns: TurnSource | None = None,
) -> list[Delivery[ChatStreamEvent]] | None:
    """The stream events numbered above ``after`` up to ``start``; None when they cannot all be
    given (see the module). ``parts_kept=False``: the logged ones even where parts that are
    not kept may lie between them (None only where the log lacks some). ``turns``: where the
    parts of turns that ran elsewhere may still be found."""
    if after >= start:
        return []
    first = max(logged_part(after), 1)
    logged = await db.run_read(stream_log.read_events, chat_id, first, logged_part(start))
    resume = _Resume({e.seq: e for e in logged}, after, parts_kept)
    while True:
        try:
            return resume.run(start, ring)
        except _Gap as gap:
            if turns is None or gap.at is None:
                return None
            turn = await turns.turn_before(chat_id, gap.at)
            kept = await turns.ring(chat_id, turn) if turn is not None else None
            if turn is None or kept is None or kept.start > resume.cursor:
                return None
            resume.take(kept, start)
            resume.covered_turn = turn


class _Resume:
    def __init__(self, logged: dict[int, LoggedEvent], after: int, parts_kept: bool) -> None:
        self.logged = logged
        self.cursor = after
        self.parts_kept = parts_kept
        self.events: list[Delivery[ChatStreamEvent]] = []
        # The turn (its running status's number) whose parts were all taken from elsewhere:
        # its stretch of the log needs none, up to the next turn's start.
        self.covered_turn: int | None = None

    def run(self, start: int, ring: Ring | None) -> list[Delivery[ChatStreamEvent]]:
        if ring is not None and ring.end > self.cursor:
            if self.cursor < ring.start:
                self._from_log(ring.start)
            self.take(ring, start)
        self._from_log(start)
        return self.events

    def take(self, ring: Ring, upto: int) -> None:
        """The ring's events after the cursor, up to ``upto``."""
        self.events.extend(d for d in ring.events if self.cursor < d.seq <= upto)
        self.cursor = max(self.cursor, min(ring.end, upto))

    def _from_log(self, upto: int) -> None:
        """The logged events numbered in (cursor, upto]; a gap where parts may lie there."""
        if upto <= self.cursor:
            return
        for n in range(logged_part(self.cursor), logged_part(upto) + 1):
            event = self.logged.get(n)
            if n == 0:
                status = None  # before the chat's first event: no turn yet
            elif event is None:
                raise _Gap  # trimmed from the log
            else:
                status = event.status
                if _starts_turn(event) and self.covered_turn is not None and n > self.covered_turn:
                    self.covered_turn = None
                if self.cursor < durable_seq(n) <= upto:
                    if event.kind == stream_log.STREAM:
                        self.events.append(_delivery(event))
                    self.cursor = durable_seq(n)
            parts_from, parts_to = durable_seq(n) + 1, durable_seq(n + 1) - 1
            in_range = parts_from <= upto and parts_to > self.cursor
            uncovered = self.parts_kept and self.covered_turn is None
            if status == ChatStatus.running and in_range and uncovered:
                raise _Gap(n)  # a turn's parts, which the log does not keep
        self.cursor = upto


def _starts_turn(event: LoggedEvent) -> bool:
    """A turn's ``running`` status (read without parsing the event)."""
    return (
        event.kind == stream_log.STREAM
        and event.json.startswith('{"type":"status"')
        and '"status":{"status":"running"}' in event.json
    )


def _delivery(event: LoggedEvent) -> Delivery[ChatStreamEvent]:
    return Delivery.from_json(event.json, ChatStreamEvent, event.refresh, event.seq << PART_BITS)
