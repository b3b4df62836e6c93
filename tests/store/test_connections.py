"""The store's connections on both backends: rows, parameters, lists, errors, transactions."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid

import pytest
import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import pysqlite

from chatd.store.db import Database
from chatd.store.errors import IntegrityError, StoreError
from chatd.store.sql import (
    MAX_PLANS,
    Connection,
    MultipleResultsFound,
    NoResultFound,
    Planner,
    in_list,
)
from chatd.store.tables import organizations

pytestmark = pytest.mark.anyio

T0 = dt.datetime(2026, 1, 2, 3, 4, 5, 678901, tzinfo=dt.UTC)
_BY_ID = sa.select(organizations).where(organizations.c.id == sa.bindparam("org_id"))
_IN_LIST = (
    sa.select(organizations.c.name)
    .where(in_list(organizations.c.id, "ids"))
    .order_by(organizations.c.name)
)


async def add_orgs(db: Database, count: int) -> list[uuid.UUID]:
    ids = [uuid.uuid4() for _ in range(count)]
    async with db.write() as conn:
        await conn.execute(
            organizations.insert(),
            [
                {"id": i, "name": f"org {n:02}", "created_at": T0, "updated_at": T0}
                for n, i in enumerate(ids)
            ],
        )
    return ids


async def test_rows_come_back_typed_with_attribute_and_dict_access(db: Database) -> None:
    (org_id,) = await add_orgs(db, 1)
    async with db.read() as conn:
        row = (await conn.execute(_BY_ID, {"org_id": org_id})).one()
    assert row.id == org_id and isinstance(row.id, uuid.UUID)
    assert row.created_at == T0 and row.created_at.tzinfo is not None
    assert row.is_default is False
    assert row[0] == org_id and row.as_dict()["name"] == "org 00"
    assert set(row.as_dict()) == {c.name for c in organizations.columns}


async def test_result_helpers_count_their_rows(db: Database) -> None:
    ids = await add_orgs(db, 3)
    names = sa.select(organizations.c.name).order_by(organizations.c.name)
    async with db.read() as conn:
        assert (await conn.execute(names)).scalars().all() == ["org 00", "org 01", "org 02"]
        assert (await conn.execute(names)).scalar() == "org 00"
        with pytest.raises(MultipleResultsFound):
            (await conn.execute(names)).one_or_none()
        missing = await conn.execute(_BY_ID, {"org_id": uuid.uuid4()})
        assert missing.first() is None and missing.scalar_one_or_none() is None
        with pytest.raises(NoResultFound):
            missing.one()
        assert (await conn.execute(_BY_ID, {"org_id": ids[1]})).mappings()[0]["name"] == "org 01"


async def test_changed_rows_are_counted(db: Database) -> None:
    ids = await add_orgs(db, 3)
    async with db.write() as conn:
        result = await conn.execute(
            organizations.update()
            .where(in_list(organizations.c.id, "ids"))
            .values(description="x"),
            {"ids": ids[:2]},
        )
        assert result.rowcount == 2 and result.all() == []
        deleted = await conn.execute(organizations.delete().where(organizations.c.id == ids[2]))
        assert deleted.rowcount == 1


async def test_one_statement_serves_lists_of_every_length(db: Database) -> None:
    ids = await add_orgs(db, 6)
    sent: list[str] = []
    with db.observe(sent.append):
        async with db.read() as conn:
            for n in range(7):
                got = (await conn.execute(_IN_LIST, {"ids": ids[:n]})).scalars().all()
                assert got == [f"org {i:02}" for i in range(n)]
            unknown = (await conn.execute(_IN_LIST, {"ids": [uuid.uuid4()]})).all()
    assert unknown == [] and len(set(sent)) == 1
    excluded = (
        sa.select(sa.func.count())
        .select_from(organizations)
        .where(sa.not_(in_list(organizations.c.id, "ids")))
    )
    async with db.read() as conn:
        assert (await conn.execute(excluded, {"ids": ids[:4]})).scalar_one() == 2


async def test_a_literal_in_list_and_text_statements_run(db: Database) -> None:
    ids = await add_orgs(db, 3)
    async with db.read() as conn:
        literal = sa.select(organizations.c.name).where(organizations.c.id.in_(ids[1:]))
        assert sorted((await conn.execute(literal)).scalars()) == ["org 01", "org 02"]
        value = await conn.execute(sa.text("SELECT :x + 1 AS y"), {"x": 41})
        assert value.one().y == 42


async def test_a_constraint_refusal_is_an_integrity_error_and_changes_nothing(
    db: Database,
) -> None:
    (org_id,) = await add_orgs(db, 1)
    duplicate = {"id": uuid.uuid4(), "name": "org 00", "created_at": T0, "updated_at": T0}
    with pytest.raises(IntegrityError):
        async with db.write() as conn:
            await conn.execute(organizations.update().values(description="changed"))
            await conn.execute(organizations.insert(), duplicate)
    async with db.read() as conn:
        row = (await conn.execute(_BY_ID, {"org_id": org_id})).one()
    assert row.description == ""
    with pytest.raises(StoreError):
        async with db.read() as conn:
            await conn.execute(sa.text("SELECT * FROM no_such_table"))


async def _rename(conn: Connection, org_id: uuid.UUID, name: str) -> int:
    result = await conn.execute(
        organizations.update().where(organizations.c.id == org_id).values(name=name)
    )
    await conn.execute(
        organizations.update()
        .where(organizations.c.id == org_id)
        .values(description=f"was renamed to {name}")
    )
    return result.rowcount


async def _read_name(conn: Connection, org_id: uuid.UUID) -> str:
    return str((await conn.execute(_BY_ID, {"org_id": org_id})).one().name)


async def test_transaction_functions_commit_what_they_return_after(db: Database) -> None:
    (org_id,) = await add_orgs(db, 1)
    assert await db.run_write(_rename, org_id, "renamed") == 1
    assert await db.run_read(_read_name, org_id) == "renamed"


async def _rename_then_fail(conn: Connection, org_id: uuid.UUID) -> None:
    await _rename(conn, org_id, "never")
    raise LookupError("rolled back")


async def test_a_transaction_function_that_raises_changes_nothing(db: Database) -> None:
    (org_id,) = await add_orgs(db, 1)
    with pytest.raises(LookupError):
        await db.run_write(_rename_then_fail, org_id)
    assert await db.run_read(_read_name, org_id) == "org 00"


async def _rename_and_sleep(conn: Connection, org_id: uuid.UUID) -> None:
    await _rename(conn, org_id, "never")
    await asyncio.sleep(0)


async def test_a_transaction_function_may_await_only_its_statements(db: Database) -> None:
    """On SQLite the function runs on the writer thread, where nothing else can be awaited."""
    if not db.is_sqlite:
        pytest.skip("on PostgreSQL a transaction function is an ordinary coroutine")
    (org_id,) = await add_orgs(db, 1)
    with pytest.raises(RuntimeError, match="awaited something other than the database"):
        await db.run_write(_rename_and_sleep, org_id)
    assert await db.run_read(_read_name, org_id) == "org 00"


async def test_a_cancelled_block_rolls_back_and_leaves_its_connection_usable(
    db: Database,
) -> None:
    (org_id,) = await add_orgs(db, 1)
    inside = asyncio.Event()

    async def write_then_hang() -> None:
        async with db.write() as conn:
            await _rename(conn, org_id, "cancelled")
            inside.set()
            await asyncio.Event().wait()

    task = asyncio.create_task(write_then_hang())
    await asyncio.wait_for(inside.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert await db.run_write(_rename, org_id, "after") == 1
    assert await db.run_read(_read_name, org_id) == "after"


async def test_a_block_cancelled_with_a_statement_in_flight_leaves_the_next_block_whole(
    db: Database,
) -> None:
    """The cancelled block's statement may still run on the thread after the next block began:
    it must not take that block's BEGIN, or the next block's statements would each commit on
    their own and its rollback would undo nothing."""
    (org_id,) = await add_orgs(db, 1)
    for _ in range(20):

        async def cancelled() -> None:
            async with db.write() as conn:
                await _rename(conn, org_id, "cancelled")

        task = asyncio.create_task(cancelled())
        await asyncio.sleep(0)  # its first statement is on its way to the thread
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        with pytest.raises(LookupError):
            async with db.write() as conn:
                await _rename(conn, org_id, "rolled back")
                raise LookupError
    async with db.read() as conn:
        row = (await conn.execute(_BY_ID, {"org_id": org_id})).one()
    assert (row.name, row.description) == ("org 00", "")


def test_plans_of_statements_built_per_call_do_not_pile_up() -> None:
    """A statement built once keeps its plan while it is used; one built per call does not
    stay: the planner holds at most MAX_PLANS."""
    planner = Planner(pysqlite.dialect(), [])
    plan = planner.plan(_BY_ID, {"org_id": None})
    for i in range(MAX_PLANS * 2):
        per_call = sa.select(organizations.c.name).where(organizations.c.name == f"n{i}")
        planner.plan(per_call, None)
        if i % 50 == 0:
            assert planner.plan(_BY_ID, {"org_id": None}) is plan
    assert len(planner) == MAX_PLANS
