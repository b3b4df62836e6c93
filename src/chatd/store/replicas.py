"""The replicas sharing this database: where each is reached, and whether it is alive.

A replica (one ``chatd server`` process, its id the one its worker writes to
``chats.worker_id``) registers its internal address at start, touches ``heartbeat_at`` every
heartbeat interval and removes its row when it stops cleanly. A replica that died leaves its
row behind: :func:`address_of` and :func:`live` ignore a row whose heartbeat is older than
``stale_after`` (the same interval after which its running chats are recovered), and
:func:`prune` drops rows long dead.

Replicas call each other with a token signed by a secret they all share
(:mod:`chatd.replica_auth`); :func:`replica_secret` keeps it in ``site_configs``, created by
whichever replica needs it first.
"""

from __future__ import annotations

import base64
import datetime as dt
import secrets
import uuid
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from chatd.store.sql import Connection
from chatd.store.tables import replicas, site_configs

SECRET_KEY = "replica_secret"
SECRET_BYTES = 32


@dataclass(frozen=True)
class Replica:
    id: uuid.UUID
    address: str
    started_at: dt.datetime
    heartbeat_at: dt.datetime


def _dialect_insert(dialect_name: str, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    return (postgresql.insert if dialect_name == "postgresql" else sqlite.insert)(table)


def _register(dialect_name: str) -> sa.Insert:
    insert = _dialect_insert(dialect_name, replicas).values(
        id=sa.bindparam("replica_id", type_=replicas.c.id.type),
        address=sa.bindparam("replica_address"),
        started_at=sa.bindparam("now", type_=replicas.c.started_at.type),
        heartbeat_at=sa.bindparam("now", type_=replicas.c.heartbeat_at.type),
    )
    # A row already there is this replica's own (ids are random per process): it registers
    # again after its row was pruned or deleted, or a start is retried. Its start stays.
    return insert.on_conflict_do_update(
        index_elements=[replicas.c.id],
        set_={"address": insert.excluded.address, "heartbeat_at": insert.excluded.heartbeat_at},
    )


def _insert_secret(dialect_name: str) -> sa.Insert:
    insert = _dialect_insert(dialect_name, site_configs).values(
        key=SECRET_KEY, value=sa.bindparam("secret")
    )
    return insert.on_conflict_do_nothing(index_elements=[site_configs.c.key])


# Built once per dialect: the heartbeat runs them every few seconds.
_REGISTER = {name: _register(name) for name in ("postgresql", "sqlite")}
_INSERT_SECRET = {name: _insert_secret(name) for name in ("postgresql", "sqlite")}
_HEARTBEAT = (
    replicas.update()
    .where(replicas.c.id == sa.bindparam("replica_id"))
    .values(heartbeat_at=sa.bindparam("now", type_=replicas.c.heartbeat_at.type))
)
_FRESH = replicas.c.heartbeat_at >= sa.bindparam("threshold", type_=replicas.c.heartbeat_at.type)
_ADDRESS_OF = sa.select(replicas.c.address).where(
    replicas.c.id == sa.bindparam("replica_id"), _FRESH
)
_LIVE = sa.select(replicas).where(_FRESH).order_by(replicas.c.started_at, replicas.c.id)
_SECRET = sa.select(site_configs.c.value).where(site_configs.c.key == SECRET_KEY)


def _threshold(now: dt.datetime, seconds: float) -> dt.datetime:
    return now - dt.timedelta(seconds=seconds)


async def register(conn: Connection, now: dt.datetime, replica_id: uuid.UUID, address: str) -> None:
    """Record the replica and its address, alive as of ``now`` (insert or update)."""
    await conn.execute(
        _REGISTER[conn.dialect_name],
        {"replica_id": replica_id, "replica_address": address, "now": now},
    )


async def heartbeat(conn: Connection, now: dt.datetime, replica_id: uuid.UUID) -> bool:
    """Mark the replica alive as of ``now``; False when its row is gone (it must register
    again: another replica pruned it after a long pause, or an operator deleted it)."""
    result = await conn.execute(_HEARTBEAT, {"replica_id": replica_id, "now": now})
    return result.rowcount > 0


async def deregister(conn: Connection, replica_id: uuid.UUID) -> None:
    await conn.execute(replicas.delete().where(replicas.c.id == replica_id))


async def address_of(
    conn: Connection, replica_id: uuid.UUID, now: dt.datetime, stale_after: float
) -> str | None:
    """Where the replica is reached; None when it is not registered or its last heartbeat
    is more than ``stale_after`` seconds old (it is presumed dead)."""
    result = await conn.execute(
        _ADDRESS_OF, {"replica_id": replica_id, "threshold": _threshold(now, stale_after)}
    )
    address: str | None = result.scalar_one_or_none()
    return address


async def live(conn: Connection, now: dt.datetime, stale_after: float) -> list[Replica]:
    """The replicas that beat within the last ``stale_after`` seconds, oldest start first."""
    result = await conn.execute(_LIVE, {"threshold": _threshold(now, stale_after)})
    return [Replica(**row.as_dict()) for row in result]


async def prune(conn: Connection, now: dt.datetime, older_than: float) -> int:
    """Drop the rows whose last heartbeat is more than ``older_than`` seconds old; returns
    how many. Only housekeeping: a stale row is already ignored by the lookups."""
    result = await conn.execute(
        replicas.delete().where(replicas.c.heartbeat_at < _threshold(now, older_than))
    )
    return result.rowcount


async def replica_secret(conn: Connection) -> bytes:
    """The secret the replicas of this database sign their calls to each other with.

    Created on first use. Replicas starting together may each make one: the insert keeps
    the first that lands and ignores the others, and every caller reads back the stored one.
    """
    candidate = base64.urlsafe_b64encode(secrets.token_bytes(SECRET_BYTES)).decode()
    await conn.execute(_INSERT_SECRET[conn.dialect_name], {"secret": candidate})
    stored: str = (await conn.execute(_SECRET)).scalar_one()
    return base64.urlsafe_b64decode(stored)
