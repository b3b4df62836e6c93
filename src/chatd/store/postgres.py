"""PostgreSQL through asyncpg's own pool and prepared-statement cache.

Statements are compiled by :mod:`chatd.store.sql` for SQLAlchemy's asyncpg dialect (numbered
``$n`` parameters with casts) and sent with asyncpg's public ``fetch`` and ``execute``, which
prepare each statement once per connection and keep it in the connection's statement cache.
JSON columns travel as text (SQLAlchemy's bind processor serialises them) and are decoded by a
codec set on every new connection.

A connection is handed back to the pool without asyncpg's state reset (a round trip each
time): chatd never changes session state, and a connection that comes back inside a
transaction (its block was cancelled) is rolled back first.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager

import asyncpg
import sqlalchemy as sa
from sqlalchemy.engine import Dialect, make_url

from chatd.store.errors import IntegrityError, StoreError, Unavailable
from chatd.store.sql import (
    Connection,
    Parameters,
    ParameterSets,
    Planner,
    Result,
    StatementObserver,
)

_ROWCOUNT = re.compile(r"(\d+)$")
_DRIVER_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError)


def dialect() -> Dialect:
    """SQLAlchemy's asyncpg dialect: ``$n`` parameters, the casts asyncpg needs."""
    return make_url("postgresql+asyncpg://").get_dialect()()


async def _init(conn: asyncpg.Connection) -> None:
    for name in ("json", "jsonb"):
        await conn.set_type_codec(
            name, schema="pg_catalog", encoder=str, decoder=json.loads, format="text"
        )


async def _reset(conn: asyncpg.Connection) -> None:
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


def translate(error: BaseException, conn: asyncpg.Connection | None = None) -> StoreError:
    """The store's exception for an asyncpg or socket error (on ``conn``, when known)."""
    if conn is not None and _closed(conn):
        return Unavailable(str(error) or type(error).__name__)
    if isinstance(error, asyncpg.IntegrityConstraintViolationError):
        return IntegrityError(str(error))
    if isinstance(error, asyncpg.PostgresError):
        return StoreError(str(error))
    return Unavailable(str(error) or type(error).__name__)


async def _answers(conn: asyncpg.Connection) -> bool:
    """The connection answers a round trip (the pre-ping)."""
    try:
        await conn.execute("SELECT 1")
    except _DRIVER_ERRORS:
        return False
    return True


def _closed(conn: asyncpg.Connection) -> bool:
    try:
        return bool(conn.is_closed())
    except asyncpg.InterfaceError:  # the pool took it back as it closed
        return True


class PgConnection(Connection):
    """One pooled asyncpg connection, in autocommit or inside a transaction."""

    dialect_name = "postgresql"

    def __init__(self, raw: asyncpg.Connection, planner: Planner) -> None:
        self.raw = raw
        self._planner = planner

    async def execute(self, statement: sa.Executable, parameters: ParameterSets = None) -> Result:
        if parameters is not None and not isinstance(parameters, Mapping):
            return await self._execute_many(statement, parameters)
        plan, sql, args = self._planner.prepare(statement, parameters)
        try:
            if plan.returns_rows:
                records = await self.raw.fetch(sql, *args)
                keys = list(records[0].keys()) if records else []
                return Result(plan.rows(keys, records) if records else [], len(records))
            status = await self.raw.execute(sql, *args)
        except _DRIVER_ERRORS as error:
            raise translate(error, self.raw) from error
        match = _ROWCOUNT.search(status)
        return Result([], int(match.group(1)) if match else -1)

    async def _execute_many(
        self, statement: sa.Executable, parameter_sets: Sequence[Parameters]
    ) -> Result:
        if not parameter_sets:
            return Result([], 0)
        sql, args = self._planner.prepare_many(statement, parameter_sets)
        try:
            await self.raw.executemany(sql, args)
        except _DRIVER_ERRORS as error:
            raise translate(error, self.raw) from error
        return Result([], len(args))


class PgPool:
    """asyncpg's pool over the server at ``dsn``, and the transactions chatd runs on it."""

    def __init__(
        self,
        dsn: str,
        *,
        size: int,
        pre_ping: bool,
        recycle: float,
        observers: list[StatementObserver],
    ) -> None:
        self._dsn = dsn
        self._size = size
        self._pre_ping = pre_ping
        self._recycle = recycle
        self._pool: asyncpg.Pool | None = None
        self._opening = asyncio.Lock()  # one pool, however many callers come first
        self.planner = Planner(dialect(), observers)

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._opening:
            if self._pool is None:
                try:
                    self._pool = await asyncpg.create_pool(
                        self._dsn,
                        min_size=0,
                        max_size=self._size,
                        max_inactive_connection_lifetime=self._recycle,
                        init=_init,
                        reset=_reset,
                    )
                except (asyncpg.PostgresError, OSError) as error:
                    raise translate(error) from error
            return self._pool

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[PgConnection]:
        """A connection in autocommit: each statement commits on its own."""
        pool = await self._get_pool()
        raw: asyncpg.Connection | None = None
        try:
            raw = await pool.acquire()
            if self._pre_ping and not await _answers(raw):
                # Closed as it failed: the pool opens a fresh one in its place (not pinged).
                await pool.release(raw)
                raw = None
                raw = await pool.acquire()
        except BaseException as error:  # cancelled too: the connection goes back
            if raw is not None:
                await pool.release(raw)
            if isinstance(error, _DRIVER_ERRORS):
                raise translate(error) from error
            raise
        try:
            yield PgConnection(raw, self.planner)
        finally:
            await pool.release(raw)

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[PgConnection]:
        """A transaction: committed when the block exits, rolled back on error."""
        async with self.connection() as conn:
            transaction = conn.raw.transaction()
            try:
                await transaction.start()
            except _DRIVER_ERRORS as error:
                raise translate(error, conn.raw) from error
            try:
                yield conn
            except BaseException:
                if not _closed(conn.raw):
                    try:
                        await transaction.rollback()
                    except _DRIVER_ERRORS as error:
                        raise translate(error, conn.raw) from error
                raise
            try:
                await transaction.commit()
            except _DRIVER_ERRORS as error:
                raise translate(error, conn.raw) from error

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
