"""The event hub of one replica: per-chat and per-owner subscriptions, in each chat's order.

Durable events (messages, status, queue, errors, watch events) come from committed state
changes: each was numbered and logged by its transaction (:mod:`chatd.store.stream_log`). This
replica's own arrive in :meth:`EventHub.publish` after their commits; other replicas' are read
from the log when their hint arrives (:meth:`EventHub.on_hint`). ``message_part`` events and
retries come straight from the worker running a turn here and are never logged.

**Order.** For each chat someone here follows (a stream subscriber, a turn running here) the
hub keeps a *line*: the number of the last logged event it delivered. An event numbered next is
delivered at once; one further on waits until those before it arrive (another task's commit
published a moment later, a hint's read), at most :data:`GAP_WAIT` seconds, after which the hub
reads them from the log. A number already delivered is dropped. So every subscriber sees the
chat's events in commit order, exactly once, whatever order they reached this replica in.
A part or retry is numbered after the last logged event delivered (:mod:`chatd.store.seqs`):
the numbers a subscriber receives only ever increase.

**The running turn.** A turn's parts are kept for a client that connects mid-turn (since the
start or the last retry: :meth:`turn_snapshot`), and every event of the turn, logged or not, is
kept in the line's *ring*, from which a client resumes after a number (:meth:`replay`); the ring
outlives the turn by :data:`RING_KEEP` seconds.

**A turn running elsewhere.** A followed chat whose turn runs on another replica is fed by a
relay from it (:mod:`chatd.events.relay`, or Redis Streams: :mod:`chatd.events.redis_turns`):
from the turn's ``running`` status on, the line takes every event in that replica's order
(:meth:`relay_events`), parts included, and holds the logged events it hears of itself until
the relay has brought them; when the relay ends, the log takes over.

Chats nobody here follows have no line: their watch events go to the owner's watch sockets as
they arrive, a status older than one already delivered for the chat dropped. Each event is
wrapped once in a :class:`~chatd.events.delivery.Delivery` that every subscriber shares.
Listeners (the worker's control channel) see every logged stream event, with its number.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, NamedTuple, Protocol

import structlog

from chatd.events.delivery import Delivery, Delta, PartDelivery, Subscription
from chatd.sdk.chats import ChatMessagePart, ChatMessageRole, ChatStatus
from chatd.sdk.events import (
    ChatStreamEvent,
    ChatStreamEventType,
    ChatStreamRetry,
    ChatWatchEvent,
    ChatWatchEventKind,
)
from chatd.store import stream_log
from chatd.store.db import Database
from chatd.store.errors import StoreError
from chatd.store.outbox import Outbox
from chatd.store.seqs import PART_BITS, logged_part, part_index
from chatd.store.stream_log import Hint, LoggedEvent

log = structlog.get_logger(__name__)

DEFAULT_QUEUE_SIZE = 4096
MAX_BUFFERED_PARTS = 10_000
# Events of a turn kept for resuming clients (parts, retries and logged events).
MAX_RING = 20_000
# Seconds a turn's ring is kept after the turn ends.
RING_KEEP = 30.0
# Seconds a logged event waits for the ones numbered before it before they are read.
GAP_WAIT = 0.25
# Chats (without a line) whose last delivered status number is remembered.
STATUS_SEQS_KEPT = 4096
# A status or an error ends the wait for a retry.
_ENDS_RETRY = (ChatStreamEventType.status, ChatStreamEventType.error)
# Called with each logged stream event and its number.
StreamListener = Callable[[ChatStreamEvent, int], None]


@dataclass
class TurnState:
    """What a client connecting mid-turn needs beyond the database."""

    buffering: bool = False
    parts: deque[Delivery[ChatStreamEvent]] = field(
        default_factory=lambda: deque(maxlen=MAX_BUFFERED_PARTS)
    )
    retry: Delivery[ChatStreamEvent] | None = None


class Relayed(NamedTuple):
    """One event relayed from the replica running the turn (:mod:`chatd.events.relay`)."""

    seq: int
    kind: str  # PART, RETRY, or LOGGED
    refresh: bool
    json: str


PART, RETRY, LOGGED = "p", "r", "l"
# Follows a chat whose turn runs on another replica: (chat id, the logged number of the
# turn's running status, or 0 when not known).
Follower = Callable[[uuid.UUID, int], None]


class TurnSink(Protocol):
    """Where the events of turns running here are also written, for other replicas to read
    (:mod:`chatd.events.redis_turns`): each turn's, in order, then its end."""

    def record(
        self, chat_id: uuid.UUID, turn_seq: int, delivery: Delivery[ChatStreamEvent]
    ) -> None: ...

    def end(self, chat_id: uuid.UUID, turn_seq: int, seq: int) -> None: ...


