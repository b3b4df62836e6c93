"""The ``{user}`` path parameter of /api/v2/users routes: ``me``, a user id or a username.

Only the user themself or a site owner may act on a user; to anyone else another user is as
missing as one that does not exist (404), so the routes never tell which accounts exist.
"""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import Path

from chatd.api.errors import not_found
from chatd.authz import Actor
from chatd.store import users as q
from chatd.store.db import Database
from chatd.store.users import UserRow

UserPath = Annotated[str, Path(description='"me", a user ID or a username.')]


async def resolve_user(db: Database, actor: Actor, ref: str) -> UserRow:
    """The user ``ref`` names, when ``actor`` may act on them; else 404."""
    async with db.read() as conn:
        if ref == "me":
            user = await q.get_user(conn, actor.user_id)
        else:
            try:
                user = await q.get_user(conn, uuid.UUID(ref))
            except ValueError:
                user = await q.get_user_by_login(conn, ref)
    if user is None or (user.id != actor.user_id and not actor.is_owner):
        raise not_found()
    return user
