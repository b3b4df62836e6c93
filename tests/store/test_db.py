"""``Database.write_one``: one statement, atomic on its own (autocommit on PostgreSQL)."""

from __future__ import annotations

import uuid

import pytest
import sqlalchemy as sa

from chatd.store.db import Database
from chatd.store.errors import IntegrityError
from chatd.store.tables import chats
from tests.helpers import ApiUser, make_chat, seed_model_config

pytestmark = pytest.mark.anyio


async def title_of(db: Database, chat_id: uuid.UUID) -> str:
    async with db.read() as conn:
        title: str = (
            await conn.execute(sa.select(chats.c.title).where(chats.c.id == chat_id))
        ).scalar_one()
    return title


async def test_write_one_commits_its_statement(db: Database, admin: ApiUser) -> None:
    chat_id = await make_chat(db, admin, await seed_model_config(db), "before")
    rename = chats.update().where(chats.c.id == chat_id).values(title="after")

    async with db.write_one() as conn:
        await conn.execute(rename)
        # PostgreSQL: committed as the statement ends (no transaction around it); SQLite: the
        # writer's transaction commits when the block exits, so a reader sees the old row.
        seen_inside = await title_of(db, chat_id)
    assert seen_inside == ("before" if db.is_sqlite else "after")
    assert await title_of(db, chat_id) == "after"


async def test_a_failing_write_one_changes_nothing(db: Database, admin: ApiUser) -> None:
    chat_id = await make_chat(db, admin, await seed_model_config(db), "kept")
    # One statement that renames the chat and breaks a constraint in the same row.
    broken = chats.update().where(chats.c.id == chat_id).values(title="lost", owner_id=None)

    with pytest.raises(IntegrityError):
        async with db.write_one() as conn:
            await conn.execute(broken)
    assert await title_of(db, chat_id) == "kept"