@dataclass(frozen=True)
class Ring:
    """Every event a turn delivered here numbered above ``start``, up to ``end``."""

    start: int
    end: int
    events: list[Delivery[ChatStreamEvent]]


@dataclass(eq=False)
class _Line:
    """A followed chat: its subscribers and where its stream stands here."""

    chat_id: uuid.UUID
    # Offered each event in this order: relays to other replicas first (each has a replica's
    # clients behind it, which would otherwise wait for this one's to be written), then the
    # rest, as they came.
    subs: dict[Subscription[ChatStreamEvent], None] = field(default_factory=dict)
    # The number of the last logged event delivered (None: not known yet).
    position: int | None = None
    # Parts and retries delivered since.
    part: int = 0
    # Logged events that arrived before the ones numbered ahead of them.
    held: dict[int, LoggedEvent] = field(default_factory=dict)
    gap: asyncio.TimerHandle | None = None
    # Read the log up to this number (a hint from another replica, a gap to fill).
    read_upto: int = 0
    reader: asyncio.Task[None] | None = None
    # Being prepared (its position read): arrivals are held meanwhile.
    preparing: asyncio.Future[None] | None = None
    turn: TurnState | None = None
    # The logged number of the running turn's ``running`` status (0: not known).
    turn_seq: int = 0
    # Fed by a relay from the replica running the chat's turn (its parts, and meanwhile its
    # logged events too, in its order); ``relayed`` is that turn's state here.
    relay: bool = False
    relayed: TurnState | None = None
    # Every event delivered with a number above ring_start (None: no ring) while the turn ran
    # here, up to ring_end once it ended.
    ring: deque[Delivery[ChatStreamEvent]] = field(default_factory=deque)
    ring_start: int | None = None
    ring_end: int | None = None
    release: asyncio.TimerHandle | None = None

    @property
    def seq(self) -> int:
        """The number of the last event delivered (0: none)."""
        return ((self.position or 0) << PART_BITS) + self.part

    def record(self, delivery: Delivery[ChatStreamEvent]) -> bool:
        """Keep ``delivery`` in the ring if it is recording; whether it did."""
        if self.ring_start is None or self.ring_end is not None or delivery.seq <= self.ring_start:
            return False
        self.ring.append(delivery)
        if len(self.ring) > MAX_RING:
            self.ring_start = self.ring.popleft().seq
        return True


