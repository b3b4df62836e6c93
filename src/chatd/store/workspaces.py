"""Queries for workspaces (where a chat's tools run) and their agents' status."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import sqlalchemy as sa

from chatd.store.errors import IntegrityError
from chatd.store.sql import Connection, RowDict
from chatd.store.tables import workspaces

ws = workspaces
CONNECTING = "connecting"
CONNECTED = "connected"
DISCONNECTED = "disconnected"
# Kinds whose agent the server starts (it dies with the server that started it).
STARTED_BY_SERVER = ("local", "command")


class WorkspaceExists(Exception):
    """The owner has a workspace of that name already."""


# Run on every tool call that needs an agent and on every agent connection: built once.
_BY_ID = sa.select(ws).where(ws.c.id == sa.bindparam("workspace_id"))
_BY_TOKEN = sa.select(ws).where(ws.c.agent_token_hash == sa.bindparam("token_hash"))
_STARTING = (
    ws.update()
    .where(ws.c.id == sa.bindparam("workspace_id"))
    .values(
        agent_token_hash=sa.bindparam("token_hash"),
        agent_status=CONNECTING,
        agent_started_at=sa.bindparam("now"),
        updated_at=sa.bindparam("now"),
    )
)
_CONNECTED = (
    ws.update()
    .where(ws.c.id == sa.bindparam("workspace_id"))
    .values(
        agent_status=CONNECTED,
        build_id=sa.bindparam("new_build_id"),
        agent_directory=sa.bindparam("hello_directory"),
        agent_os=sa.bindparam("hello_os"),
        agent_version=sa.bindparam("hello_version"),
        updated_at=sa.bindparam("now"),
    )
)
# Only the connection that is still the workspace's latest (a replaced one changes nothing).
_DISCONNECTED = (
    ws.update()
    .where(
        ws.c.id == sa.bindparam("workspace_id"),
        ws.c.build_id == sa.bindparam("ended_build_id"),
        ws.c.agent_status == CONNECTED,
    )
    .values(agent_status=DISCONNECTED, updated_at=sa.bindparam("now"))
)


async def get_workspace(conn: Connection, workspace_id: uuid.UUID) -> RowDict | None:
    row = (await conn.execute(_BY_ID, {"workspace_id": workspace_id})).first()
    return row.as_dict() if row else None


async def find_by_token_hash(conn: Connection, token_hash: bytes) -> RowDict | None:
    """The workspace whose agent's current token hashes to ``token_hash``."""
    row = (await conn.execute(_BY_TOKEN, {"token_hash": token_hash})).first()
    return row.as_dict() if row else None


async def list_workspaces(conn: Connection, owner_id: uuid.UUID) -> list[RowDict]:
    query = sa.select(ws).where(ws.c.owner_id == owner_id).order_by(ws.c.name)
    return [row.as_dict() for row in await conn.execute(query)]


async def name_taken(conn: Connection, owner_id: uuid.UUID, name: str) -> bool:
    query = sa.select(ws.c.id).where(ws.c.owner_id == owner_id, ws.c.name == name)
    return (await conn.execute(query)).first() is not None


async def insert_workspace(conn: Connection, now: dt.datetime, values: dict[str, Any]) -> RowDict:
    """A new workspace (``values`` with its id, without times); raises
    :class:`WorkspaceExists` when the owner has one of that name."""
    if await name_taken(conn, values["owner_id"], values["name"]):
        raise WorkspaceExists
    values = {"agent_id": uuid.uuid4(), "parameters": {}, **values}
    try:
        await conn.execute(ws.insert().values(created_at=now, updated_at=now, **values))
    except IntegrityError:
        raise WorkspaceExists from None  # a concurrent insert of the same name
    row = await get_workspace(conn, values["id"])
    assert row is not None
    return row


async def agent_starting(
    conn: Connection,
    now: dt.datetime,
    workspace_id: uuid.UUID,
    token_hash: bytes,
) -> bool:
    """The agent is being started (or expected) with a new token: status ``connecting`` from
    ``now``. False when the workspace is gone."""
    result = await conn.execute(
        _STARTING, {"workspace_id": workspace_id, "token_hash": token_hash, "now": now}
    )
    return result.rowcount > 0


async def agent_connected(
    conn: Connection,
    now: dt.datetime,
    workspace_id: uuid.UUID,
    build_id: uuid.UUID,
    hello: dict[str, str],
) -> bool:
    """Record a connection (``hello``: directory, operating_system, version)."""
    params = {
        "workspace_id": workspace_id,
        "new_build_id": build_id,
        "hello_directory": hello["directory"],
        "hello_os": hello["operating_system"],
        "hello_version": hello["version"],
        "now": now,
    }
    return (await conn.execute(_CONNECTED, params)).rowcount > 0


async def agent_disconnected(
    conn: Connection, now: dt.datetime, workspace_id: uuid.UUID, build_id: uuid.UUID
) -> bool:
    """The connection ``build_id`` ended; nothing changes if a newer one replaced it."""
    params = {"workspace_id": workspace_id, "ended_build_id": build_id, "now": now}
    return (await conn.execute(_DISCONNECTED, params)).rowcount > 0


async def reset_agents(conn: Connection, now: dt.datetime) -> int:
    """On start: no agent is connected to this server yet, and the agents an earlier server
    started died with it. How many rows changed."""
    result = await conn.execute(
        ws.update()
        .where(
            sa.or_(
                ws.c.agent_status == CONNECTED,
                sa.and_(ws.c.agent_status == CONNECTING, ws.c.kind.in_(STARTED_BY_SERVER)),
            )
        )
        .values(agent_status=DISCONNECTED, updated_at=now)
    )
    return result.rowcount


async def delete_workspace(conn: Connection, workspace_id: uuid.UUID) -> RowDict | None:
    """Delete the workspace and return its row (None: there was none). Its chats stay, with
    ``workspace_id`` NULL."""
    row = await get_workspace(conn, workspace_id)
    if row is not None:
        await conn.execute(ws.delete().where(ws.c.id == workspace_id))
    return row
