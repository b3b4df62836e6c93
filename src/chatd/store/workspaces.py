"""Queries for workspaces (where a chat's tools run)."""

from __future__ import annotations

import uuid

import sqlalchemy as sa

from chatd.store.sql import Connection, RowDict
from chatd.store.tables import workspaces


async def get_workspace(conn: Connection, workspace_id: uuid.UUID) -> RowDict | None:
    row = (await conn.execute(sa.select(workspaces).where(workspaces.c.id == workspace_id))).first()
    return row.as_dict() if row else None
