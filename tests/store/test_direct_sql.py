"""Plain statements sent straight to the driver (chatd.store.direct_sql) give what
SQLAlchemy's own path gives, on SQLite and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.ext.asyncio import engine as async_engine

from chatd.store import users as user_store
from chatd.store.db import Database
from chatd.store.tables import organization_members, users

pytestmark = pytest.mark.anyio

T0 = dt.datetime(2026, 11, 30, 12, 0, tzinfo=dt.UTC)


# For what only PostgreSQL has: the greenlet, asyncpg's pool, a backend to terminate.
postgres_only = pytest.mark.parametrize("backend", ["postgres"], indirect=True)


@pytest.fixture
async def plain(db: Database) -> AsyncIterator[AsyncEngine]:
    """SQLAlchemy's own asyncio engine on the same database (aiosqlite or asyncpg)."""
    engine = create_async_engine(db.url)
    try:
        yield engine
    finally:
        await engine.dispose()


async def _user(db: Database, name: str, at: dt.datetime = T0) -> uuid.UUID:
    async with db.write() as conn:
        org = await user_store.ensure_default_org(conn, at)
        user_id = await user_store.insert_user(
            conn,
            now=at,
            email=f"{name}@example.com",
            username=name,
            name=name.title(),
            hashed_password="",
            is_owner=False,
        )
        await conn.execute(
            organization_members.insert().values(
                organization_id=org, user_id=user_id, roles=["member", name], created_at=at
            )
        )
    return user_id


def _member_rows() -> sa.Select[Any]:
    return (
        sa.select(users, organization_members.c.roles, users.c.name.label("display"))
        .join(organization_members, organization_members.c.user_id == users.c.id)
        .order_by(users.c.username)
    )


async def _both(db: Database, plain: AsyncEngine, run: Any) -> tuple[Any, Any]:
    async with db.read() as conn:
        assert type(conn) is not AsyncConnection
        direct = await run(conn)
    async with plain.connect() as conn:
        assert type(conn) is AsyncConnection
        reference = await run(conn)
    return direct, reference


async def test_rows_keys_and_types_match_sqlalchemys_path(db: Database, plain: AsyncEngine) -> None:
    ids = [await _user(db, name) for name in ("ann", "bob", "cat")]
    by_id = _member_rows().where(users.c.id == sa.bindparam("user_id"))

    async def run(conn: Any) -> list[Any]:
        everyone = await conn.execute(_member_rows())
        one = await conn.execute(by_id, {"user_id": ids[1]})
        # IN lists are expanded per call; literal values are bound from the statement.
        some = await conn.execute(_member_rows().where(users.c.id.in_(ids[:2])))
        none = await conn.execute(_member_rows().where(users.c.username == "nobody"))
        return [
            list(everyone.keys()),
            [tuple(r) for r in everyone],
            dict(one.mappings().one()),
            [r.username for r in some],
            none.first(),
        ]

    direct, reference = await _both(db, plain, run)
    assert direct == reference
    keys, rows, one, some, none = direct
    assert "display" in keys and "roles" in keys
    assert one["roles"] == ["member", "bob"]  # JSONB decoded
    assert one["created_at"] == T0 and one["created_at"].tzinfo is not None  # UTCDateTime
    assert one["last_seen_at"] is None
    assert some == ["ann", "bob"] and none is None


async def test_updates_and_deletes_report_rowcount_and_returning(
    db: Database, plain: AsyncEngine
) -> None:
    for name in ("ann", "bob", "cat", "dan"):
        await _user(db, name)
    later = T0 + dt.timedelta(hours=1)

    async def run(conn: Any) -> list[Any]:
        renamed = await conn.execute(
            users.update().where(users.c.username.in_(["ann", "bob"])).values(updated_at=later)
        )
        returned = await conn.execute(
            users.update()
            .where(users.c.username == "cat")
            .values(name="Cat!")
            .returning(users.c.name, users.c.updated_at)
        )
        gone = await conn.execute(users.delete().where(users.c.username == "nobody"))
        count = await conn.scalar(sa.select(sa.func.count()).select_from(users))
        return [renamed.rowcount, returned.all(), gone.rowcount, count]

    direct, reference = await _both(db, plain, run)
    assert direct == reference == [2, [("Cat!", T0)], 0, 4]


