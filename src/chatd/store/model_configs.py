"""Queries for chat providers and model configs."""

from __future__ import annotations

import uuid
from typing import Any

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from chatd.store.tables import chat_model_configs, chat_providers


async def get_model_config(
    conn: AsyncConnection, config_id: uuid.UUID, *, include_deleted: bool = False
) -> sa.RowMapping | None:
    query = sa.select(chat_model_configs).where(chat_model_configs.c.id == config_id)
    if not include_deleted:
        query = query.where(chat_model_configs.c.deleted.is_(False))
    row = (await conn.execute(query)).first()
    return row._mapping if row else None


async def default_model_config(conn: AsyncConnection) -> sa.RowMapping | None:
    row = (
        await conn.execute(
            sa.select(chat_model_configs).where(
                chat_model_configs.c.is_default.is_(True), chat_model_configs.c.deleted.is_(False)
            )
        )
    ).first()
    return row._mapping if row else None


async def insert_provider(conn: AsyncConnection, **values: Any) -> uuid.UUID:
    provider_id = values.pop("id", None) or uuid.uuid4()
    await conn.execute(chat_providers.insert().values(id=provider_id, **values))
    return provider_id


async def insert_model_config(conn: AsyncConnection, **values: Any) -> uuid.UUID:
    config_id = values.pop("id", None) or uuid.uuid4()
    values.setdefault("options", {})
    await conn.execute(chat_model_configs.insert().values(id=config_id, **values))
    return config_id