class EventHub:
    def __init__(self, db: Database | None = None, queue_size: int = DEFAULT_QUEUE_SIZE) -> None:
        """``db``: where the log is read from (None: events only arrive here, as in tests)."""
        self.db = db
        self.queue_size = queue_size
        self._lines: dict[uuid.UUID, _Line] = {}
        self._owners: dict[uuid.UUID, set[Subscription[ChatWatchEvent]]] = {}
        self._listeners: list[StreamListener] = []
        self._status_seqs: OrderedDict[uuid.UUID, int] = OrderedDict()
        self._tasks: set[asyncio.Task[None]] = set()
        # When a hint from another replica last arrived (a resync reads from a little before).
        self._heard_at: dt.datetime | None = None
        self.worker_wakeup = asyncio.Event()
        # Called for a followed chat whose turn runs on another replica (None: not relayed).
        self.follower: Follower | None = None
        # Given every event of the turns running here (None: they stay in this process).
        self.turn_sink: TurnSink | None = None
        # Set when a turn of the chat starts here (see wait_turn).
        self._turn_waiters: dict[uuid.UUID, asyncio.Event] = {}

    @property
    def origin(self) -> uuid.UUID | None:
        return self.db.origin if self.db is not None else None

    # ---- logged events ----------------------------------------------------------------------

    def publish(self, outbox: Outbox) -> None:
        """Deliver the events of a committed, sealed outbox (and wake the workers if asked)."""
        assert outbox.sealed or not outbox.has_events, "publish a sealed outbox"
        for event in outbox.logged:
            self._arrive(event)
        if outbox.wake_workers:
            self.worker_wakeup.set()

    def _arrive(self, event: LoggedEvent) -> None:
        line = self._lines.get(event.chat_id)
        if line is None:
            self._deliver_unfollowed(event)
            return
        if line.preparing is not None or line.relay:
            if line.position is None or event.seq > line.position:
                line.held[event.seq] = event  # the relay brings it, in the owner's order
            return
        if line.position is None:
            line.position = event.seq - 1
        if event.seq <= line.position:
            return
        if event.seq > line.position + 1:
            line.held[event.seq] = event
            self._await_gap(line)
            return
        self._deliver_logged(line, event)
        self._flush(line)

    def _flush(self, line: _Line) -> None:
        """Deliver the held events that are now next in line."""
        assert line.position is not None
        while line.held and not line.relay:
            for seq in [s for s in line.held if s <= line.position]:
                del line.held[seq]
            following = line.held.pop(line.position + 1, None)
            if following is None:
                break
            self._deliver_logged(line, following)
        if line.relay:
            return  # the relay brings the rest, in the order of the turn's replica
        if line.held:
            self._await_gap(line)
        elif line.gap is not None:
            line.gap.cancel()
            line.gap = None

    def _await_gap(self, line: _Line) -> None:
        if line.gap is None:
            line.gap = asyncio.get_running_loop().call_later(GAP_WAIT, self._gap_expired, line)

    def _gap_expired(self, line: _Line) -> None:
        line.gap = None
        if not line.held or line.position is None:
            return
        self._read(line, min(line.held) - 1)

    def _deliver_logged(self, line: _Line, event: LoggedEvent) -> None:
        line.position = event.seq
        line.part = 0
        if event.kind == stream_log.WATCH:
            self._deliver_watch(event)
            return
        delivery = _stream_delivery(event)
        stream_event = delivery.item if self._listeners else None
        turn = line.turn
        if turn is not None and delivery.item.type in _ENDS_RETRY:
            turn.retry = None
        for sub in line.subs:
            sub.offer(delivery)
        self._record(line, delivery)
        if stream_event is not None:
            for listener in self._listeners:
                listener(stream_event, event.seq)
        if line.subs and line.turn is None and self.follower is not None:
            if _is_running_status(delivery) and not line.relay:
                # A turn starts elsewhere: what follows comes through its relay, in its order
                # (held here meanwhile), from this status on.
                self._begin_relay(line)
                self.follower(line.chat_id, event.seq)

    def _deliver_unfollowed(self, event: LoggedEvent) -> None:
        if event.kind == stream_log.WATCH:
            self._deliver_watch(event)
            return
        if self._listeners:
            stream_event = _stream_delivery(event).item
            for listener in self._listeners:
                listener(stream_event, event.seq)

    def _deliver_watch(self, event: LoggedEvent) -> None:
        subs = self._owners.get(event.owner_id)
        if not subs:
            return
        delivery: Delivery[ChatWatchEvent]
        if isinstance(event.event, ChatWatchEvent):
            delivery = Delivery.encoded(event.event, event.json)
        else:
            delivery = Delivery.from_json(event.json, ChatWatchEvent)
        if delivery.item.kind == ChatWatchEventKind.status_change:
            if self._stale_status(event.chat_id, event.seq):
                return
        for sub in subs:
            sub.offer(delivery)

    def _stale_status(self, chat_id: uuid.UUID, seq: int) -> bool:
        """Whether a status numbered ``seq`` is older than one already delivered for the chat
        (else it is remembered as the newest)."""
        seqs = self._status_seqs
        if seqs.get(chat_id, 0) > seq:
            return True
        seqs[chat_id] = seq
        seqs.move_to_end(chat_id)
        if len(seqs) > STATUS_SEQS_KEPT:
            seqs.popitem(last=False)
        return False

    def add_listener(self, listener: StreamListener) -> None:
        """Called with every logged stream event delivered here (the worker's control channel)."""
        self._listeners.append(listener)

    def remove_listener(self, listener: StreamListener) -> None:
        self._listeners.remove(listener)

    # ---- other replicas ---------------------------------------------------------------------

    def on_hint(self, hint: Hint) -> None:
        """A transaction somewhere logged events (or made a chat pending)."""
        if hint.wake:
            self.worker_wakeup.set()
        if hint.chat_id is None or (hint.origin is not None and hint.origin == self.origin):
            return
        if self.db is not None:
            self._heard_at = self.db.now()
        line = self._lines.get(hint.chat_id)
        if line is not None:
            self._read(line, hint.last)
        elif hint.owner_id in self._owners or self._listeners:
            self._spawn(self._read_unfollowed(hint.chat_id, hint.first, hint.last))

    def resync(self) -> None:
        """Hints may have been lost (the listener reconnected): catch every line up from the
        log, send the watch events logged meanwhile, and let the workers look for work."""
        self.worker_wakeup.set()
        if self.db is None:
            return
        for line in list(self._lines.values()):
            self._read(line, None)
        since = (self._heard_at or self.db.now()) - dt.timedelta(seconds=5)
        for owner_id in list(self._owners):
            self._spawn(self._read_owner(owner_id, since))

    def _read(self, line: _Line, upto: int | None) -> None:
        """Read the line's log up to ``upto`` (None: to the end), one read at a time."""
        if line.preparing is not None:
            # Prepare reads what is missing once it knows the position.
            line.read_upto = -1 if upto is None or line.read_upto < 0 else max(line.read_upto, upto)
            return
        if self.db is None:
            if line.held and line.position is not None:
                line.position = min(line.held) - 1  # nothing to read them from: go on
                self._flush(line)
            return
        line.read_upto = -1 if upto is None else max(line.read_upto, upto)
        if line.reader is None or line.reader.done():
            line.reader = asyncio.create_task(self._reader(line))

    async def _reader(self, line: _Line) -> None:
        assert self.db is not None
        while (
            line.read_upto and line.position is not None and self._lines.get(line.chat_id) is line
        ):
            upto, line.read_upto = line.read_upto, 0
            first = line.position + 1
            try:
                if upto < 0:
                    upto = await self.db.run_read(stream_log.position, line.chat_id)
                events = await self.db.run_read(stream_log.read_events, line.chat_id, first, upto)
            except StoreError:
                log.warning("reading the event log failed", chat_id=str(line.chat_id))
                await asyncio.sleep(GAP_WAIT)
                line.read_upto = upto if line.read_upto == 0 else line.read_upto
                continue
            for event in events:
                self._arrive(event)
            if line.held and line.position is not None and min(line.held) > line.position + 1:
                # Numbers the log no longer has (kept too briefly): nothing will fill them.
                line.position = min(line.held) - 1
                self._flush(line)

    async def _read_unfollowed(self, chat_id: uuid.UUID, first: int, last: int) -> None:
        assert self.db is not None
        try:
            events = await self.db.run_read(stream_log.read_events, chat_id, first, last)
        except StoreError:
            log.warning("reading the event log failed", chat_id=str(chat_id))
            return
        for event in events:
            self._arrive(event)

    async def _read_owner(self, owner_id: uuid.UUID, since: dt.datetime) -> None:
        assert self.db is not None
        try:
            events = await self.db.run_read(stream_log.read_owner_watch_events, owner_id, since)
        except StoreError:
            log.warning("reading the event log failed", owner_id=str(owner_id))
            return
        for event in events:
            if event.chat_id not in self._lines:
                self._deliver_watch(event)

    def _spawn(self, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # ---- following a chat -------------------------------------------------------------------

    def _line(self, chat_id: uuid.UUID) -> _Line:
        line = self._lines.get(chat_id)
        if line is None:
            line = self._lines[chat_id] = _Line(chat_id)
        elif line.release is not None:
            line.release.cancel()
            line.release = None
        return line

    def _maybe_drop(self, line: _Line) -> None:
        if (
            line.subs
            or line.turn is not None
            or line.relay
            or line.release is not None
            or line.preparing is not None
        ):
            return
        if self._lines.get(line.chat_id) is line:
            del self._lines[line.chat_id]
        if line.gap is not None:
            line.gap.cancel()
        if line.position is not None:
            self._stale_status(line.chat_id, line.position)

    async def prepare(self, chat_id: uuid.UUID) -> None:
        """Make sure the line of a chat subscribed to (:meth:`chat`) knows its position, read
        from the database when it is new; events arriving meanwhile wait, then go out in
        order from there."""
        line = self._line(chat_id)
        if line.position is not None or self.db is None:
            return
        if line.preparing is None:
            line.preparing = asyncio.get_running_loop().create_future()
            try:
                state = await self.db.run_read(stream_log.follow, chat_id)
            except BaseException:
                line.preparing.set_result(None)
                line.preparing = None
                self._maybe_drop(line)
                raise
            preparing, line.preparing = line.preparing, None
            if line.position is None or line.position < state.seq:
                line.position = state.seq
                line.part = 0
            self._flush(line)
            preparing.set_result(None)
            asked, line.read_upto = line.read_upto, 0
            if line.held or asked:
                upto = None if asked < 0 else max(asked, max(line.held, default=0))
                self._read(line, upto)
            elsewhere = state.worker_id not in (None, self.origin)
            if state.status == ChatStatus.running and elsewhere and self.follower is not None:
                if line.turn is None and not line.relay and line.subs:
                    self.follower(chat_id, 0)
        else:
            await asyncio.shield(line.preparing)

    def seq(self, chat_id: uuid.UUID) -> int:
        """The number of the last event delivered for the chat here (0: none known)."""
        line = self._lines.get(chat_id)
        return line.seq if line is not None else 0

    def ring(self, chat_id: uuid.UUID) -> Ring | None:
        """A copy of the ring of the turn running (or just ended) here, if any."""
        line = self._lines.get(chat_id)
        if line is None or line.ring_start is None:
            return None
        end = line.ring_end if line.ring_end is not None else line.seq
        return Ring(start=line.ring_start, end=end, events=list(line.ring))

    # ---- the running turn -------------------------------------------------------------------

    def start_turn(self, chat_id: uuid.UUID, running_seq: int | None = None) -> None:
        """A worker starts a turn, whose ``running`` status was logged as ``running_seq``
        (None: the ring starts after what was delivered last): an empty part buffer, and a
        ring recording from that status on, before it is published."""
        line = self._line(chat_id)
        if line.relay:
            # It was following the chat's turn on another replica, which has gone: the turn
            # is this replica's now, and the log brings what came between.
            self.relay_ended(chat_id)
        if line.position is None and running_seq is not None:
            line.position, line.part = running_seq - 1, 0
        line.turn = TurnState(buffering=True)
        line.turn_seq = running_seq or 0
        line.ring.clear()
        first = line.seq if running_seq is None else (running_seq << PART_BITS) - 1
        line.ring_start = max(line.seq, first)
        waiter = self._turn_waiters.get(chat_id)
        if waiter is not None:
            waiter.set()
        line.ring_end = None

    def publish_part(
        self, chat_id: uuid.UUID, role: ChatMessageRole, part: ChatMessagePart | Delta
    ) -> None:
        """One streamed part (the hot path: once per delta, no listener sees it)."""
        line = self._lines.get(chat_id)
        if line is None:
            return
        turn = line.turn
        if turn is None or not turn.buffering:
            return
        line.part += 1
        delivery = PartDelivery(chat_id, role, part, line.seq)
        turn.retry = None
        turn.parts.append(delivery)
        self._record(line, delivery)
        for sub in line.subs:
            sub.offer(delivery)

    def publish_retry(self, chat_id: uuid.UUID, retry: ChatStreamRetry) -> None:
        """A model call failed and will be retried: drop the attempt's parts, tell clients."""
        line = self._lines.get(chat_id)
        if line is None or line.turn is None:
            return
        line.part += 1
        event = ChatStreamEvent(
            type=ChatStreamEventType.retry, chat_id=chat_id, retry=retry, seq=line.seq
        )
        delivery = Delivery(event, seq=line.seq)
        line.turn.parts.clear()
        for sub in line.subs:
            sub.offer(delivery)
        self._record(line, delivery)
        line.turn.retry = delivery

    def _record(self, line: _Line, delivery: Delivery[ChatStreamEvent]) -> None:
        """Keep the delivery in the ring, and (a turn running here) give it to the sink."""
        recorded = line.record(delivery)
        if recorded and line.turn is not None and line.turn_seq and self.turn_sink is not None:
            self.turn_sink.record(line.chat_id, line.turn_seq, delivery)

    def end_turn(self, chat_id: uuid.UUID) -> None:
        """The turn ended: no more parts; its ring is kept :data:`RING_KEEP` seconds."""
        line = self._lines.get(chat_id)
        if line is None:
            return
        if self.turn_sink is not None and line.turn is not None and line.turn_seq:
            self.turn_sink.end(chat_id, line.turn_seq, line.seq)
        line.turn = None
        line.ring_end = line.seq
        if line.release is None:
            line.release = asyncio.get_running_loop().call_later(RING_KEEP, self._release, line)

    def _release(self, line: _Line) -> None:
        line.release = None
        if line.turn is None:
            line.ring.clear()
            line.ring_start = None
        self._maybe_drop(line)

    def turn_snapshot(
        self, chat_id: uuid.UUID
    ) -> tuple[Delivery[ChatStreamEvent] | None, list[Delivery[ChatStreamEvent]]]:
        """(pending retry, buffered parts) of the chat's running turn (here, or relayed)."""
        line = self._lines.get(chat_id)
        turn = None if line is None else line.turn or line.relayed
        if turn is None:
            return None, []
        return turn.retry, list(turn.parts)

    def running_here(self, chat_id: uuid.UUID) -> bool:
        """Whether a turn of the chat runs on this replica now."""
        line = self._lines.get(chat_id)
        return line is not None and line.turn is not None

    async def wait_turn(self, chat_id: uuid.UUID) -> None:
        """Wait until a turn of the chat runs here (the caller bounds the wait)."""
        if self.running_here(chat_id):
            return
        waiter = self._turn_waiters.setdefault(chat_id, asyncio.Event())
        try:
            await waiter.wait()
        finally:
            if self._turn_waiters.get(chat_id) is waiter:
                del self._turn_waiters[chat_id]

    def has_subscribers(self, chat_id: uuid.UUID) -> bool:
        line = self._lines.get(chat_id)
        return line is not None and bool(line.subs)

    # ---- a turn running on another replica --------------------------------------------------

    def relay_started(self, chat_id: uuid.UUID) -> int | None:
        """A relay from the replica running the chat's turn begins (or, begun when its
        ``running`` status arrived, connects); it feeds the line from the number returned
        (None: nobody follows the chat here any more, or its turn runs here). Whoever calls
        it calls :meth:`relay_ended` when the relay ends, or fails to connect."""
        line = self._lines.get(chat_id)
        if line is None or not line.subs or line.turn is not None:
            return None
        if not line.relay:
            self._begin_relay(line)
        return line.seq

    def _begin_relay(self, line: _Line) -> None:
        if line.release is not None:
            line.release.cancel()
            line.release = None
        line.relay = True
        line.relayed = TurnState(buffering=True)
        line.ring.clear()
        line.ring_start, line.ring_end = line.seq, None

    def relay_events(self, chat_id: uuid.UUID, events: list[Relayed]) -> None:
        """Deliver what the relay brought, in the owner's order (each once)."""
        line = self._lines.get(chat_id)
        if line is None or not line.relay:
            return
        turn = line.relayed
        for item in events:
            if item.seq <= line.seq:
                continue
            line.position, line.part = logged_part(item.seq), part_index(item.seq)
            delivery = Delivery.from_json(item.json, ChatStreamEvent, item.refresh, item.seq)
            if turn is not None:
                if item.kind == PART:
                    turn.parts.append(delivery)
                    turn.retry = None
                elif item.kind == RETRY:
                    turn.parts.clear()
                    turn.retry = delivery
                else:
                    turn.retry = None if delivery.item.type in _ENDS_RETRY else turn.retry
            for sub in line.subs:
                sub.offer(delivery)
            line.record(delivery)
        for seq in [s for s in line.held if s <= (line.position or 0)]:
            del line.held[seq]

    def relay_ended(self, chat_id: uuid.UUID) -> None:
        """The relay ended (the turn ended there, or that replica went away): the log takes
        over from where the relay left off."""
        line = self._lines.get(chat_id)
        if line is None or not line.relay:
            return
        line.relay = False
        line.relayed = None
        line.ring_end = line.seq
        line.release = asyncio.get_running_loop().call_later(RING_KEEP, self._release, line)
        if line.position is not None:
            self._flush(line)
            self._read(line, None)

    # ---- subscriptions ----------------------------------------------------------------------

    @contextmanager
    def chat(
        self, chat_id: uuid.UUID, *, relay: bool = False
    ) -> Iterator[Subscription[ChatStreamEvent]]:
        """Subscribe to the chat's events; ``relay``: for another replica, served first."""
        sub: Subscription[ChatStreamEvent] = Subscription(self.queue_size)
        line = self._line(chat_id)
        if relay:
            line.subs = {sub: None, **line.subs}
        else:
            line.subs[sub] = None
        try:
            yield sub
        finally:
            line.subs.pop(sub, None)
            self._maybe_drop(line)

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

    async def close(self) -> None:
        """Stop the log reads in flight."""
        tasks = [*self._tasks, *(line.reader for line in self._lines.values() if line.reader)]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)


def _is_running_status(delivery: Delivery[ChatStreamEvent]) -> bool:
    event = delivery.item
    return (
        event.type == ChatStreamEventType.status
        and event.status is not None
        and event.status.status == ChatStatus.running
    )


def _stream_delivery(event: LoggedEvent) -> Delivery[ChatStreamEvent]:
    seq = event.seq << PART_BITS
    if isinstance(event.event, ChatStreamEvent):
        return Delivery.encoded(event.event, event.json, event.refresh, seq)
    return Delivery.from_json(event.json, ChatStreamEvent, event.refresh, seq)