async def test_plain_statements_skip_sqlalchemys_execute_and_text_still_works(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_id = await _user(db, "ann")
    executed: list[object] = []
    real_execute = Connection.execute

    def counting_execute(self: Connection, statement: Any, *args: Any, **kw: Any) -> Any:
        executed.append(statement)
        return real_execute(self, statement, *args, **kw)

    monkeypatch.setattr(Connection, "execute", counting_execute)
    async with db.read() as conn:
        row = (await conn.execute(sa.select(users).where(users.c.id == user_id))).one()
        assert row.username == "ann" and row.is_owner is False
        await conn.execute(users.update().where(users.c.id == user_id).values(name="Ann"))
        assert executed == []
        assert (await conn.execute(sa.text("SELECT 41 + 1"))).scalar_one() == 42
        assert len(executed) == 1


@postgres_only
async def test_postgres_statements_checkout_and_return_take_no_greenlet(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    user_id = await _user(db, "ann")  # leaves idle connections in the pool
    spawned: list[object] = []
    real_spawn = async_engine.greenlet_spawn  # type: ignore[attr-defined]

    async def counting_spawn(fn: Any, *args: Any, **kw: Any) -> Any:
        spawned.append(getattr(fn, "__name__", fn))
        return await real_spawn(fn, *args, **kw)

    monkeypatch.setattr(async_engine, "greenlet_spawn", counting_spawn)
    for _ in range(3):
        async with db.read() as conn:
            assert await conn.scalar(sa.select(users.c.name).where(users.c.id == user_id))
        async with db.write_one() as conn:
            await conn.execute(users.update().values(name="Ann"))
    assert spawned == []
    async with db.write() as conn:  # a transaction's BEGIN and COMMIT still take one each
        await conn.execute(users.update().values(name="Ann"))
    assert spawned == ["begin", "__exit__"]  # the commit, from the transaction block's exit


async def test_a_failing_statement_raises_sqlalchemys_error_and_rolls_back(db: Database) -> None:
    await _user(db, "ann")
    with pytest.raises(sa.exc.IntegrityError) as caught:
        async with db.write() as conn:
            await conn.execute(users.update().values(name="Changed"))
            await conn.execute(
                users.insert().values(
                    id=uuid.uuid4(),
                    email="ann@example.com",
                    username="ann2",
                    created_at=T0,
                    updated_at=T0,
                )
            )
    assert "uq_users_email" in str(caught.value) or "users.email" in str(caught.value)
    async with db.read() as conn:
        names = (await conn.execute(sa.select(users.c.name))).scalars().all()
    assert names == ["Ann"]  # the update in the same transaction was rolled back


async def test_statements_of_a_write_share_its_transaction(db: Database) -> None:
    await _user(db, "ann")

    class Abort(Exception):
        pass

    with pytest.raises(Abort):
        async with db.write() as conn:
            await conn.execute(users.update().values(name="Changed"))
            seen = await conn.scalar(sa.select(users.c.name))
            assert seen == "Changed"  # its own change is visible inside
            async with db.read() as other:  # and not outside, before the commit
                assert await other.scalar(sa.select(users.c.name)) == "Ann"
            raise Abort
    async with db.read() as conn:
        assert await conn.scalar(sa.select(users.c.name)) == "Ann"


@postgres_only
async def test_a_dropped_connection_is_invalidated_and_replaced(db: Database) -> None:
    await _user(db, "ann")
    async with db.read() as conn:
        pid = await conn.scalar(sa.select(sa.func.pg_backend_pid()))
        async with db.write_one() as killer:
            await killer.execute(sa.select(sa.func.pg_terminate_backend(pid)))
        with pytest.raises(sa.exc.DBAPIError) as caught:
            await conn.execute(sa.select(users.c.name))
        assert caught.value.connection_invalidated
    for _ in range(3):  # every pooled connection still works, the dropped one replaced
        async with db.read() as conn:
            assert await conn.scalar(sa.select(users.c.name)) == "Ann"


async def test_statements_observed_by_cursor_events_are_still_seen(db: Database) -> None:
    await _user(db, "ann")
    seen: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    sa.event.listen(db.engine.sync_engine, "before_cursor_execute", record)
    try:
        async with db.read() as conn:
            await conn.execute(sa.select(users.c.name))
        async with db.write() as conn:
            await conn.execute(users.update().values(name="Changed"))
    finally:
        sa.event.remove(db.engine.sync_engine, "before_cursor_execute", record)
    async with db.read() as conn:
        await conn.execute(sa.select(users.c.id))
    assert [s.split()[0] for s in seen] == ["SELECT", "UPDATE"]
