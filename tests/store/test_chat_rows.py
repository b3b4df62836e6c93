"""Chat-row writes that hand back the row they wrote (UPDATE ... RETURNING with owner fields)."""

from __future__ import annotations

import uuid

import pytest

from chatd.sdk.chats import Chat, ChatStatus
from chatd.store import titles
from chatd.store.chats import get_chat
from chatd.store.db import Database
from chatd.store.outbox import Outbox
from chatd.store.transition_steps import announce_status, set_status
from tests.helpers import ApiUser, make_chat, seed_model_config

pytestmark = pytest.mark.anyio


async def stored(db: Database, chat_id: uuid.UUID) -> Chat:
    async with db.read() as conn:
        chat = await get_chat(conn, chat_id)
    assert chat is not None
    return chat


def watched(outbox: Outbox) -> list[Chat]:
    return [event.chat for _, event in outbox.watch]


async def test_written_rows_carry_their_own_owners_fields(
    db: Database, admin: ApiUser, member: ApiUser
) -> None:
    """Two owners, so a subquery that matched the wrong user would show."""
    model = await seed_model_config(db)
    theirs = await make_chat(db, member, model, "member's chat")
    mine = await make_chat(db, admin, model, "admin's chat")

    async with db.write() as conn:
        outbox = Outbox()
        chat = announce_status(outbox, await set_status(conn, db.now(), theirs, ChatStatus.waiting))
    assert chat == await stored(db, theirs)
    assert (chat.owner_id, chat.owner_username) == (member.id, member.username)
    assert watched(outbox) == [chat] and chat.status == ChatStatus.waiting

    async with db.write() as conn:
        now = db.now()
        renamed = await titles.set_title_if_unchanged(
            conn, now, mine, "admin's chat", "A new title"
        )
        stale = await titles.set_title_if_unchanged(conn, now, theirs, "not its title", "Other")
    (chat,) = watched(renamed)
    assert chat == await stored(db, mine) and chat.title == "A new title"
    assert chat.owner_username == admin.username
    assert watched(stale) == [] and (await stored(db, theirs)).title == "member's chat"

    async with db.write() as conn:
        first = await titles.set_turn_summary(conn, db.now(), theirs, " Fixed the build ")
        again = await titles.set_turn_summary(conn, db.now(), theirs, "Fixed the build")
    (chat,) = watched(first)
    assert chat == await stored(db, theirs) and chat.last_turn_summary == "Fixed the build"
    assert chat.owner_username == member.username
    assert watched(again) == []  # unchanged: nothing written, nothing announced
