"""The writes behind ``PATCH /chats/{chat}``: one function, one transaction, chat row locked first.

Each function re-checks under the lock that its change still applies and raises
:class:`ChatUpdateRejected` (nothing written) when it does not; the API maps the reason to
the reference's answer.
"""

from __future__ import annotations

import datetime as dt
import uuid
from enum import StrEnum

import sqlalchemy as sa

from chatd.sdk.chats import ChatStatus
from chatd.sdk.events import (
    ChatStreamEvent,
    ChatStreamEventType,
    ChatStreamStatus,
    ChatWatchEvent,
    ChatWatchEventKind,
)
from chatd.store import convert, stream_log
from chatd.store.chats import CHAT_WITH_OWNER, get_chat_row, lock_chat
from chatd.store.outbox import Outbox
from chatd.store.sql import Connection, RowDict
from chatd.store.tables import chats
from chatd.store.titles import regeneration_locked

# Statuses an archive stops (engine-behaviour T17).
_STOPPED_BY_ARCHIVE = (ChatStatus.pending.value, ChatStatus.running.value)


class Rejection(StrEnum):
    not_found = "not_found"
    already_archived = "already_archived"
    already_unarchived = "already_unarchived"
    parent_archived = "parent_archived"
    pin_archived = "pin_archived"
    pin_child = "pin_child"
    title_regenerating = "title_regenerating"


class ChatUpdateRejected(Exception):
    def __init__(self, reason: Rejection) -> None:
        super().__init__(reason.value)
        self.reason = reason


async def _locked(conn: Connection, chat_id: uuid.UUID) -> RowDict:
    row = await lock_chat(conn, chat_id)
    if row is None:
        raise ChatUpdateRejected(Rejection.not_found)
    return row


async def rename_chat(conn: Connection, now: dt.datetime, chat_id: uuid.UUID, title: str) -> Outbox:
    """Set the title (``updated_at`` untouched); watch ``title_change`` when it changed.

    Refused while a manual title regeneration holds the chat."""
    row = await _locked(conn, chat_id)
    outbox = Outbox()
    if row["title"] == title:
        return outbox
    if regeneration_locked(row, now):
        raise ChatUpdateRejected(Rejection.title_regenerating)
    await conn.execute(chats.update().where(chats.c.id == chat_id).values(title=title))
    renamed = await get_chat_row(conn, chat_id)
    assert renamed is not None
    event = ChatWatchEvent(kind=ChatWatchEventKind.title_change, chat=convert.chat(renamed))
    outbox.watch.append((row["owner_id"], event))
    return outbox


async def set_labels(
    conn: Connection, now: dt.datetime, chat_id: uuid.UUID, labels: dict[str, str]
) -> None:
    """Replace the whole labels map and bump ``updated_at``."""
    await _locked(conn, chat_id)
    await conn.execute(
        chats.update().where(chats.c.id == chat_id).values(labels=labels, updated_at=now)
    )


async def set_archived(
    conn: Connection, now: dt.datetime, chat_id: uuid.UUID, archived: bool
) -> Outbox:
    """Archive or unarchive the chat and every chat whose root it is.

    Archiving unpins the family and moves members that were pending or running to waiting
    (stream ``status`` and watch ``status_change``), then publishes watch ``deleted`` for each
    member; unarchiving publishes watch ``created`` for each. The pin is not restored.
    """
    row = await _locked(conn, chat_id)
    if row["archived"] == archived:
        raise ChatUpdateRejected(
            Rejection.already_archived if archived else Rejection.already_unarchived
        )
    if not archived and row["parent_chat_id"] is not None:
        parent = await get_chat_row(conn, row["parent_chat_id"])
        if parent is not None and parent["archived"]:
            raise ChatUpdateRejected(Rejection.parent_archived)

    family = sa.or_(chats.c.id == chat_id, chats.c.root_chat_id == chat_id)
    members = (
        await conn.execute(sa.select(chats.c.id, chats.c.status).where(family).with_for_update())
    ).all()
    stopped = [m.id for m in members if archived and m.status in _STOPPED_BY_ARCHIVE]
    if stopped:
        await conn.execute(
            chats.update()
            .where(chats.c.id.in_(stopped))
            .values(
                status=ChatStatus.waiting.value,
                worker_id=None,
                started_at=None,
                heartbeat_at=None,
                awaiting_until=None,
                last_error=None,
                updated_at=now,
            )
        )
    values: dict[str, object] = {"archived": archived, "updated_at": now}
    if archived:
        values["pin_order"] = 0
    await conn.execute(chats.update().where(family).values(**values))

    rows = (
        await conn.execute(CHAT_WITH_OWNER.where(family).order_by(chats.c.created_at, chats.c.id))
    ).all()
    # The chat itself first, then the rest of its family.
    after = sorted((convert.chat(r.as_dict()) for r in rows), key=lambda c: c.id != chat_id)
    outbox = Outbox()
    for chat in after:
        if chat.id in stopped:
            outbox.add_status(
                ChatStreamEvent(
                    type=ChatStreamEventType.status,
                    chat_id=chat.id,
                    status=ChatStreamStatus(status=ChatStatus.waiting),
                )
            )
            outbox.watch.append(
                (chat.owner_id, ChatWatchEvent(kind=ChatWatchEventKind.status_change, chat=chat))
            )
    kind = ChatWatchEventKind.deleted if archived else ChatWatchEventKind.created
    outbox.watch.extend((chat.owner_id, ChatWatchEvent(kind=kind, chat=chat)) for chat in after)
    return outbox


