"""The worker's side of the chat state machine (engine-behaviour §3, §4.3-4.4).

Claiming pending chats, heartbeats and the finishing transaction (stale recovery is
:mod:`chatd.store.recovery`). Each function runs in the caller's single ``db.write()``
transaction (:func:`finish`, which opens its own, aside). Claims are safe across replicas: on
PostgreSQL the candidate rows are locked with ``FOR UPDATE SKIP LOCKED``; on SQLite (where that
clause compiles to nothing) the writer lock taken by ``BEGIN IMMEDIATE`` serialises claimers.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Collection
from dataclasses import dataclass, field

import sqlalchemy as sa
from pydantic import JsonValue

from chatd.llm.types import ClassifiedError, ToolCallContent
from chatd.sdk.chats import Chat, ChatError, ChatErrorKind, ChatStatus
from chatd.sdk.events import (
    ChatStreamActionRequired,
    ChatStreamEvent,
    ChatStreamEventType,
    ChatStreamStatus,
    ChatStreamToolCall,
    ChatWatchEvent,
    ChatWatchEventKind,
)
from chatd.store import stream_log, subagents
from chatd.store.chats import CHAT_RETURNING, lock_chat
from chatd.store.db import Database
from chatd.store.outbox import Outbox
from chatd.store.sql import Connection, in_list
from chatd.store.tables import chats
from chatd.store.transition_steps import (
    Row,
    announce_status,
    error_json,
    promote_queue_head,
    set_status,
)
from chatd.store.turn_outcome import OutcomeKind, TurnOutcome

_FINAL_STATUS = {
    OutcomeKind.done: ChatStatus.waiting,
    OutcomeKind.interrupted: ChatStatus.waiting,
    OutcomeKind.shutdown: ChatStatus.pending,
    OutcomeKind.error: ChatStatus.error,
    OutcomeKind.requires_action: ChatStatus.requires_action,
}
_CLEAR_WORKER: dict[str, None] = {
    "worker_id": None,
    "started_at": None,
    "heartbeat_at": None,
    "awaiting_until": None,
}


@dataclass
class Finished:
    """What the finishing transaction did: the chat's status afterwards, and the events.

    ``status`` is None when the chat had been taken over by another worker (or is gone).
    """

    status: ChatStatus | None
    outbox: Outbox = field(default_factory=Outbox)
    # The chat row as the transaction wrote it (None when it wrote no status).
    chat: Row | None = None


_NOW = sa.bindparam("now", type_=chats.c.updated_at.type)
_PENDING = (
    sa.select(chats.c.id)
    .where(chats.c.status == ChatStatus.pending.value, chats.c.archived.is_(False))
    .order_by(chats.c.updated_at, chats.c.id)
    .limit(sa.bindparam("limit"))
    .with_for_update(skip_locked=True)
)


def _claim(candidates: sa.Select[tuple[uuid.UUID]]) -> sa.UpdateBase:
    return (
        chats.update()
        .where(chats.c.id.in_(candidates.scalar_subquery()))
        .values(
            status=ChatStatus.running.value,
            worker_id=sa.bindparam("me", type_=chats.c.worker_id.type),
            started_at=_NOW,
            heartbeat_at=_NOW,
            updated_at=_NOW,
            # The number announce_claims gives the claim's running status (its only event).
            turn_seq=chats.c.stream_seq + 1,
        )
        .returning(*CHAT_RETURNING)
    )


# Run on every acquire and heartbeat: built once (see chatd.store.chats).
_CLAIM = _claim(_PENDING)
_CLAIM_EXCLUDING = _claim(_PENDING.where(sa.not_(in_list(chats.c.id, "exclude"))))
_HEARTBEAT = (
    chats.update()
    .where(
        in_list(chats.c.id, "ids"),
        chats.c.worker_id == sa.bindparam("me"),
        chats.c.status == ChatStatus.running.value,
    )
    .values(heartbeat_at=_NOW)
    .returning(chats.c.id)
)


async def acquire_chats(
    conn: Connection,
    now: dt.datetime,
    worker_id: uuid.UUID,
    limit: int,
    *,
    exclude: Collection[uuid.UUID] = (),
) -> list[Row]:
    """T2: claim up to ``limit`` pending, unarchived chats, oldest ``updated_at`` first.

    Returns the claimed rows as they are now (with the owner fields, as ``get_chat_row``).
    ``exclude``: chats this worker is still finishing (never claimed twice by one worker).
    """
    params: dict[str, object] = {"limit": limit, "me": worker_id, "now": now}
    if exclude:
        params["exclude"] = list(exclude)
    rows = await conn.execute(_CLAIM_EXCLUDING if exclude else _CLAIM, params)
    return [row.as_dict() for row in rows]


async def announce_claims(conn: Connection, now: dt.datetime, rows: list[Row]) -> Outbox:
    """Log ``status: running`` for each claimed chat, in the claiming transaction (sealed);
    its worker publishes each when the turn starts. No watch event for running (§5.1).
    Each status is numbered as the claim's ``turn_seq``."""
    outbox = await _logged_statuses(conn, now, [row["id"] for row in rows], ChatStatus.running)
    turn_seqs = {row["id"]: row["turn_seq"] for row in rows}
    assert all(turn_seqs[e.chat_id] == e.seq for e in outbox.logged), "claims are numbered"
    return outbox


