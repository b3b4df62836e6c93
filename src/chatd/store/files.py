"""Queries for uploaded chat files and their links to chats."""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa

from chatd.store.sql import Connection, RowDict
from chatd.store.tables import chat_file_links, chat_files

# How many files one chat may link (api-behaviour §3.4, seed era).
MAX_CHAT_FILE_IDS = 20
# A file's metadata columns (everything but the data).
FILE_METADATA = sa.select(
    chat_files.c.id,
    chat_files.c.owner_id,
    chat_files.c.organization_id,
    chat_files.c.name,
    chat_files.c.mimetype,
    chat_files.c.created_at,
)


async def get_file_meta(conn: Connection, file_id: uuid.UUID) -> RowDict | None:
    """A file's metadata (no data)."""
    row = (await conn.execute(FILE_METADATA.where(chat_files.c.id == file_id))).first()
    return row.as_dict() if row else None


async def insert_file(
    conn: Connection,
    *,
    owner_id: uuid.UUID,
    organization_id: uuid.UUID,
    name: str,
    mimetype: str,
    data: bytes,
    created_at: dt.datetime,
) -> uuid.UUID:
    """Store an uploaded file (not yet linked to any chat); returns its new id."""
    file_id = uuid.uuid4()
    await conn.execute(
        chat_files.insert().values(
            id=file_id,
            owner_id=owner_id,
            organization_id=organization_id,
            name=name,
            mimetype=mimetype,
            data=data,
            created_at=created_at,
        )
    )
    return file_id


async def get_file(conn: Connection, file_id: uuid.UUID) -> RowDict | None:
    """A file with its data."""
    row = (await conn.execute(sa.select(chat_files).where(chat_files.c.id == file_id))).first()
    return row.as_dict() if row else None


async def link_files(
    conn: Connection, chat_id: uuid.UUID, file_ids: list[uuid.UUID]
) -> list[str]:
    """Link files to a chat, all or nothing under the cap; returns warnings (§8.4)."""
    wanted = list(dict.fromkeys(file_ids))
    if not wanted:
        return []
    existing = set(
        (
            await conn.execute(
                sa.select(chat_file_links.c.file_id).where(chat_file_links.c.chat_id == chat_id)
            )
        ).scalars()
    )
    new = [f for f in wanted if f not in existing]
    if len(existing) + len(new) > MAX_CHAT_FILE_IDS:
        return [
            f"file linking skipped: batch of {len(file_ids)} file(s) would exceed limit of "
            f"{MAX_CHAT_FILE_IDS}"
        ]
    if new:
        await conn.execute(
            chat_file_links.insert().values([{"chat_id": chat_id, "file_id": f} for f in new])
        )
    return []


async def insert_chat_file(
    conn: Connection,
    *,
    chat_id: uuid.UUID,
    owner_id: uuid.UUID,
    organization_id: uuid.UUID,
    name: str,
    mimetype: str,
    data: bytes,
    created_at: dt.datetime,
) -> uuid.UUID:
    """A file a tool made for the chat (attach_file, propose_plan): stored, and linked to the
    chat while the chat is under its cap of linked files."""
    file_id = await insert_file(
        conn,
        owner_id=owner_id,
        organization_id=organization_id,
        name=name,
        mimetype=mimetype,
        data=data,
        created_at=created_at,
    )
    await link_files(conn, chat_id, [file_id])
    return file_id
