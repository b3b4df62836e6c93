"""The inline SQLite engine: statements on the loop's thread, the pool's limits kept."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import engine as async_engine

from chatd.store.db import SQLITE_POOL_SIZE, Database
from tests.helpers import TEST_SECRETS

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_more_transactions_than_connections_wait_their_turn(tmp_path: Path) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}", secrets=TEST_SECRETS)
    capacity = 2 * SQLITE_POOL_SIZE  # pool size + overflow
    release, full = asyncio.Event(), asyncio.Event()
    inside = 0
    most_inside = 0

    async def hold(i: int) -> int:
        nonlocal inside, most_inside
        async with db.read() as conn:
            inside += 1
            most_inside = max(most_inside, inside)
            if inside == capacity:
                full.set()
            await release.wait()
            value = (await conn.execute(sa.text("SELECT :i"), {"i": i})).scalar_one()
            inside -= 1
            return int(value)

    try:
        tasks = [asyncio.create_task(hold(i)) for i in range(capacity + 5)]
        await asyncio.wait_for(full.wait(), 10)
        await asyncio.sleep(0.05)
        assert inside == most_inside == capacity  # the other five wait for a connection
        release.set()
        assert await asyncio.gather(*tasks) == list(range(capacity + 5))
    finally:
        await db.close()


async def test_an_idle_connection_is_taken_without_a_greenlet(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    db = Database(f"sqlite+aiosqlite:///{tmp_path / 'inline.db'}", secrets=TEST_SECRETS)
    spawned = 0
    real_spawn = async_engine.greenlet_spawn  # type: ignore[attr-defined]

    async def counting_spawn(*args: object, **kw: object) -> object:
        nonlocal spawned
        spawned += 1
        return await real_spawn(*args, **kw)  # type: ignore[arg-type]

    try:
        async with db.write() as conn:  # the first connection is opened on the greenlet path
            await conn.execute(sa.text("CREATE TABLE t (x INTEGER)"))
        monkeypatch.setattr(async_engine, "greenlet_spawn", counting_spawn)
        async with db.write() as conn:
            await conn.execute(sa.text("INSERT INTO t VALUES (1)"))
        async with db.read() as conn:
            assert (await conn.execute(sa.text("SELECT x FROM t"))).scalar_one() == 1
        assert spawned == 0
        with pytest.raises(RuntimeError):
            async with db.write() as conn:
                await conn.execute(sa.text("INSERT INTO t VALUES (2)"))
                raise RuntimeError("rolled back")
        async with db.read() as conn:
            assert (await conn.execute(sa.text("SELECT count(*) FROM t"))).scalar_one() == 1
    finally:
        await db.close()
