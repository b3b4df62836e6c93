"""Sub-agent chats in the store (engine-behaviour §16): a root's children, what they have used
of the root's caps, a child's report, and waking a root whose turn is parked waiting for them.

A root's turn that waits for a child which is still working does not keep its worker: the
finishing write parks it (:func:`chatd.store.worker_state.park_turn`): the chat stays
``running`` with no worker and ``awaiting_until`` set to when the wait gives up. It becomes
``pending`` again (no event: its clients saw ``running`` and see it again on the next claim)
when a child's turn ends (:func:`wake_parent`, right after the child's finish), or when
stale recovery finds it due (:func:`wake_due`: the time has come, or a child settled since
the park and its wake was missed). The resumed turn asks again.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection, Mapping
from typing import Any

import sqlalchemy as sa

from chatd.sdk.chats import ChatStatus
from chatd.store import stream_log
from chatd.store.chats import get_chat_row
from chatd.store.sql import Connection
from chatd.store.tables import chat_messages, chat_queued_messages, chats

Row = Mapping[Any, Any]

# A child is still working in these (§16), or while it waits with a queue: an interrupting
# message sits there until the interrupted turn's finish promotes it.
WORKING = (ChatStatus.pending.value, ChatStatus.running.value)
# A child counts against the cap on live children in these.
LIVE = (*WORKING, ChatStatus.requires_action.value)

_PARKED = sa.and_(
    chats.c.awaiting_until.is_not(None),
    chats.c.status == ChatStatus.running.value,
    chats.c.worker_id.is_(None),
    chats.c.archived.is_(False),
)
_WAKE = {"status": ChatStatus.pending.value, "awaiting_until": None}


def _working(table: sa.FromClause) -> sa.ColumnElement[bool]:
    return sa.or_(
        table.c.status.in_(WORKING),
        sa.and_(table.c.status == ChatStatus.waiting.value, table.c.queue_length > 0),
    )


def is_working(row: Row) -> bool:
    """The chat has work to do: a turn pending or running, or a queue its finish promotes."""
    return row["status"] in WORKING or (
        row["status"] == ChatStatus.waiting and row["queue_length"] > 0
    )


async def _scalar(conn: Connection, statement: sa.Select[Any]) -> Any:
    return (await conn.execute(statement)).scalar()


def is_parked(row: Row) -> bool:
    """The chat's turn is parked waiting for its sub-agents (see the module docstring)."""
    return (
        row["status"] == ChatStatus.running
        and row["worker_id"] is None
        and row["awaiting_until"] is not None
    )


def root_of(row: Row) -> uuid.UUID:
    """The id of the chat's family root."""
    root: uuid.UUID = row["root_chat_id"] or row["parent_chat_id"] or row["id"]
    return root


async def family_child(conn: Connection, root_id: uuid.UUID, child_id: uuid.UUID) -> Row | None:
    """The chat ``child_id`` when it descends from ``root_id`` (else None)."""
    row = await get_chat_row(conn, child_id)
    if row is None or row["id"] == root_id or root_of(row) != root_id:
        return None
    return row


async def live_children(conn: Connection, root_id: uuid.UUID) -> int:
    """The root's unarchived children that are working or waiting for a client."""
    count = await _scalar(
        conn,
        sa.select(sa.func.count())
        .select_from(chats)
        .where(
            chats.c.root_chat_id == root_id,
            chats.c.status.in_(LIVE),
            chats.c.archived.is_(False),
        ),
    )
    return int(count or 0)


async def child_turns(conn: Connection, root_id: uuid.UUID) -> int:
    """The turns asked of the root's children: their users' messages, sent and queued."""
    family = sa.select(chats.c.id).where(chats.c.root_chat_id == root_id).scalar_subquery()
    sent = await _scalar(
        conn,
        sa.select(sa.func.count())
        .select_from(chat_messages)
        .where(
            chat_messages.c.chat_id.in_(family),
            chat_messages.c.role == "user",
            chat_messages.c.created_by.is_not(None),
            chat_messages.c.deleted.is_(False),
        ),
    )
    queued = await _scalar(
        conn,
        sa.select(sa.func.count())
        .select_from(chat_queued_messages)
        .where(chat_queued_messages.c.chat_id.in_(family)),
    )
    return int(sent or 0) + int(queued or 0)


async def report(conn: Connection, child_id: uuid.UUID) -> str:
    """The text of the child's newest assistant message a user can see ("" when none)."""
    content = await _scalar(
        conn,
        sa.select(chat_messages.c.content)
        .where(
            chat_messages.c.chat_id == child_id,
            chat_messages.c.role == "assistant",
            chat_messages.c.visibility != "model",
            chat_messages.c.deleted.is_(False),
        )
        .order_by(chat_messages.c.id.desc())
        .limit(1),
    )
    parts = content if isinstance(content, list) else []
    texts = (
        str(p.get("text") or "").strip()
        for p in parts
        if isinstance(p, dict) and p.get("type") == "text"
    )
    return "\n\n".join(t for t in texts if t)


async def any_settled(conn: Connection, child_ids: Collection[uuid.UUID]) -> bool:
    """Whether any of these chats is no longer working (or is gone or archived)."""
    if not child_ids:
        return False
    working = await _scalar(
        conn,
        sa.select(sa.func.count())
        .select_from(chats)
        .where(
            chats.c.id.in_(list(child_ids)),
            _working(chats),
            chats.c.archived.is_(False),
        ),
    )
    return int(working or 0) < len(set(child_ids))


async def wake_parent(conn: Connection, now: dt.datetime, parent_id: uuid.UUID) -> bool:
    """Make the parent pending again if its turn is parked; whether it was."""
    result = await conn.execute(
        chats.update()
        .where(chats.c.id == parent_id, _PARKED)
        .values(**_WAKE, updated_at=now)
        .returning(chats.c.id)
    )
    woken = result.first() is not None
    if woken:
        await stream_log.wake_workers(conn)
    return woken


async def wake_due(conn: Connection, now: dt.datetime) -> list[uuid.UUID]:
    """Wake every parked chat whose wait is over, or one of whose children settled after it
    parked (a wake that was missed: its replica died between the child's finish and it)."""
    child = chats.alias("child")
    settled_since = (
        sa.exists()
        .where(
            child.c.parent_chat_id == chats.c.id,
            sa.not_(_working(child)),
            child.c.updated_at >= chats.c.updated_at,
        )
        .correlate(chats)
    )
    result = await conn.execute(
        chats.update()
        .where(_PARKED, sa.or_(chats.c.awaiting_until <= now, settled_since))
        .values(**_WAKE, updated_at=now)
        .returning(chats.c.id)
    )
    return [row.id for row in result]
