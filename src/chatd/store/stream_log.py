"""The chat event log: every stream and watch event a transaction publishes, numbered per chat.

A transaction that changes a chat collects its events in an :class:`~chatd.store.outbox.Outbox`
and, as its last statements, :func:`seal` s it: the chat's ``stream_seq`` goes up by one per
event (under the chat's row lock, so the numbers follow the commit order and have no gaps), each
event is written to ``chat_events`` with its number, and one small notification (a hint, never
the event) goes out on :data:`CHANNEL` when the transaction commits. Events are numbered in the
outbox's order, stream events before watch events.

Every replica's hub delivers a chat's events in that order: its own after their commits, the
others' by reading them from here when their hint arrives (:func:`read_events`). A stream resumes
after a sequence number from here too, for as long as the events are kept (:func:`trim`).
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field

import sqlalchemy as sa
import structlog

from chatd.sdk.events import ChatStreamEvent, ChatWatchEvent
from chatd.store.notify import notify
from chatd.store.outbox import Outbox
from chatd.store.seqs import durable_seq
from chatd.store.sql import Connection, Row
from chatd.store.tables import chat_events, chats

log = structlog.get_logger(__name__)

# The one channel every replica listens on (hints for every chat: a replica ignores those of
# chats it has nobody interested in, without a query).
CHANNEL = "chatd_events"
STREAM = "stream"
WATCH = "watch"


@dataclass(slots=True)
class LoggedEvent:
    """One logged event: ``event`` when it was built here, else only its ``json`` (read back)."""

    chat_id: uuid.UUID
    seq: int
    owner_id: uuid.UUID
    kind: str  # STREAM or WATCH
    status: str  # the chat's status once the event's transaction committed
    refresh: bool
    json: str
    event: ChatStreamEvent | ChatWatchEvent | None = None


@dataclass(frozen=True, slots=True)
class Hint:
    """What a notification says: chat ``chat_id`` (owned by ``owner_id``) logged events
    ``first`` to ``last``, written by replica ``origin``; ``wake``: a chat became pending."""

    chat_id: uuid.UUID | None
    owner_id: uuid.UUID | None
    first: int
    last: int
    origin: uuid.UUID | None
    wake: bool


@dataclass
class _ChatEvents:
    stream: list[ChatStreamEvent] = field(default_factory=list)
    watch: list[ChatWatchEvent] = field(default_factory=list)


_BUMP = (
    chats.update()
    .where(chats.c.id == sa.bindparam("chat_id"))
    .values(stream_seq=chats.c.stream_seq + sa.bindparam("n", type_=sa.BigInteger))
    .returning(chats.c.stream_seq, chats.c.owner_id, chats.c.status)
)
_INSERT = chat_events.insert()
_COLUMNS = (
    chat_events.c.chat_id,
    chat_events.c.seq,
    chat_events.c.owner_id,
    chat_events.c.kind,
    chat_events.c.status,
    chat_events.c.refresh,
    chat_events.c.event,
)
_RANGE = (
    sa.select(*_COLUMNS)
    .where(
        chat_events.c.chat_id == sa.bindparam("chat_id"),
        chat_events.c.seq >= sa.bindparam("first", type_=sa.BigInteger),
        chat_events.c.seq <= sa.bindparam("last", type_=sa.BigInteger),
    )
    .order_by(chat_events.c.seq)
)
_OWNER_SINCE = (
    sa.select(*_COLUMNS)
    .where(
        chat_events.c.owner_id == sa.bindparam("owner_id"),
        chat_events.c.kind == WATCH,
        chat_events.c.created_at >= sa.bindparam("since"),
    )
    .order_by(chat_events.c.created_at, chat_events.c.chat_id, chat_events.c.seq)
)
_POSITION = sa.select(chats.c.stream_seq, chats.c.status, chats.c.worker_id).where(
    chats.c.id == sa.bindparam("chat_id")
)
_TRIM = chat_events.delete().where(chat_events.c.created_at < sa.bindparam("before"))


async def seal(conn: Connection, outbox: Outbox, now: dt.datetime) -> Outbox:
    """Number and log ``outbox``'s events in ``conn``'s transaction, and send their hints.

    Call it last in the transaction that made the change (a write transaction: never in
    autocommit), once per outbox (the chats' rows get locked here if they were not already, in
    id order). A chat that no longer exists logs nothing. Returns
    ``outbox``, whose :attr:`~Outbox.logged` the hub then publishes.
    """
    if outbox.sealed:
        raise ValueError("this outbox was sealed already")
    outbox.sealed = True
    by_chat: dict[uuid.UUID, _ChatEvents] = {}
    for event in outbox.stream:
        by_chat.setdefault(event.chat_id, _ChatEvents()).stream.append(event)
    for _owner, watch_event in outbox.watch:
        by_chat.setdefault(watch_event.chat.id, _ChatEvents()).watch.append(watch_event)
    # Each event's logged form, by identity: published in the outbox's order (stream events,
    # then watch events), numbered per chat in that order.
    logged: dict[int, LoggedEvent] = {}
    rows: list[dict[str, object]] = []
    for chat_id in sorted(by_chat):
        events = by_chat[chat_id]
        count = len(events.stream) + len(events.watch)
        bumped = (await conn.execute(_BUMP, {"chat_id": chat_id, "n": count})).first()
        if bumped is None:
            continue
        seq = bumped.stream_seq - count
        for event in events.stream:
            seq += 1
            event.seq = durable_seq(seq)
            refresh = outbox.history_refresh and event.type == "message"
            logged[id(event)] = _logged(chat_id, seq, bumped, STREAM, refresh, event)
        for watch_event in events.watch:
            seq += 1
            logged[id(watch_event)] = _logged(chat_id, seq, bumped, WATCH, False, watch_event)
        hint = {
            "c": chat_id.hex,
            "o": bumped.owner_id.hex,
            "f": bumped.stream_seq - count + 1,
            "l": bumped.stream_seq,
            "w": int(outbox.wake_workers),
        }
        if conn.origin is not None:
            hint["r"] = conn.origin.hex
        await notify(conn, CHANNEL, json.dumps(hint, separators=(",", ":")))
    for item in [*outbox.stream, *(w for _, w in outbox.watch)]:
        entry = logged.get(id(item))
        if entry is None:
            continue
        outbox.logged.append(entry)
        rows.append(
            {
                "chat_id": entry.chat_id,
                "seq": entry.seq,
                "owner_id": entry.owner_id,
                "kind": entry.kind,
                "status": entry.status,
                "refresh": entry.refresh,
                "event": entry.json,
                "created_at": now,
            }
        )
    if rows:
        await conn.execute(_INSERT, rows)
    if outbox.wake_workers and not by_chat:
        await wake_workers(conn)
    return outbox


async def wake_workers(conn: Connection) -> None:
    """Tell every replica's workers, when this transaction commits, to look for work now."""
    hint: dict[str, object] = {"w": 1}
    if conn.origin is not None:
        hint["r"] = conn.origin.hex
    await notify(conn, CHANNEL, json.dumps(hint, separators=(",", ":")))


