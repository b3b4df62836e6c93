"""Title and turn-summary writes, and the manual title-regeneration lock (engine-behaviour §15).

A manual regeneration marks the chat by setting ``worker_id`` to a sentinel id, with the time
it took the mark in ``heartbeat_at``; ``updated_at`` is never touched. The mark counts for one
minute. Any status transition clears the worker fields, and with them the mark.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from chatd.sdk.chats import Chat, ChatStatus
from chatd.sdk.events import ChatWatchEvent, ChatWatchEventKind
from chatd.store import convert, stream_log
from chatd.store.chats import UPDATE_CHAT_RETURNING, get_chat_row, lock_chat
from chatd.store.messages import VISIBLE
from chatd.store.outbox import Outbox
from chatd.store.sql import Connection, Row, RowDict
from chatd.store.subagents import is_parked
from chatd.store.tables import chat_messages, chats
from chatd.store.transition_steps import ChatNotFound

REGENERATION_WORKER_ID = uuid.UUID("00000000-0000-0000-0000-000000000001")
REGENERATION_LOCK_TTL = dt.timedelta(minutes=1)


class TitleRegenerationBusy(Exception):
    """Another regeneration holds the chat, or a turn is about to start or has no worker."""


@dataclass(frozen=True)
class RegenerationLock:
    """What a regeneration saw when it started: the title to compare-and-set against, and the
    time of its mark (``None`` when a running chat's worker made a mark unnecessary)."""

    chat_id: uuid.UUID
    title: str
    locked_at: dt.datetime | None


def regeneration_locked(row: RowDict, now: dt.datetime) -> bool:
    """A manual regeneration marked the chat less than a minute ago."""
    marked_at = row["heartbeat_at"]
    return (
        row["worker_id"] == REGENERATION_WORKER_ID
        and marked_at is not None
        and now - marked_at < REGENERATION_LOCK_TTL
    )


def regeneration_blocked(row: RowDict, now: dt.datetime) -> bool:
    """Pending, running without a real worker (a turn parked for its sub-agents has none, and
    is let through as a running one is), or freshly marked by another regeneration."""
    if row["status"] == ChatStatus.pending:
        return True
    markless = row["worker_id"] in (None, REGENERATION_WORKER_ID) and not is_parked(row)
    if row["status"] == ChatStatus.running and markless:
        return True
    return regeneration_locked(row, now)


async def check_regeneration(conn: Connection, now: dt.datetime, chat_id: uuid.UUID) -> Chat:
    """The refusals of a regeneration without taking the mark (title proposals)."""
    row = await get_chat_row(conn, chat_id)
    if row is None:
        raise ChatNotFound(str(chat_id))
    if regeneration_blocked(row, now):
        raise TitleRegenerationBusy(str(chat_id))
    return convert.chat(row)


async def lock_for_regeneration(
    conn: Connection, now: dt.datetime, chat_id: uuid.UUID
) -> RegenerationLock:
    """Take the regeneration mark (a chat running on a real worker needs none)."""
    row = await lock_chat(conn, chat_id)
    if row is None:
        raise ChatNotFound(str(chat_id))
    if regeneration_blocked(row, now):
        raise TitleRegenerationBusy(str(chat_id))
    if row["status"] == ChatStatus.running:
        return RegenerationLock(chat_id, row["title"], None)
    await conn.execute(
        chats.update()
        .where(chats.c.id == chat_id)
        .values(worker_id=REGENERATION_WORKER_ID, heartbeat_at=now)
    )
    return RegenerationLock(chat_id, row["title"], now)


async def finish_regeneration(
    conn: Connection, lock: RegenerationLock, title: str | None
) -> tuple[Chat, Outbox]:
    """Release our mark and, when ``title`` is new and nobody renamed the chat meanwhile,
    write it (watch ``title_change``). ``None`` only releases (generation failed)."""
    row = await lock_chat(conn, lock.chat_id)
    if row is None:
        raise ChatNotFound(str(lock.chat_id))
    values: dict[str, object] = {}
    ours = lock.locked_at is not None and row["heartbeat_at"] == lock.locked_at
    if row["worker_id"] == REGENERATION_WORKER_ID and ours:
        values.update(worker_id=None, heartbeat_at=None)
    renamed = title is not None and title != row["title"] and row["title"] == lock.title
    if renamed:
        values["title"] = title
    if values:
        await conn.execute(chats.update().where(chats.c.id == lock.chat_id).values(**values))
    after = await get_chat_row(conn, lock.chat_id)
    assert after is not None  # locked by this transaction
    chat = convert.chat(after)
    outbox = Outbox()
    if renamed:
        outbox.watch.append(
            (chat.owner_id, ChatWatchEvent(kind=ChatWatchEventKind.title_change, chat=chat))
        )
    return chat, outbox


async def set_title_if_unchanged(
    conn: Connection, now: dt.datetime, chat_id: uuid.UUID, expected: str, title: str
) -> Outbox:
    """Compare-and-set an automatic title (``updated_at`` untouched); watch ``title_change``
    (sealed)."""
    if title == expected:
        return Outbox()
    result = await conn.execute(_SET_TITLE, {"chat_key": chat_id, "new": title, "old": expected})
    outbox = _watch(result.first(), ChatWatchEventKind.title_change)
    return await stream_log.seal(conn, outbox, now)


async def set_turn_summary(
    conn: Connection, now: dt.datetime, chat_id: uuid.UUID, summary: str
) -> Outbox:
    """Store ``last_turn_summary`` (blank clears it, ``updated_at`` untouched); watch
    ``summary_change`` when it changed (sealed)."""
    value = summary.strip() or None
    result = await conn.execute(_SET_SUMMARY, {"chat_key": chat_id, "summary": value})
    outbox = _watch(result.first(), ChatWatchEventKind.summary_change)
    return await stream_log.seal(conn, outbox, now)


def _watch(written: Row | None, kind: ChatWatchEventKind) -> Outbox:
    """A watch event for the row an UPDATE ... RETURNING wrote (none when it matched none)."""
    if written is None:
        return Outbox()
    chat = convert.chat(written.as_dict())
    return Outbox(watch=[(chat.owner_id, ChatWatchEvent(kind=kind, chat=chat))])


# Run around every turn (title check, turn summary): built once (see chatd.store.chats).
# Each change is one statement: the UPDATE matches only when there is something to change.
_SET_TITLE = UPDATE_CHAT_RETURNING.values(title=sa.bindparam("new")).where(
    chats.c.title == sa.bindparam("old")
)
_SET_SUMMARY = UPDATE_CHAT_RETURNING.values(last_turn_summary=sa.bindparam("summary")).where(
    chats.c.last_turn_summary.is_distinct_from(sa.bindparam("summary"))
)
_VISIBLE_OF_CHAT = sa.select(chat_messages).where(
    chat_messages.c.chat_id == sa.bindparam("chat_id"), VISIBLE
)
_FIRST_VISIBLE = _VISIBLE_OF_CHAT.order_by(chat_messages.c.id).limit(sa.bindparam("limit"))
_LAST_VISIBLE = _VISIBLE_OF_CHAT.order_by(chat_messages.c.id.desc()).limit(sa.bindparam("limit"))


async def first_visible_messages(conn: Connection, chat_id: uuid.UUID, limit: int) -> list[RowDict]:
    """The oldest ``limit`` messages a user sees, oldest first."""
    rows = await conn.execute(_FIRST_VISIBLE, {"chat_id": chat_id, "limit": limit})
    return [r.as_dict() for r in rows]


async def last_visible_messages(conn: Connection, chat_id: uuid.UUID, limit: int) -> list[RowDict]:
    """The newest ``limit`` messages a user sees, oldest first."""
    rows = await conn.execute(_LAST_VISIBLE, {"chat_id": chat_id, "limit": limit})
    return [r.as_dict() for r in reversed(rows.all())]


async def title_window(conn: Connection, chat_id: uuid.UUID, edge: int) -> list[RowDict]:
    """The first and the last ``edge`` visible messages, merged, oldest first."""
    merged = {r["id"]: r for r in await first_visible_messages(conn, chat_id, edge)}
    merged.update((r["id"], r) for r in await last_visible_messages(conn, chat_id, edge))
    return [merged[k] for k in sorted(merged)]