async def set_pin_order(conn: Connection, chat_id: uuid.UUID, pin_order: int) -> None:
    """Pin, move or unpin; the owner's pinned chats stay numbered 1..n (``updated_at`` kept).

    ``0`` unpins. A positive value moves an already pinned chat to that place (clamped to
    1..n); on an unpinned chat it is ignored and the chat is pinned last.
    """
    row = await _locked(conn, chat_id)
    if pin_order > 0:
        if row["archived"]:
            raise ChatUpdateRejected(Rejection.pin_archived)
        if row["parent_chat_id"] is not None:
            raise ChatUpdateRejected(Rejection.pin_child)
    others = (
        await conn.execute(
            sa.select(chats.c.id, chats.c.pin_order)
            .where(
                chats.c.owner_id == row["owner_id"],
                chats.c.pin_order > 0,
                chats.c.archived.is_(False),
                chats.c.id != chat_id,
            )
            .order_by(chats.c.pin_order, chats.c.id)
            .with_for_update()
        )
    ).all()
    current = {o.id: o.pin_order for o in others}
    current[chat_id] = row["pin_order"]
    order = [o.id for o in others]
    if pin_order == 0:
        await _write_pin(conn, chat_id, 0, current)
    elif row["pin_order"] > 0:
        position = min(max(pin_order, 1), len(order) + 1)
        order.insert(position - 1, chat_id)
    else:
        order.append(chat_id)
    for number, member_id in enumerate(order, start=1):
        await _write_pin(conn, member_id, number, current)


async def _write_pin(
    conn: Connection, chat_id: uuid.UUID, number: int, current: dict[uuid.UUID, int]
) -> None:
    if current.get(chat_id) != number:
        await conn.execute(chats.update().where(chats.c.id == chat_id).values(pin_order=number))


async def set_workspace(
    conn: Connection, now: dt.datetime, chat_id: uuid.UUID, workspace_id: uuid.UUID | None
) -> None:
    """Bind (or with ``None`` unbind) a workspace; the build and agent are cleared."""
    await _locked(conn, chat_id)
    await conn.execute(
        chats.update()
        .where(chats.c.id == chat_id)
        .values(workspace_id=workspace_id, build_id=None, agent_id=None, updated_at=now)
    )


async def bind_workspace(
    conn: Connection, now: dt.datetime, chat_id: uuid.UUID, workspace_id: uuid.UUID
) -> Outbox:
    """A tool bound a workspace to the chat (§12): :func:`set_workspace`, and a watch
    ``status_change`` so clients show the workspace (sealed)."""
    await set_workspace(conn, now, chat_id, workspace_id)
    row = await get_chat_row(conn, chat_id)
    assert row is not None  # locked by set_workspace
    event = ChatWatchEvent(kind=ChatWatchEventKind.status_change, chat=convert.chat(row))
    return await stream_log.seal(conn, Outbox(watch=[(row["owner_id"], event)]), now)


_RECORD_AGENT = (
    chats.update()
    .where(
        chats.c.id == sa.bindparam("chat_key"),
        chats.c.workspace_id == sa.bindparam("bound_workspace", type_=chats.c.workspace_id.type),
    )
    .values(
        agent_id=sa.bindparam("new_agent", type_=chats.c.agent_id.type),
        build_id=sa.bindparam("new_build", type_=chats.c.build_id.type),
    )
)


async def record_workspace_agent(
    conn: Connection,
    chat_id: uuid.UUID,
    workspace_id: uuid.UUID,
    agent_id: uuid.UUID,
    build_id: uuid.UUID,
) -> None:
    """The agent (and its connection's build) the chat's tools reach, while the chat is
    still bound to ``workspace_id``; ``updated_at`` untouched. One statement."""
    await conn.execute(
        _RECORD_AGENT,
        {
            "chat_key": chat_id,
            "bound_workspace": workspace_id,
            "new_agent": agent_id,
            "new_build": build_id,
        },
    )


async def set_plan_mode(conn: Connection, chat_id: uuid.UUID, plan_mode: str | None) -> None:
    """Set or (with ``None``) clear plan mode; ``updated_at`` untouched."""
    await _locked(conn, chat_id)
    await conn.execute(chats.update().where(chats.c.id == chat_id).values(plan_mode=plan_mode))
