"""The cached diff/PR status row of a chat, as the diff endpoint reads it."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from chatd.store.sql import Connection, RowDict
from chatd.store.tables import chat_diff_statuses


async def get_diff_status_row(conn: Connection, chat_id: uuid.UUID) -> RowDict | None:
    row = (
        await conn.execute(
            sa.select(chat_diff_statuses).where(chat_diff_statuses.c.chat_id == chat_id)
        )
    ).first()
    return row.as_dict() if row else None