async def _logged_statuses(
    conn: Connection, now: dt.datetime, chat_ids: list[uuid.UUID], status: ChatStatus
) -> Outbox:
    """A stream ``status`` event per chat, sealed."""
    outbox = Outbox(
        stream=[
            ChatStreamEvent(
                type=ChatStreamEventType.status,
                chat_id=chat_id,
                status=ChatStreamStatus(status=status),
            )
            for chat_id in chat_ids
        ]
    )
    return await stream_log.seal(conn, outbox, now)


async def heartbeat(
    conn: Connection, now: dt.datetime, worker_id: uuid.UUID, chat_ids: Collection[uuid.UUID]
) -> set[uuid.UUID]:
    """Stamp the chats this worker still owns and runs; returns exactly those ids (§4.4)."""
    if not chat_ids:
        return set()
    params = {"ids": list(chat_ids), "me": worker_id, "now": now}
    return {r.id for r in await conn.execute(_HEARTBEAT, params)}


async def release_to_pending(
    conn: Connection, now: dt.datetime, chat_ids: Collection[uuid.UUID], worker_id: uuid.UUID
) -> tuple[set[uuid.UUID], Outbox]:
    """Give back chats claimed during shutdown that never started (§4.3); returns them.

    Their claim logged ``running``, so ``pending`` is logged too (sealed here); the worker
    publishes it. ``updated_at`` is left as the claim set it.
    """
    if not chat_ids:
        return set(), Outbox()
    rows = await conn.execute(
        chats.update()
        .where(
            chats.c.id.in_(list(chat_ids)),
            chats.c.worker_id == worker_id,
            chats.c.status == ChatStatus.running.value,
        )
        .values(status=ChatStatus.pending.value, **_CLEAR_WORKER)
        .returning(chats.c.id)
    )
    released = {r.id for r in rows}
    return released, await _logged_statuses(conn, now, sorted(released), ChatStatus.pending)


async def finish(
    db: Database,
    now: dt.datetime,
    chat_id: uuid.UUID,
    worker_id: uuid.UUID,
    outcome: TurnOutcome,
) -> Finished:
    """End a turn in one transaction: :func:`finish_running_turn`, else the finishing
    transaction's guards (a turn waiting for sub-agents: :func:`park_turn`); its events are
    logged (the outbox comes back sealed)."""
    return await db.run_write(_finish, now, chat_id, worker_id, outcome)


