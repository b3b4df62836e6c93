"""Stale recovery (engine-behaviour §4.5): what a worker that died left behind.

Three rules, each re-checked under the chat's row lock in the caller's ``db.write()``
transaction, so two replicas recovering at once change a chat only once:

* ``running`` whose heartbeat is older than ``stale_after``: its worker is gone; back to
  ``pending`` (T9) for any worker to claim. The claimed turn starts from what was committed
  (:mod:`chatd.engine.resume`), so a turn whose last step was saved is not run again.
* ``requires_action`` the client has not answered for ``stale_after``: synthetic error results
  and ``error`` (T13).
* ``waiting`` with queued messages, unchanged for ``stale_after`` and held by no live worker:
  the finish that should have promoted the queue head never ran (a worker died between an
  interrupt, or a promote while running, and its finishing transaction). The head is promoted
  as that finish would have (T4) and the chat goes ``pending``.

The third rule's wait: every write that leaves a running chat ``waiting`` (interrupt,
``busy_behavior: interrupt``, promote while running, archive) sets ``updated_at``, and its
worker hears of it at once on the control channel, at the latest at its next heartbeat, and
then finishes. ``stale_after`` is the interval after which a silent worker counts as dead for
running chats too (it is far above the heartbeat interval), so a chat still waiting with its
queue after it has no finish coming. ``worker_id``, cleared by those writes, is otherwise only
the title-regeneration mark, whose ``heartbeat_at`` must be as old. Chats that end ``error``
keep their queue on purpose (a failing turn does not promote; §3.2), and archived ones wait to
be unarchived; neither is touched.

A fourth rule wakes a turn parked waiting for its sub-agents once its wait is over, or once
a child settled after it parked (the child's own wake was lost with its replica); see
:mod:`chatd.store.subagents`. A parked turn is ``running`` without a heartbeat, and is never
taken for one whose worker died.

Unlike the reference, which publishes nothing here, every change is published (stream
``status``, watch ``status_change``, the ``message`` and ``queue_update`` events) so connected
clients are not left stale.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa

from chatd.sdk.chats import ChatError, ChatErrorKind, ChatStatus
from chatd.store import subagents
from chatd.store.chats import lock_chat
from chatd.store.outbox import Outbox
from chatd.store.sql import Connection
from chatd.store.tables import chats
from chatd.store.tool_calls import interrupt_pending_calls
from chatd.store.transition_steps import (
    Row,
    announce_status,
    error_json,
    message_event,
    promote_queue_head,
    set_status,
)

DYNAMIC_TOOL_TIMEOUT = "Dynamic tool execution timed out"

_THRESHOLD = sa.bindparam("threshold", type_=chats.c.updated_at.type)
_OLDEST_FIRST = (chats.c.updated_at, chats.c.id)
_IN_FLIGHT = (
    sa.select(chats.c.id)
    .where(
        sa.or_(
            sa.and_(
                chats.c.status == ChatStatus.running.value,
                chats.c.awaiting_until.is_(None),  # a parked turn has no worker to lose
                sa.or_(chats.c.heartbeat_at.is_(None), chats.c.heartbeat_at < _THRESHOLD),
            ),
            sa.and_(
                chats.c.status == ChatStatus.requires_action.value,
                chats.c.updated_at < _THRESHOLD,
            ),
        )
    )
    .order_by(*_OLDEST_FIRST)
)
# Its own statement, read through the partial index ix_chats_queued: as a third arm of the one
# above, the planners walk every waiting chat (~45 ms at 100,000 chats on SQLite, on the event
# loop, every recovery tick). The literal 0 lets SQLite match the index's WHERE.
_QUEUE_LEFT_BEHIND = (
    sa.select(chats.c.id)
    .where(
        chats.c.queue_length > sa.literal_column("0"),
        chats.c.status == ChatStatus.waiting.value,
        chats.c.archived.is_(False),
        chats.c.updated_at < _THRESHOLD,
        sa.or_(
            chats.c.worker_id.is_(None),
            chats.c.heartbeat_at.is_(None),
            chats.c.heartbeat_at < _THRESHOLD,
        ),
    )
    .order_by(*_OLDEST_FIRST)
)


async def recover_stale(conn: Connection, now: dt.datetime, stale_after: float) -> Outbox:
    """Apply the rules (module docstring) to every chat they find; returns the events."""
    threshold = now - dt.timedelta(seconds=stale_after)
    params = {"threshold": threshold}
    outbox = Outbox()
    for (chat_id,) in (await conn.execute(_IN_FLIGHT, params)).all():
        row = await lock_chat(conn, chat_id)
        if row is None:
            continue
        if (
            row["status"] == ChatStatus.running
            and row["awaiting_until"] is None
            and _older(row["heartbeat_at"], threshold)
        ):
            announce_status(outbox, await set_status(conn, now, chat_id, ChatStatus.pending))
            outbox.wake_workers = True
        elif row["status"] == ChatStatus.requires_action and row["updated_at"] < threshold:
            await _time_out_tool_calls(conn, now, row, outbox)
    for (chat_id,) in (await conn.execute(_QUEUE_LEFT_BEHIND, params)).all():
        row = await lock_chat(conn, chat_id)
        if row is not None and queue_left_behind(row, threshold):
            await _promote_left_behind(conn, now, row, outbox)
    if await subagents.wake_due(conn, now):
        outbox.wake_workers = True
    return outbox


def queue_left_behind(row: Row, threshold: dt.datetime) -> bool:
    """The third rule, on the locked row: waiting with a queue no finish is coming for."""
    return (
        row["status"] == ChatStatus.waiting
        and not row["archived"]
        and row["queue_length"] > 0
        and row["updated_at"] < threshold
        and (row["worker_id"] is None or _older(row["heartbeat_at"], threshold))
    )


async def _time_out_tool_calls(
    conn: Connection, now: dt.datetime, row: Row, outbox: Outbox
) -> None:
    synthetic = await interrupt_pending_calls(conn, now, row, DYNAMIC_TOOL_TIMEOUT)
    outbox.stream.extend(message_event(m) for m in synthetic)
    error = ChatError(message=DYNAMIC_TOOL_TIMEOUT, kind=ChatErrorKind.generic, retryable=False)
    written = await set_status(conn, now, row["id"], ChatStatus.error, error_json(error))
    announce_status(outbox, written)


async def _promote_left_behind(
    conn: Connection, now: dt.datetime, row: Row, outbox: Outbox
) -> None:
    """As the lost finish would have: the head becomes the owner's message, the chat pending."""
    if await promote_queue_head(conn, now, row, outbox):
        announce_status(outbox, await set_status(conn, now, row["id"], ChatStatus.pending))


def _older(stamp: dt.datetime | None, threshold: dt.datetime) -> bool:
    return stamp is None or stamp < threshold
