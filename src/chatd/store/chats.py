"""Reading chats: single rows, families, diff statuses, linked files, unread state."""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable

import sqlalchemy as sa

from chatd.github_site import GITHUB_COM, GitHubSite
from chatd.sdk.chats import Chat, ChatDiffStatus, ChatFileMetadata
from chatd.store import convert
from chatd.store.files import FILE_METADATA
from chatd.store.sql import Connection, RowDict
from chatd.store.tables import (
    chat_diff_statuses,
    chat_file_links,
    chat_files,
    chat_messages,
    chat_model_configs,
    chats,
    users,
)

# A chat with its owner's display fields, as every Chat response needs.
CHAT_WITH_OWNER = sa.select(
    chats, users.c.name.label("owner_name"), users.c.username.label("owner_username")
).join(users, users.c.id == chats.c.owner_id)
# Statements run on every request or turn are built once, with bound parameters: building
# and keying a select on each call cost ~50 µs, more than SQLite takes to answer it.
_CHAT_BY_ID = CHAT_WITH_OWNER.where(chats.c.id == sa.bindparam("chat_id"))
# The locked row also says whether the chat's last model config is still live, so a send need
# not ask in a statement of its own. That table is read as the statement began: a config deleted
# while the lock was awaited reads live here, and the turn falls back to the default config, as
# it does for one deleted just after the send.
LAST_MODEL_LIVE = "last_model_live"
_CHAT_BY_ID_LOCKED = _CHAT_BY_ID.add_columns(
    sa.exists()
    .where(
        chat_model_configs.c.id == chats.c.last_model_config_id,
        chat_model_configs.c.deleted.is_(False),
    )
    .label(LAST_MODEL_LIVE)
).with_for_update(of=chats)
# One chat's row updated: the id as ``chat_key``, the columns to SET as the other parameters.
UPDATE_CHAT = chats.update().where(chats.c.id == sa.bindparam("chat_key"))


# The same, handing back the updated row as ``get_chat_row`` reads it (the owner fields as
# subqueries: SQLite's RETURNING may not name another table).
def _owner_field(column: sa.Column[str], label: str) -> sa.Label[str]:
    return sa.select(column).where(users.c.id == chats.c.owner_id).scalar_subquery().label(label)


CHAT_RETURNING = (
    *chats.c,
    _owner_field(users.c.name, "owner_name"),
    _owner_field(users.c.username, "owner_username"),
)
UPDATE_CHAT_RETURNING = UPDATE_CHAT.returning(*CHAT_RETURNING)
_LINKED_FILES = (
    FILE_METADATA.join(chat_file_links, chat_file_links.c.file_id == chat_files.c.id)
    .where(chat_file_links.c.chat_id == sa.bindparam("chat_id"))
    .order_by(chat_files.c.created_at, chat_files.c.id)
)


@functools.cache
def has_unread_expr() -> sa.ColumnElement[bool]:
    """An undeleted assistant message newer than the chat's read cursor exists.

    Built once: aliasing ``chat_messages`` per call costs milliseconds on every list page.
    """
    m = chat_messages.alias("unread_m")
    return sa.exists(
        sa.select(sa.literal(1))
        .select_from(m)
        .where(
            m.c.chat_id == chats.c.id,
            m.c.role == "assistant",
            m.c.deleted.is_(False),
            m.c.id > sa.func.coalesce(chats.c.last_read_message_id, 0),
        )
    )


async def get_chat_row(
    conn: Connection, chat_id: uuid.UUID, *, for_update: bool = False
) -> RowDict | None:
    """One chat with owner fields. ``for_update`` takes the row lock (PostgreSQL)."""
    query = _CHAT_BY_ID_LOCKED if for_update else _CHAT_BY_ID
    row = (await conn.execute(query, {"chat_id": chat_id})).first()
    return row.as_dict() if row else None


async def lock_chat(conn: Connection, chat_id: uuid.UUID) -> RowDict | None:
    """Lock the chat row first, as every state change must (SQLite: the write lock is held).

    The row has one column more than :func:`get_chat_row`'s: :data:`LAST_MODEL_LIVE`."""
    return await get_chat_row(conn, chat_id, for_update=True)


async def get_chat(conn: Connection, chat_id: uuid.UUID) -> Chat | None:
    row = await get_chat_row(conn, chat_id)
    return convert.chat(row) if row else None


async def diff_statuses(
    conn: Connection, chat_ids: Iterable[uuid.UUID], github: GitHubSite = GITHUB_COM
) -> dict[uuid.UUID, ChatDiffStatus]:
    ids = list(chat_ids)
    if not ids:
        return {}
    rows = await conn.execute(
        sa.select(chat_diff_statuses).where(chat_diff_statuses.c.chat_id.in_(ids))
    )
    return {r.chat_id: convert.diff_status(r.as_dict(), github) for r in rows}


async def linked_files(conn: Connection, chat_id: uuid.UUID) -> list[ChatFileMetadata]:
    rows = await conn.execute(_LINKED_FILES, {"chat_id": chat_id})
    return [convert.file_metadata(r.as_dict()) for r in rows]


async def children(
    conn: Connection,
    parent_ids: list[uuid.UUID],
    *,
    archived: bool | None,
    github: GitHubSite = GITHUB_COM,
) -> dict[uuid.UUID, list[Chat]]:
    """Direct children per parent (newest first), each with diff status and has_unread."""
    if not parent_ids:
        return {}
    query = (
        CHAT_WITH_OWNER.add_columns(has_unread_expr().label("has_unread"))
        .where(chats.c.parent_chat_id.in_(parent_ids))
        .order_by(chats.c.created_at.desc(), chats.c.id.desc())
    )
    if archived is not None:
        query = query.where(chats.c.archived.is_(archived))
    rows = [r.as_dict() for r in await conn.execute(query)]
    statuses = await diff_statuses(conn, [r["id"] for r in rows], github)
    result: dict[uuid.UUID, list[Chat]] = {}
    for row in rows:
        child = convert.chat(row, has_unread=bool(row["has_unread"]))
        child.diff_status = statuses.get(child.id) or convert.empty_diff_status(child.id)
        result.setdefault(row["parent_chat_id"], []).append(child)
    return result