async def _finish(
    conn: Connection,
    now: dt.datetime,
    chat_id: uuid.UUID,
    worker_id: uuid.UUID,
    outcome: TurnOutcome,
) -> Finished:
    if outcome.kind == OutcomeKind.awaiting:
        finished = await park_turn(conn, now, chat_id, worker_id, outcome)
    else:
        fast = await finish_running_turn(conn, now, chat_id, worker_id, outcome)
        finished = fast or await finish_turn(conn, now, chat_id, worker_id, outcome)
    await stream_log.seal(conn, finished.outbox, now)
    return finished


# The finishing write of a turn that still runs on this worker, in one statement (see
# ``finish_running_turn``): the guard reads only the chat's own row, so a writer holding the
# lock meanwhile (a send queueing a message bumps queue_length) is seen once it commits.
_FINISH_RUNNING = (
    chats.update()
    .where(
        chats.c.id == sa.bindparam("chat_id"),
        chats.c.status == ChatStatus.running.value,
        chats.c.worker_id == sa.bindparam("me", type_=chats.c.worker_id.type),
        sa.or_(chats.c.queue_length == 0, sa.bindparam("keeps_queue", type_=sa.Boolean)),
    )
    .values(
        status=sa.bindparam("final", type_=chats.c.status.type),
        last_error=sa.bindparam("last_error", type_=chats.c.last_error.type),
        updated_at=_NOW,
        **_CLEAR_WORKER,
    )
    .returning(*CHAT_RETURNING)
)


async def finish_running_turn(
    conn: Connection,
    now: dt.datetime,
    chat_id: uuid.UUID,
    worker_id: uuid.UUID,
    outcome: TurnOutcome,
) -> Finished | None:
    """The common case of :func:`finish_turn` as one statement.

    It applies while the chat is still ``running`` on this worker and, when the turn ends
    waiting, its queue is empty (nothing to promote). Otherwise nothing is written and it
    returns None: :func:`finish_turn` then decides.
    """
    final = _FINAL_STATUS[outcome.kind]
    error = _chat_error(outcome.error) if outcome.kind == OutcomeKind.error else None
    params = {
        "chat_id": chat_id,
        "me": worker_id,
        "keeps_queue": final != ChatStatus.waiting,
        "final": final.value,
        "last_error": error_json(error) if error is not None else None,
        "now": now,
    }
    row = (await conn.execute(_FINISH_RUNNING, params)).first()
    if row is None:
        return None
    outbox = Outbox()
    if error is not None:
        outbox.stream.append(
            ChatStreamEvent(type=ChatStreamEventType.error, chat_id=chat_id, error=error)
        )
    return _announce_final(outbox, row.as_dict(), final, outcome)


async def finish_turn(
    conn: Connection,
    now: dt.datetime,
    chat_id: uuid.UUID,
    worker_id: uuid.UUID,
    outcome: TurnOutcome,
) -> Finished:
    """The finishing transaction with the guards of engine-behaviour §3.2 (T3-T8).

    The events, in order: ``error`` (error outcome), the promoted ``message`` and the remaining
    ``queue_update`` (auto-promotion), ``status`` + watch ``status_change`` (only when the status
    changed), then ``action_required`` on the stream and the watch (requires_action).
    """
    row = await lock_chat(conn, chat_id)
    if row is None:
        return Finished(status=None)
    status = ChatStatus(row["status"])
    if status == ChatStatus.running and row["worker_id"] != worker_id:
        return Finished(status=None)  # taken over: not ours to write or publish
    if status not in (ChatStatus.running, ChatStatus.waiting):
        # An edit, promote or new message won (pending), or some other writer moved the chat
        # on: keep its status, only let go of the worker fields.
        await conn.execute(chats.update().where(chats.c.id == chat_id).values(**_CLEAR_WORKER))
        return Finished(status=status)

    outbox = Outbox()
    last_error: dict[str, JsonValue] | None = None
    if status == ChatStatus.waiting:
        final = ChatStatus.waiting  # interrupted: partial output is kept, the chat waits
    else:
        final = _FINAL_STATUS[outcome.kind]
        if outcome.kind == OutcomeKind.error:
            error = _chat_error(outcome.error)
            last_error = error_json(error)
            outbox.stream.append(
                ChatStreamEvent(type=ChatStreamEventType.error, chat_id=chat_id, error=error)
            )
    if final == ChatStatus.waiting and not row["archived"]:
        if await promote_queue_head(conn, now, row, outbox):
            final = ChatStatus.pending
    if final != status:
        written = await set_status(conn, now, chat_id, final, last_error)
        return _announce_final(outbox, written, final, outcome)
    await conn.execute(chats.update().where(chats.c.id == chat_id).values(**_CLEAR_WORKER))
    return Finished(status=final, outbox=outbox)


