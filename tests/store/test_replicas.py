"""The registry of replicas (``replicas``) and the secret they share (``site_configs``)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from chatd.store import replicas as rs
from chatd.store.db import Database
from chatd.store.tables import replicas, site_configs
from tests.engine.worker_support import blocked_on_a_lock

pytestmark = pytest.mark.anyio

STALE = 300.0
A = uuid.uuid4()
B = uuid.uuid4()


def at(seconds: float) -> dt.datetime:
    """A fixed instant, ``seconds`` after a fixed origin (to the microsecond)."""
    return dt.datetime(2026, 1, 1, tzinfo=dt.UTC) + dt.timedelta(seconds=seconds)


async def register(db: Database, replica_id: uuid.UUID, address: str, when: float) -> None:
    async with db.write() as conn:
        await rs.register(conn, at(when), replica_id, address)


async def address_of(db: Database, replica_id: uuid.UUID, when: float) -> str | None:
    async with db.read() as conn:
        return await rs.address_of(conn, replica_id, at(when), STALE)


async def rows(db: Database) -> dict[uuid.UUID, tuple[str, dt.datetime, dt.datetime]]:
    async with db.read() as conn:
        found = await conn.execute(sa.select(replicas))
    return {r.id: (r.address, r.started_at, r.heartbeat_at) for r in found}


async def test_a_registered_replica_is_found_until_its_heartbeat_is_stale(db: Database) -> None:
    await register(db, A, "http://10.0.0.1:3000", 0)
    assert await address_of(db, A, 0) == "http://10.0.0.1:3000"
    assert await address_of(db, A, STALE) == "http://10.0.0.1:3000"  # exactly stale_after old
    assert await address_of(db, A, STALE + 1) is None
    assert await address_of(db, B, 0) is None  # never registered

    async with db.write() as conn:
        assert await rs.heartbeat(conn, at(STALE + 1), A) is True
    assert await address_of(db, A, 2 * STALE) == "http://10.0.0.1:3000"
    assert await rows(db) == {A: ("http://10.0.0.1:3000", at(0), at(STALE + 1))}


async def test_registering_again_updates_the_address_and_keeps_the_start(db: Database) -> None:
    await register(db, A, "http://10.0.0.1:3000", 0)
    await register(db, B, "http://10.0.0.2:3000", 5)
    await register(db, A, "http://10.0.0.9:4000", 10)
    assert await rows(db) == {
        A: ("http://10.0.0.9:4000", at(0), at(10)),
        B: ("http://10.0.0.2:3000", at(5), at(5)),
    }


async def test_a_heartbeat_without_a_row_says_so_and_writes_nothing(db: Database) -> None:
    async with db.write() as conn:
        assert await rs.heartbeat(conn, at(0), A) is False
    assert await rows(db) == {}


async def test_deregister_removes_only_that_replica(db: Database) -> None:
    await register(db, A, "http://a", 0)
    await register(db, B, "http://b", 0)
    async with db.write() as conn:
        await rs.deregister(conn, A)
        await rs.deregister(conn, A)  # already gone: nothing happens
    assert await address_of(db, A, 1) is None
    assert await address_of(db, B, 1) == "http://b"
    async with db.write() as conn:
        assert await rs.heartbeat(conn, at(1), A) is False


async def test_live_lists_the_fresh_replicas_oldest_start_first(db: Database) -> None:
    await register(db, B, "http://b", 10)
    await register(db, A, "http://a", 20)
    dead = uuid.uuid4()
    await register(db, dead, "http://dead", 0)
    async with db.read() as conn:
        found = await rs.live(conn, at(STALE + 5), STALE)
    assert [(r.id, r.address, r.started_at) for r in found] == [
        (B, "http://b", at(10)),
        (A, "http://a", at(20)),
    ]


async def test_prune_drops_only_the_rows_long_dead(db: Database) -> None:
    await register(db, A, "http://a", 0)
    await register(db, B, "http://b", 100)
    async with db.write() as conn:
        assert await rs.prune(conn, at(1000), 950) == 1
        assert await rs.prune(conn, at(1000), 950) == 0
    assert set(await rows(db)) == {B}
    # A pruned replica that is in fact alive finds out at its next heartbeat.
    async with db.write() as conn:
        assert await rs.heartbeat(conn, at(1001), A) is False


async def stored_secrets(db: Database) -> list[str]:
    async with db.read() as conn:
        found = await conn.execute(
            sa.select(site_configs.c.value).where(site_configs.c.key == rs.SECRET_KEY)
        )
    return list(found.scalars())


async def test_the_secret_is_made_once_and_then_read(db: Database) -> None:
    first = await db.run_write(rs.replica_secret)
    assert len(first) == rs.SECRET_BYTES
    assert await db.run_write(rs.replica_secret) == first
    assert await stored_secrets(db) == [base64.urlsafe_b64encode(first).decode()]


async def test_two_first_uses_at_once_get_the_same_secret(db: Database) -> None:
    first, second = await asyncio.gather(
        db.run_write(rs.replica_secret), db.run_write(rs.replica_secret)
    )
    assert first == second
    assert len(await stored_secrets(db)) == 1


async def test_a_first_use_racing_an_uncommitted_one_reads_the_winners_secret(
    db: Database,
) -> None:
    """The second replica's insert meets the first one's row before it commits: it waits for
    that transaction, inserts nothing and reads back the first one's secret."""
    async with db.write() as conn:
        winner = await rs.replica_secret(conn)
        racing = asyncio.create_task(db.run_write(rs.replica_secret))
        await blocked_on_a_lock(db, racing)
    assert await racing == winner
    assert len(await stored_secrets(db)) == 1
