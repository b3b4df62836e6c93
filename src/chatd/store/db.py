"""The one owner of database connections and their concurrency policy.

Statements are SQLAlchemy Core, compiled once per dialect (:mod:`chatd.store.sql`) and sent to
the driver by the store's own connections: asyncpg's pool on PostgreSQL
(:mod:`chatd.store.postgres`), threads on SQLite (:mod:`chatd.store.sqlite`). Nothing else in
chatd opens a connection.

- :meth:`Database.read` is a read block. On SQLite a deferred transaction on the reader thread
  (one snapshot); on PostgreSQL autocommit, each statement on its own (under READ COMMITTED a
  transaction gives each statement its own snapshot too, so BEGIN and COMMIT would only add
  round trips). ``offload=True`` marks a read that may scan many rows (SQLite gives it a
  thread of its own).
- :meth:`Database.write` is a write transaction: on SQLite under ``BEGIN IMMEDIATE`` on the
  writer thread, writers in this process queued on a lock; on PostgreSQL an ordinary
  transaction whose functions lock the rows they change (``SELECT ... FOR UPDATE``).
- :meth:`Database.write_one` is a write of exactly one statement: autocommit on PostgreSQL.
- :meth:`Database.run_read` and :meth:`Database.run_write` run a transaction function
  ``fn(conn, *args)``: on SQLite in one thread hop for the whole transaction.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from chatd.store.postgres import PgPool
from chatd.store.sql import Connection
from chatd.store.sqlite import SqliteDatabase

T = TypeVar("T")
Clock = Callable[[], dt.datetime]
StatementObserver = Callable[[str], None]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same for every replica.
MIGRATION_LOCK_KEY = 0x63686174  # "chat"
# PostgreSQL connections, all kept open once opened: a caller beyond them waits for one to
# come back. A connection opened for a peak and closed after it costs a backend process, the
# connection setup and a cold prepare of every statement it runs.
PG_POOL_SIZE = 50
# An idle PostgreSQL connection is closed after this long (a fresh one replaces it when needed).
PG_RECYCLE_SECONDS = 300.0


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Database:
    def __init__(
        self,
        url: str,
        *,
        clock: Clock = utcnow,
        pre_ping: bool = False,
        recycle: float = PG_RECYCLE_SECONDS,
        pool_size: int = PG_POOL_SIZE,
    ) -> None:
        self.url = url
        self.clock = clock
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self._observers: list[StatementObserver] = []
        self._sqlite: SqliteDatabase | None = None
        self._pg: PgPool | None = None
        if self.is_sqlite:
            self.sqlite_path = parsed.database or ""
            self._sqlite = SqliteDatabase(self.sqlite_path, self._observers)
        else:
            dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
            self._pg = PgPool(
                dsn, size=pool_size, pre_ping=pre_ping, recycle=recycle, observers=self._observers
            )

    def now(self) -> dt.datetime:
        return self.clock()

    @asynccontextmanager
    async def read(self, *, offload: bool = False) -> AsyncIterator[Connection]:
        """A read block (see the module); ``offload`` for one that may scan many rows."""
        if self._sqlite is not None:
            async with self._sqlite.read(scan=offload) as conn:
                yield conn
            return
        assert self._pg is not None
        async with self._pg.connection() as pg:
            yield pg

    @asynccontextmanager
    async def write(self) -> AsyncIterator[Connection]:
        """A write transaction: committed when the block exits, rolled back on error."""
        if self._sqlite is not None:
            async with self._sqlite.write() as conn:
                yield conn
            return
        assert self._pg is not None
        async with self._pg.transaction() as pg:
            yield pg

    @asynccontextmanager
    async def write_one(self) -> AsyncIterator[Connection]:
        """A write of exactly one statement, which is atomic on its own: on PostgreSQL it runs
        in autocommit (BEGIN and COMMIT would be two more round trips), on SQLite as
        :meth:`write`. A block that runs more than one statement must use :meth:`write`."""
        if self._sqlite is not None:
            async with self._sqlite.write() as conn:
                yield conn
            return
        assert self._pg is not None
        async with self._pg.connection() as pg:
            yield pg

    async def run_read(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """``fn(conn, *args)`` in a read block; its only awaits must be ``conn``'s statements."""
        if self._sqlite is not None:
            return await self._sqlite.run_read(fn, *args)
        async with self.read() as conn:
            return await fn(conn, *args)

    async def run_write(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """``fn(conn, *args)`` in a write transaction; its only awaits must be ``conn``'s
        statements (on SQLite it runs on the writer thread in one hop)."""
        if self._sqlite is not None:
            return await self._sqlite.run_write(fn, *args)
        async with self.write() as conn:
            return await fn(conn, *args)

    @contextmanager
    def observe(self, observer: StatementObserver) -> Iterator[None]:
        """Call ``observer(sql)`` before each statement runs, while the block lasts."""
        self._observers.append(observer)
        try:
            yield
        finally:
            self._observers.remove(observer)

    async def migrate(self) -> None:
        """Bring the schema to the newest revision (under an advisory lock on PostgreSQL)."""
        if self.is_sqlite:
            await asyncio.to_thread(_migrate_sqlite, self.sqlite_path)
        else:
            await _migrate_postgres(self.url)

    async def close(self) -> None:
        if self._sqlite is not None:
            await self._sqlite.close()
        if self._pg is not None:
            await self._pg.close()


def _migrate_sqlite(path: str) -> None:
    from chatd.store.migrate import upgrade

    engine = sa.create_engine(f"sqlite:///{path}", poolclass=NullPool)

    @sa.event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # BEGIN is sent below, not by the sqlite3 module
        dbapi_conn.execute("PRAGMA journal_mode=WAL")

    @sa.event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")

    try:
        with engine.begin() as conn:
            upgrade(conn)
    finally:
        engine.dispose()


async def _migrate_postgres(url: str) -> None:
    from sqlalchemy.ext.asyncio import create_async_engine

    from chatd.store.migrate import upgrade

    async_url = make_url(url).set(drivername="postgresql+asyncpg")
    engine = create_async_engine(async_url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            lock = sa.text("SELECT pg_advisory_xact_lock(:k)")
            await conn.execute(lock, {"k": MIGRATION_LOCK_KEY})
            await conn.run_sync(upgrade)
    finally:
        await engine.dispose()
