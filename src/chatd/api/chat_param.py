"""The ``{chat}`` path parameter: parse, load, and check read access (404 otherwise)."""

from __future__ import annotations

from typing import Annotated

from chatd.api.errors import not_found
from chatd.api.openapi import uuid_path
from chatd.api.params import parse_uuid_path
from chatd.authz import Actor
from chatd.store.chats import get_chat_row
from chatd.store.db import Database
from chatd.store.sql import RowDict

ChatPath = Annotated[str, uuid_path("Chat ID.")]


async def load_chat(db: Database, actor: Actor, raw: str) -> RowDict:
    chat_id = parse_uuid_path(raw)
    row = await db.run_read(get_chat_row, chat_id)
    if row is None or not actor.can_read_chat(row["owner_id"], row["organization_id"]):
        raise not_found()
    return row