async def park_turn(
    conn: Connection,
    now: dt.datetime,
    chat_id: uuid.UUID,
    worker_id: uuid.UUID,
    outcome: TurnOutcome,
) -> Finished:
    """Let go of a turn that waits for its sub-agents (:mod:`chatd.store.subagents`).

    The chat stays ``running`` without a worker until ``outcome.awaiting_until``; or, when a
    chat it waits for is done already (it finished between the wait's look and this lock),
    goes straight back to pending. Neither is announced: the status its clients know stays
    ``running``. A chat no longer running here (interrupted, edited) finishes as an
    interrupted turn would.
    """
    row = await lock_chat(conn, chat_id)
    if row is None:
        return Finished(status=None)
    if row["status"] != ChatStatus.running:
        return await finish_turn(
            conn, now, chat_id, worker_id, TurnOutcome(OutcomeKind.interrupted)
        )
    if row["worker_id"] != worker_id:
        return Finished(status=None)
    values: dict[str, object] = {**_CLEAR_WORKER, "updated_at": now}
    if await subagents.any_settled(conn, outcome.awaited):
        values["status"] = ChatStatus.pending.value
        await conn.execute(chats.update().where(chats.c.id == chat_id).values(**values))
        return Finished(status=ChatStatus.pending, outbox=Outbox(wake_workers=True))
    values["awaiting_until"] = outcome.awaiting_until
    await conn.execute(chats.update().where(chats.c.id == chat_id).values(**values))
    return Finished(status=ChatStatus.running)


def _announce_final(
    outbox: Outbox, written: Row, final: ChatStatus, outcome: TurnOutcome
) -> Finished:
    """The new status on the stream and the watch, then any pending client-side calls."""
    chat = announce_status(outbox, written)
    if final == ChatStatus.requires_action:
        _action_required(outbox, chat, outcome.tool_calls)
    return Finished(status=final, outbox=outbox, chat=written)


def _action_required(outbox: Outbox, chat: Chat, calls: list[ToolCallContent]) -> None:
    """§11: the pending client-side calls, args as JSON text, on the stream and the watch."""
    tool_calls = [
        ChatStreamToolCall(tool_call_id=c.id, tool_name=c.name, args=c.args_json) for c in calls
    ]
    outbox.stream.append(
        ChatStreamEvent(
            type=ChatStreamEventType.action_required,
            chat_id=chat.id,
            action_required=ChatStreamActionRequired(tool_calls=tool_calls),
        )
    )
    outbox.watch.append(
        (
            chat.owner_id,
            ChatWatchEvent(
                kind=ChatWatchEventKind.action_required, chat=chat, tool_calls=tool_calls
            ),
        )
    )


def _chat_error(error: ClassifiedError | None) -> ChatError:
    if error is None:
        return ChatError(message="chat processing failed", kind=ChatErrorKind.generic)
    return ChatError(
        message=error.message,
        detail=error.detail or None,
        kind=error.kind,
        provider=error.provider,
        retryable=error.retryable,
        status_code=error.status_code,
    )
