"""Users' own GitHub tokens, sealed at rest (:mod:`chatd.store.secret_columns`).

Only :func:`get_token` opens a token, for the code that calls GitHub; everything else sees
whether one is set and when.
"""

from __future__ import annotations

import datetime as dt
import uuid

import sqlalchemy as sa

from chatd.secretbox import SecretBox
from chatd.store.secret_columns import git_token_binding, open_sealed, seal
from chatd.store.sql import Connection
from chatd.store.tables import user_git_tokens

GITHUB = "github"
tokens = user_git_tokens


async def set_token(
    conn: Connection, now: dt.datetime, user_id: uuid.UUID, token: str, secrets: SecretBox
) -> None:
    """Store the user's token (in plain text, sealed here), replacing any earlier one."""
    sealed = seal(secrets, token, git_token_binding(user_id))
    where = tokens.c.user_id == user_id
    if (await conn.execute(sa.select(tokens.c.user_id).where(where))).first() is None:
        await conn.execute(
            tokens.insert().values(
                user_id=user_id, provider=GITHUB, token=sealed, created_at=now, updated_at=now
            )
        )
    else:
        await conn.execute(tokens.update().where(where).values(token=sealed, updated_at=now))


async def delete_token(conn: Connection, user_id: uuid.UUID) -> bool:
    """Forget the user's token; whether there was one."""
    result = await conn.execute(tokens.delete().where(tokens.c.user_id == user_id))
    return bool(result.rowcount)


async def token_updated_at(conn: Connection, user_id: uuid.UUID) -> dt.datetime | None:
    """When the user's token was last set (None: no token)."""
    query = sa.select(tokens.c.updated_at).where(tokens.c.user_id == user_id)
    updated: dt.datetime | None = (await conn.execute(query)).scalar_one_or_none()
    return updated


async def get_token(conn: Connection, secrets: SecretBox, user_id: uuid.UUID) -> str | None:
    """The user's token, opened (None: no token); raises ``SecretError`` when it cannot be
    opened."""
    query = sa.select(tokens.c.token).where(tokens.c.user_id == user_id)
    stored: str | None = (await conn.execute(query)).scalar_one_or_none()
    if not stored:
        return None
    return open_sealed(secrets, stored, git_token_binding(user_id))
