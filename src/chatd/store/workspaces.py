"""Queries for workspaces (where a chat's tools run)."""

from __future__ import annotations

import uuid

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from chatd.store.tables import workspaces


async def get_workspace(conn: AsyncConnection, workspace_id: uuid.UUID) -> sa.RowMapping | None:
    row = (await conn.execute(sa.select(workspaces).where(workspaces.c.id == workspace_id))).first()
    return row._mapping if row else None
