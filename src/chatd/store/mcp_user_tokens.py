"""Users' own OAuth2 tokens for MCP servers, and the connect flows under way.

A token's access and refresh values are sealed as they are written (bound to the server and
the user, :mod:`chatd.store.secret_columns`) and opened only by :func:`get_token`, for the
code that connects to the server. A connect flow is kept by the SHA-256 of its ``state``
(never the state itself) and taken (deleted) by the callback, so a state works once.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import uuid
from dataclasses import dataclass

import sqlalchemy as sa

from chatd.secretbox import SecretBox
from chatd.store.secret_columns import mcp_token_binding, open_sealed, seal
from chatd.store.sql import Connection, RowDict
from chatd.store.tables import mcp_server_oauth2_states, mcp_server_user_tokens

tokens = mcp_server_user_tokens
states = mcp_server_oauth2_states


@dataclass(frozen=True)
class OAuth2Token:
    """A user's token as the authorization server gave it (in plain text)."""

    access_token: str
    refresh_token: str = ""
    token_type: str = ""
    expiry: dt.datetime | None = None

    def expired(self, now: dt.datetime, leeway: dt.timedelta = dt.timedelta(0)) -> bool:
        return self.expiry is not None and self.expiry <= now + leeway

    def authorization(self) -> str:
        """The ``Authorization`` header value: ``<token_type or Bearer> <access_token>``."""
        kind = self.token_type or "Bearer"
        # "bearer" as some servers spell it is the same scheme; send its usual spelling.
        if kind.lower() == "bearer":
            kind = "Bearer"
        return f"{kind} {self.access_token}"


def _where(config_id: uuid.UUID, user_id: uuid.UUID) -> tuple[sa.ColumnElement[bool], ...]:
    return (tokens.c.mcp_server_config_id == config_id, tokens.c.user_id == user_id)


async def connected_ids(conn: Connection, user_id: uuid.UUID) -> set[uuid.UUID]:
    """The servers the user holds a token for."""
    query = sa.select(tokens.c.mcp_server_config_id).where(tokens.c.user_id == user_id)
    return set((await conn.execute(query)).scalars())


async def get_token(
    conn: Connection, secrets: SecretBox, config_id: uuid.UUID, user_id: uuid.UUID
) -> OAuth2Token | None:
    """The user's token for the server, opened; ``None``: none. Raises ``SecretError``."""
    row = (await conn.execute(sa.select(tokens).where(*_where(config_id, user_id)))).first()
    if row is None:
        return None

    def opened(column: str) -> str:
        stored: str = getattr(row, column)
        return open_sealed(secrets, stored, mcp_token_binding(column, config_id, user_id))

    return OAuth2Token(
        access_token=opened("access_token"),
        refresh_token=opened("refresh_token"),
        token_type=row.token_type,
        expiry=row.expiry,
    )


async def save_token(
    conn: Connection,
    now: dt.datetime,
    config_id: uuid.UUID,
    user_id: uuid.UUID,
    token: OAuth2Token,
    secrets: SecretBox,
) -> None:
    """Store the user's token for the server (in plain text, sealed here), replacing any."""
    values = {
        "access_token": seal(
            secrets, token.access_token, mcp_token_binding("access_token", config_id, user_id)
        ),
        "refresh_token": seal(
            secrets, token.refresh_token, mcp_token_binding("refresh_token", config_id, user_id)
        ),
        "token_type": token.token_type,
        "expiry": token.expiry,
        "updated_at": now,
    }
    where = _where(config_id, user_id)
    existing = (await conn.execute(sa.select(tokens.c.user_id).where(*where))).first()
    if existing is None:
        await conn.execute(
            tokens.insert().values(
                mcp_server_config_id=config_id, user_id=user_id, created_at=now, **values
            )
        )
    else:
        await conn.execute(tokens.update().where(*where).values(**values))


async def delete_token(conn: Connection, config_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    result = await conn.execute(tokens.delete().where(*_where(config_id, user_id)))
    return bool(result.rowcount)


def state_hash(state: str) -> str:
    return hashlib.sha256(state.encode()).hexdigest()


async def add_state(
    conn: Connection,
    now: dt.datetime,
    state: str,
    *,
    config_id: uuid.UUID,
    user_id: uuid.UUID,
    code_verifier: str,
    redirect_uri: str,
    expires_at: dt.datetime,
) -> None:
    """Record a connect flow (and forget the ones that lapsed)."""
    await conn.execute(states.delete().where(states.c.expires_at <= now))
    await conn.execute(
        states.insert().values(
            state_hash=state_hash(state),
            mcp_server_config_id=config_id,
            user_id=user_id,
            code_verifier=code_verifier,
            redirect_uri=redirect_uri,
            expires_at=expires_at,
            created_at=now,
        )
    )


async def take_state(
    conn: Connection, state: str, config_id: uuid.UUID, user_id: uuid.UUID
) -> RowDict | None:
    """The connect flow of ``state``, when it is this user's for this server, deleted as it
    is read (lapsed or not); ``None``: no such flow (one of another user's stays theirs)."""
    where = (
        states.c.state_hash == state_hash(state),
        states.c.mcp_server_config_id == config_id,
        states.c.user_id == user_id,
    )
    row = (await conn.execute(sa.select(states).where(*where))).first()
    if row is None:
        return None
    await conn.execute(states.delete().where(*where))
    return row.as_dict()
