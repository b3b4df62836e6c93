"""This replica's row in the registry: written at start, kept beating, removed at stop."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
import sqlalchemy as sa

from chatd.api.app import create_app
from chatd.engine.replica import ReplicaRegistry
from chatd.replica_auth import verify
from chatd.settings import Settings
from chatd.store import replicas as rs
from chatd.store.db import Database
from chatd.store.tables import replicas

pytestmark = pytest.mark.anyio

ADDRESS = "http://10.1.2.3:3000"
BEAT = 0.05


async def row(db: Database, replica_id: uuid.UUID) -> tuple[str, dt.datetime] | None:
    async with db.read() as conn:
        found = (
            await conn.execute(
                sa.select(replicas.c.address, replicas.c.heartbeat_at).where(
                    replicas.c.id == replica_id
                )
            )
        ).first()
    return None if found is None else (found.address, found.heartbeat_at)


async def eventually(check: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll an async ``check`` until it is true, within 2 s."""
    for _ in range(200):
        if await check():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"not within 2 s: {what}")


@pytest.fixture
async def registry(db: Database) -> AsyncIterator[ReplicaRegistry]:
    running = ReplicaRegistry(db, uuid.uuid4(), ADDRESS, heartbeat_interval=BEAT, stale_after=60)
    await running.start()
    try:
        yield running
    finally:
        await running.stop()


async def test_start_registers_at_once_and_stop_removes_the_row(db: Database) -> None:
    me = ReplicaRegistry(db, uuid.uuid4(), ADDRESS, heartbeat_interval=60, stale_after=60)
    await me.start()
    found = await row(db, me.replica_id)
    assert found is not None and found[0] == ADDRESS
    await me.stop()
    assert await row(db, me.replica_id) is None


async def test_the_heartbeat_keeps_the_row_fresh(db: Database, registry: ReplicaRegistry) -> None:
    first = await row(db, registry.replica_id)
    assert first is not None

    async def beaten() -> bool:
        now = await row(db, registry.replica_id)
        return now is not None and now[1] > first[1]

    await eventually(beaten, "a heartbeat")


async def test_a_row_deleted_under_a_live_replica_comes_back(
    db: Database, registry: ReplicaRegistry
) -> None:
    async with db.write() as conn:
        await rs.deregister(conn, registry.replica_id)

    async def back() -> bool:
        return await row(db, registry.replica_id) is not None

    await eventually(back, "the replica registering again")
    assert await registry.address_of(uuid.uuid4()) is None


async def test_address_of_finds_the_live_replicas_only(
    db: Database, registry: ReplicaRegistry
) -> None:
    other, dead = uuid.uuid4(), uuid.uuid4()
    async with db.write() as conn:
        await rs.register(conn, db.now(), other, "http://10.9.9.9:3000")
        await rs.register(conn, db.now() - dt.timedelta(seconds=61), dead, "http://10.0.0.0:1")
    assert await registry.address_of(registry.replica_id) == ADDRESS
    assert await registry.address_of(other) == "http://10.9.9.9:3000"
    assert await registry.address_of(dead) is None


async def test_replicas_of_one_database_accept_each_others_tokens(
    db: Database, registry: ReplicaRegistry
) -> None:
    other = ReplicaRegistry(db, uuid.uuid4(), "http://b", heartbeat_interval=60, stale_after=60)
    await other.start()
    try:
        assert other.secret == registry.secret
        assert other.caller(registry.token()) == registry.replica_id
        assert registry.caller(other.token()) == other.replica_id
        assert registry.caller(other.token() + "x") is None
    finally:
        await other.stop()
    # A token lasts a minute.
    token = registry.token()
    assert verify(registry.secret, token, db.now() + dt.timedelta(seconds=61)) is None


async def test_the_server_registers_its_worker_while_workers_run(
    db: Database, settings: Settings
) -> None:
    running = settings.model_copy(
        update={"workers_enabled": True, "internal_url": "http://10.4.4.4:3000"}
    )
    app = create_app(running, db)
    async with app.router.lifespan_context(app):
        registry: ReplicaRegistry = app.state.replicas
        assert registry.replica_id == app.state.worker.worker_id
        found = await row(db, registry.replica_id)
        assert found is not None and found[0] == "http://10.4.4.4:3000"
    assert await row(db, registry.replica_id) is None

    idle = create_app(settings, db)  # workers off: not a replica anyone calls
    async with idle.router.lifespan_context(idle):
        assert idle.state.replicas is None
    async with db.read() as conn:
        assert await rs.live(conn, db.now(), 60) == []


def test_the_internal_url_defaults_to_the_listen_address() -> None:
    assert Settings(http_address="10.0.0.5:3100").resolved_internal_url() == "http://10.0.0.5:3100"
    given = Settings(http_address="0.0.0.0:3000", internal_url="http://chatd-2.internal:3000/")
    assert given.resolved_internal_url() == "http://chatd-2.internal:3000"
    with pytest.raises(ValueError):
        Settings(internal_url="chatd-2:3000")
