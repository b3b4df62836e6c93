"""PostgreSQL connections that die or grow old in the pool are replaced."""

from __future__ import annotations

import anyio
import psycopg
import pytest
import sqlalchemy as sa

from chatd.store.db import Database
from chatd.store.errors import Unavailable
from tests.helpers import TEST_SECRETS

pytestmark = pytest.mark.anyio

BACKEND_PID = sa.text("SELECT pg_backend_pid() AS pid")


async def backend_pid(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(BACKEND_PID)).one().pid)


def terminate(pg_url: str, pid: int) -> None:
    """End one server process, as a failover or a proxy's idle timeout would."""
    url = pg_url.replace("postgresql+asyncpg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone() == (True,)


def backend_alive(pg_url: str, pid: int) -> bool:
    url = pg_url.replace("postgresql+asyncpg://", "postgresql://")
    with psycopg.connect(url, autocommit=True) as admin:
        found = admin.execute("SELECT 1 FROM pg_stat_activity WHERE pid = %s", (pid,))
        return found.fetchone() is not None


async def test_with_pre_ping_a_terminated_connection_is_replaced_unseen(pg_url: str) -> None:
    db = Database(pg_url, secrets=TEST_SECRETS, pre_ping=True, pool_size=1)
    try:
        first = await backend_pid(db)
        terminate(pg_url, first)
        second = await backend_pid(db)  # the ping failed; a fresh connection answered
        assert second != first
        async with db.write() as conn:
            assert (await conn.execute(sa.text("SELECT 1 AS one"))).one().one == 1
    finally:
        await db.close()


async def test_without_pre_ping_one_statement_fails_and_the_next_connects_anew(
    pg_url: str,
) -> None:
    db = Database(pg_url, secrets=TEST_SECRETS, pool_size=1)
    try:
        first = await backend_pid(db)
        terminate(pg_url, first)
        with pytest.raises(Unavailable):
            await backend_pid(db)
        assert await backend_pid(db) != first
    finally:
        await db.close()


async def test_an_idle_connection_is_recycled(pg_url: str) -> None:
    db = Database(pg_url, secrets=TEST_SECRETS, recycle=0.2, pool_size=1)
    try:
        first = await backend_pid(db)
        for _ in range(200):  # closed once it has been idle long enough
            if not backend_alive(pg_url, first):
                break
            await anyio.sleep(0.05)
        assert not backend_alive(pg_url, first)
        assert await backend_pid(db) != first
    finally:
        await db.close()
