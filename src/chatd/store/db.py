"""The one owner of database connections and their concurrency policy.

Reads run in a plain (deferred) transaction on SQLite, which gives them one snapshot; on
PostgreSQL in autocommit, each statement on its own (under READ COMMITTED a transaction gives
each statement its own snapshot too, so BEGIN and COMMIT would only add round trips). Writes
run through :meth:`Database.write`, which on SQLite takes the writer lock up front (``BEGIN
IMMEDIATE``) and serialises writers inside the process, and on PostgreSQL is an ordinary
transaction whose functions lock the rows they change (``SELECT ... FOR UPDATE``). A write of
one statement may use :meth:`Database.write_one` instead (autocommit on PostgreSQL). Nothing
else in chatd creates engines or connections.

On SQLite, statements run on the event loop's thread (:mod:`chatd.store.sqlite_inline`), except
reads opened with ``offload=True`` (listing and searching chats), which run on aiosqlite's
thread so a long scan does not hold the loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from chatd.store.pg_direct import direct_engine
from chatd.store.sqlite_inline import create_inline_engine

Clock = Callable[[], dt.datetime]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same for every replica.
MIGRATION_LOCK_KEY = 0x63686174  # "chat"
SQLITE_POOL_SIZE = 64
# PostgreSQL connections, all kept open: a caller beyond them waits for one to come back. A
# connection opened for a peak and closed after it costs a backend process, the connection
# setup and a cold prepare of every statement it runs: 50 kept + 20 such overflow opened ~50
# connections per hundred turns at 100 chats, and ran ~12% slower than none.
PG_POOL_SIZE = 50
PG_POOL_OVERFLOW = 0


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Database:
    def __init__(self, url: str, *, clock: Clock = utcnow, echo: bool = False) -> None:
        self.url = url
        self.clock = clock
        self.is_sqlite = url.startswith("sqlite")
        self._write_lock = asyncio.Lock()
        if not self.is_sqlite:
            self.engine: AsyncEngine = direct_engine(
                create_async_engine(
                    url,
                    echo=echo,
                    pool_size=PG_POOL_SIZE,
                    max_overflow=PG_POOL_OVERFLOW,
                    # The connection used last goes out first: asyncpg prepares each statement once
                    # per connection, and a few hot connections have them all prepared (round-robin
                    # over fifty cost ~6% more instructions per turn at 10 chats).
                    pool_use_lifo=True,
                )
            )
            # The same pool; its connections are switched to autocommit as they are checked
            # out (and back on return), which costs about half what switching an open
            # AsyncConnection does.
            self._autocommit_engine = self.engine.execution_options(isolation_level="AUTOCOMMIT")
            self._offload_engine = self.engine
        else:
            # Every running turn may hold a short transaction at once: keep enough connections
            # that the pool does not open and close overflow ones (PRAGMAs, first-use setup)
            # under load; an idle SQLite connection costs little.
            self.engine = self._sqlite_setup(
                create_inline_engine(
                    url, echo=echo, pool_size=SQLITE_POOL_SIZE, max_overflow=SQLITE_POOL_SIZE
                )
            )
            self._offload_engine = self._sqlite_setup(create_async_engine(url, echo=echo))

    def _sqlite_setup(self, engine: AsyncEngine) -> AsyncEngine:
        @event.listens_for(engine.sync_engine, "connect")
        def _on_connect(dbapi_conn: Any, _record: Any) -> None:
            # Take over transaction control from the sqlite3 module (legacy mode would
            # silently let two writers claim the same row). Inline connections are opened so.
            if dbapi_conn.isolation_level is not None:
                dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA busy_timeout=5000")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.close()

        @event.listens_for(engine.sync_engine, "begin")
        def _on_begin(conn: Any) -> None:
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            # On the DBAPI cursor: a statement through SQLAlchemy cost ~4x more than this.
            cursor = conn.connection.cursor()
            try:
                cursor.execute(f"BEGIN {mode}")
            finally:
                cursor.close()

        return engine

    def now(self) -> dt.datetime:
        return self.clock()

    @asynccontextmanager
    async def read(self, *, offload: bool = False) -> AsyncIterator[AsyncConnection]:
        """Reads (see the module's docstring); ``offload`` for one that may scan many rows."""
        if not self.is_sqlite:
            async with self._autocommit() as conn:
                yield conn
            return
        engine = self._offload_engine if offload else self.engine
        async with engine.connect() as conn, conn.begin():
            yield conn

    @asynccontextmanager
    async def write(self) -> AsyncIterator[AsyncConnection]:
        """A write transaction: committed when the block exits, rolled back on error."""
        if not self.is_sqlite:
            async with self.engine.begin() as conn:
                yield conn
            return
        async with self._write_lock, self.engine.connect() as conn:
            conn = await conn.execution_options(sqlite_begin="IMMEDIATE")
            async with conn.begin():
                yield conn

    @asynccontextmanager
    async def write_one(self) -> AsyncIterator[AsyncConnection]:
        """A write of exactly one statement, which is atomic on its own: on PostgreSQL it runs
        in autocommit (BEGIN and COMMIT would be two more round trips), on SQLite as
        :meth:`write` (under the writer lock). A block that runs more than one statement
        must use :meth:`write`."""
        if not self.is_sqlite:
            async with self._autocommit() as conn:
                yield conn
            return
        async with self.write() as conn:
            yield conn

    @asynccontextmanager
    async def _autocommit(self) -> AsyncIterator[AsyncConnection]:
        """A PostgreSQL connection on which each statement commits on its own."""
        async with self._autocommit_engine.connect() as conn:
            yield conn

    async def migrate(self) -> None:
        """Bring the schema to the newest revision (under an advisory lock on PostgreSQL)."""
        from chatd.store.migrate import upgrade

        async with self.write() as conn:
            if not self.is_sqlite:
                await conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY}
                )
            await conn.run_sync(upgrade)

    async def close(self) -> None:
        await self.engine.dispose()
        if self._offload_engine is not self.engine:
            await self._offload_engine.dispose()