def _logged(
    chat_id: uuid.UUID,
    seq: int,
    bumped: Row,
    kind: str,
    refresh: bool,
    event: ChatStreamEvent | ChatWatchEvent,
) -> LoggedEvent:
    return LoggedEvent(
        chat_id=chat_id,
        seq=seq,
        owner_id=bumped.owner_id,
        kind=kind,
        status=bumped.status,
        refresh=refresh,
        json=event.model_dump_json(),
        event=event,
    )


def parse_hint(payload: bytes) -> Hint | None:
    """The hint in a notification's payload; None (logged) for one that makes no sense."""
    try:
        data = json.loads(payload)
        chat = data.get("c")
        owner = data.get("o")
        origin = data.get("r")
        return Hint(
            chat_id=uuid.UUID(hex=chat) if chat else None,
            owner_id=uuid.UUID(hex=owner) if owner else None,
            first=int(data.get("f", 0)),
            last=int(data.get("l", 0)),
            origin=uuid.UUID(hex=origin) if origin else None,
            wake=bool(data.get("w")),
        )
    except (ValueError, TypeError, AttributeError):
        log.warning("an event hint could not be read", payload=payload[:200])
        return None


def _row_event(row: Row) -> LoggedEvent:
    return LoggedEvent(
        chat_id=row.chat_id,
        seq=row.seq,
        owner_id=row.owner_id,
        kind=row.kind,
        status=row.status,
        refresh=row.refresh,
        json=row.event,
    )


async def read_events(
    conn: Connection, chat_id: uuid.UUID, first: int, last: int
) -> list[LoggedEvent]:
    """The chat's logged events numbered ``first`` to ``last`` that are still kept, in order."""
    if last < first:
        return []
    result = await conn.execute(_RANGE, {"chat_id": chat_id, "first": first, "last": last})
    return [_row_event(row) for row in result]


async def read_owner_watch_events(
    conn: Connection, owner_id: uuid.UUID, since: dt.datetime
) -> list[LoggedEvent]:
    """The watch events of ``owner_id``'s chats logged since ``since`` (a resync after the
    hints may have been lost), oldest first per chat."""
    result = await conn.execute(_OWNER_SINCE, {"owner_id": owner_id, "since": since})
    return [_row_event(row) for row in result]


async def position(conn: Connection, chat_id: uuid.UUID) -> int:
    """The number of the chat's newest logged event (0: none, or no such chat)."""
    value = (await conn.execute(_POSITION, {"chat_id": chat_id})).scalar()
    return int(value or 0)


@dataclass(frozen=True, slots=True)
class Position:
    """Where a chat's stream stands: its newest logged event, and who runs its turn."""

    seq: int
    status: str | None
    worker_id: uuid.UUID | None


async def follow(conn: Connection, chat_id: uuid.UUID) -> Position:
    """The chat's :class:`Position` (0 and no status for no such chat)."""
    row = (await conn.execute(_POSITION, {"chat_id": chat_id})).first()
    if row is None:
        return Position(0, None, None)
    return Position(int(row.stream_seq), row.status, row.worker_id)


async def trim(conn: Connection, before: dt.datetime) -> int:
    """Forget the events logged before ``before``; returns how many."""
    result = await conn.execute(_TRIM, {"before": before})
    return result.rowcount
