"""``chats.queue_length``: kept equal to the chat's queued rows by every change, and filled in
by the migration that added it."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa

from chatd.sdk.chats import ChatMessagePart, ChatMessagePartType
from chatd.settings import Settings, to_async_url
from chatd.store import chat_state
from chatd.store import worker_state as ws
from chatd.store.db import Database
from chatd.store.messages import queued_messages, visible_messages
from chatd.store.tables import chat_queued_messages, chats
from chatd.store.turn_outcome import OutcomeKind, TurnOutcome
from tests.engine.worker_support import queue_message, set_columns
from tests.helpers import TEST_SECRETS, ApiUser, bootstrap_admin, make_chat, seed_model_config
from tests.store.schema import fresh_database, migrate

pytestmark = pytest.mark.anyio

WORKER = uuid.uuid4()


async def counts(db: Database, chat_id: uuid.UUID) -> tuple[int, int]:
    """(the column, the rows)."""
    async with db.read() as conn:
        column = (
            await conn.execute(sa.select(chats.c.queue_length).where(chats.c.id == chat_id))
        ).scalar_one()
        rows = (
            await conn.execute(
                sa.select(sa.func.count()).where(chat_queued_messages.c.chat_id == chat_id)
            )
        ).scalar_one()
    return column, rows


async def test_every_queue_change_keeps_the_count(db: Database, settings: Settings) -> None:
    owner = await bootstrap_admin(db, settings)
    model = await seed_model_config(db)
    chat_id = await make_chat(db, owner, model)  # pending: sends now queue
    assert await counts(db, chat_id) == (0, 0)
    for text in ("one", "two", "three", "four"):
        await queue_message(db, chat_id, text)
    assert await counts(db, chat_id) == (4, 4)

    async with db.read() as conn:
        first = (await queued_messages(conn, chat_id))[0].id
    async with db.write() as conn:
        await chat_state.delete_queued(conn, chat_id, first)
        await chat_state.delete_queued(conn, chat_id, first)  # already gone: no change
    assert await counts(db, chat_id) == (3, 3)

    async with db.write() as conn:
        await ws.acquire_chats(conn, db.now(), WORKER, 1)
    finished = await ws.finish(db, db.now(), chat_id, WORKER, TurnOutcome(OutcomeKind.done))
    assert finished.status == "pending"  # the head was promoted
    assert await counts(db, chat_id) == (2, 2)

    async with db.read() as conn:
        second = (await queued_messages(conn, chat_id))[0].id
    await set_columns(db, chat_id, status="waiting")
    async with db.write() as conn:
        await chat_state.promote_queued(conn, db.now(), chat_id, second, owner.id)
    assert await counts(db, chat_id) == (1, 1)

    async with db.read() as conn:
        (message,) = [
            m
            for m in await visible_messages(conn, chat_id)
            if m.role == "user" and m.content and m.content[0].text == "hello there"
        ]
    edit = chat_state.NewUserMessage(
        author_id=owner.id, content=[ChatMessagePart(type=ChatMessagePartType.text, text="x")]
    )
    async with db.write() as conn:
        await chat_state.edit_message(conn, db.now(), chat_id, message.id, edit)
    assert await counts(db, chat_id) == (0, 0)  # an edit clears the queue


# ---- the migration ---------------------------------------------------------------------------


async def test_the_migration_counts_the_queues_already_stored(
    backend: str, tmp_path: Path, settings: Settings
) -> None:
    with fresh_database(backend, tmp_path) as url:
        migrate(url, "head")
        db = Database(to_async_url(url), secrets=TEST_SECRETS)
        try:
            owner: ApiUser = await bootstrap_admin(db, settings)
            model = await seed_model_config(db)
            busy, idle = [await make_chat(db, owner, model) for _ in range(2)]
            for text in ("one", "two"):
                await queue_message(db, busy, text)
        finally:
            await db.close()
        migrate(url, "0002")  # as it was before the column
        migrate(url, "head")
        db = Database(to_async_url(url), secrets=TEST_SECRETS)
        try:
            assert await counts(db, busy) == (2, 2)
            assert await counts(db, idle) == (0, 0)
        finally:
            await db.close()
