"""The one owner of database connections and their concurrency policy.

Reads run in a plain (deferred) transaction on SQLite, which gives them one snapshot; on
PostgreSQL in autocommit, each statement on its own (under READ COMMITTED a transaction gives
each statement its own snapshot too, so BEGIN and COMMIT would only add round trips). Writes
run through :meth:`Database.write`, which on SQLite takes the writer lock up front (``BEGIN
IMMEDIATE``) and serialises writers inside the process, and on PostgreSQL is an ordinary
transaction whose functions lock the rows they change (``SELECT ... FOR UPDATE``). A write of
one statement may use :meth:`Database.write_one` instead (autocommit on PostgreSQL). Nothing
else in chatd creates engines or connections.

It also holds the deployment's :class:`~chatd.secretbox.SecretBox`, the key of the secrets at
rest in this database: :meth:`Database.migrate` seals what an older chatd left in plain text,
and the store seals and opens keys with it.

A SQLite file is created before the first connection, mode 0600 (SQLite gives its ``-wal`` and
``-shm`` files the main file's mode); files an older chatd made readable to others are
narrowed to 0600.

On SQLite, statements run on the event loop's thread (:mod:`chatd.store.sqlite_inline`), except
reads opened with ``offload=True`` (listing and searching chats), which run on aiosqlite's
thread so a long scan does not hold the loop.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import structlog
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from chatd.private_files import PRIVATE_FILE_MODE, narrow, open_private
from chatd.secretbox import SecretBox
from chatd.store.pg_direct import direct_engine
from chatd.store.sqlite_inline import create_inline_engine

log = structlog.get_logger(__name__)

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


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL (None: in memory, or not SQLite)."""
    if not url.startswith("sqlite"):
        return None
    database = sa.engine.make_url(url).database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def create_sqlite_file(path: Path) -> None:
    """The database file, created 0600 when missing (an empty file is an empty database)."""
    if not path.parent.is_dir():
        return  # SQLite reports the missing directory on the first connection
    os.close(open_private(path, os.O_RDWR))
    for suffix in ("-wal", "-shm", "-journal"):
        narrow(path.with_name(path.name + suffix), PRIVATE_FILE_MODE)


class Database:
    def __init__(
        self, url: str, *, secrets: SecretBox, clock: Clock = utcnow, echo: bool = False
    ) -> None:
        self.url = url
        self.secrets = secrets
        self.clock = clock
        self.is_sqlite = url.startswith("sqlite")
        path = sqlite_path(url)
        if path is not None:
            create_sqlite_file(path)
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
        """Bring the schema to the newest revision and seal the secrets an older chatd stored
        in plain text, in one transaction (under an advisory lock on PostgreSQL).

        Raises :class:`~chatd.store.secret_columns.UnknownSecretKeys` (and changes nothing)
        when stored secrets were sealed under a key this process does not hold: a replica
        started with another key would otherwise add values the others cannot open.
        """
        from chatd.store.migrate import upgrade
        from chatd.store.secret_columns import check_keys, seal_plaintext

        async with self.write() as conn:
            if not self.is_sqlite:
                await conn.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": MIGRATION_LOCK_KEY}
                )
            await conn.run_sync(upgrade)
            await check_keys(conn, self.secrets)
            if self.is_sqlite:
                # The plain text a sealed value replaces is zeroed, not left in free space.
                secure = (await conn.execute(sa.text("PRAGMA secure_delete"))).scalar_one()
                await conn.execute(sa.text("PRAGMA secure_delete=ON"))
            sealed = await seal_plaintext(conn, self.secrets)
            if self.is_sqlite:
                await conn.execute(sa.text(f"PRAGMA secure_delete={int(secure)}"))
        if sealed:
            log.info("sealed provider keys stored in plain text", count=sealed)
            if self.is_sqlite:
                await self._checkpoint()

    async def _checkpoint(self) -> None:
        """Copy the WAL into the database file and empty it (its old frames may hold page
        images with plain text)."""
        async with self.read() as conn:
            busy = (await conn.execute(sa.text("PRAGMA wal_checkpoint(TRUNCATE)"))).first()
        if busy is None or busy[0]:
            log.warning("could not empty the SQLite WAL after sealing plain-text keys")

    async def close(self) -> None:
        await self.engine.dispose()
        if self._offload_engine is not self.engine:
            await self._offload_engine.dispose()
