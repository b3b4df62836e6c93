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
- :meth:`Database.run_read`, :meth:`Database.run_write` and :meth:`Database.run_write_one`
  run a transaction function ``fn(conn, *args)``: on SQLite in one thread hop for the whole
  transaction. The request and turn paths use them; a block suits code that awaits other
  things between its statements.

Notifications (:mod:`chatd.store.notify`) sent in a SQLite write transaction are handed to
the sinks added with :meth:`Database.add_notification_sink` once it has committed (PostgreSQL
delivers its own). :meth:`Database.open_listener` opens the dedicated PostgreSQL connection
that LISTENs (:mod:`chatd.store.listener`), the one connection not taken from the pool.

It also holds the deployment's :class:`~chatd.secretbox.SecretBox`, the key of the secrets at
rest in this database: :meth:`Database.migrate` seals what an older chatd left in plain text,
and the store seals and opens keys with it.

A SQLite file is created before the first connection, mode 0600 (SQLite gives its ``-wal`` and
``-shm`` files the main file's mode); files an older chatd made readable to others are
narrowed to 0600.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import functools
import os
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from pathlib import Path
from typing import Any, TypeVar

import sqlalchemy as sa
import structlog
from sqlalchemy.engine import make_url
from sqlalchemy.pool import NullPool

from chatd.private_files import PRIVATE_FILE_MODE, narrow, open_private
from chatd.secretbox import SecretBox
from chatd.store.errors import StoreError
from chatd.store.listener import NotificationHandler, PgListener
from chatd.store.postgres import PgPool
from chatd.store.sql import Connection, StatementObserver
from chatd.store.sqlite import SqliteDatabase

log = structlog.get_logger(__name__)

T = TypeVar("T")
Clock = Callable[[], dt.datetime]
# Called with each (channel, payload) a SQLite write transaction notified, after its commit.
NotificationSink = Callable[[str, bytes], None]

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same for every replica.
MIGRATION_LOCK_KEY = 0x63686174  # "chat"
# PostgreSQL connections, all kept open once opened: a caller beyond them waits for one to
# come back. A connection opened for a peak and closed after it costs a backend process, the
# connection setup and a cold prepare of every statement it runs.
PG_POOL_SIZE = 50
# An idle PostgreSQL connection is closed after this long (a fresh one replaces it when needed).
PG_RECYCLE_SECONDS = 300.0
# How long opening the listener's connection, or a statement on it, may take.
LISTENER_CONNECT_TIMEOUT = 10.0


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
        self,
        url: str,
        *,
        secrets: SecretBox,
        clock: Clock = utcnow,
        pre_ping: bool = False,
        recycle: float = PG_RECYCLE_SECONDS,
        pool_size: int = PG_POOL_SIZE,
    ) -> None:
        self.url = url
        self.secrets = secrets
        self.clock = clock
        parsed = make_url(url)
        self.is_sqlite = parsed.get_backend_name() == "sqlite"
        self._observers: list[StatementObserver] = []
        self._sqlite: SqliteDatabase | None = None
        self._pg: PgPool | None = None
        self._pg_dsn = ""
        self._sinks: list[NotificationSink] = []
        # The replica this process is (its worker's id): named in the event hints its write
        # transactions send (chatd.store.stream_log), so that it ignores its own.
        self.origin: uuid.UUID = uuid.uuid4()
        if self.is_sqlite:
            self.sqlite_path = parsed.database or ""
            path = sqlite_path(url)
            if path is not None:
                create_sqlite_file(path)
            self._sqlite = SqliteDatabase(self.sqlite_path, self._observers)
        else:
            dsn = parsed.set(drivername="postgresql").render_as_string(hide_password=False)
            self._pg_dsn = dsn
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
            notifications: list[tuple[str, bytes]] = []
            async with self._sqlite.write() as conn:
                conn.notifications = notifications
                conn.origin = self.origin
                yield conn
            self._hand_off(notifications)
            return
        assert self._pg is not None
        async with self._pg.transaction() as pg:
            pg.origin = self.origin
            yield pg

    @asynccontextmanager
    async def write_one(self) -> AsyncIterator[Connection]:
        """A write of exactly one statement, which is atomic on its own: on PostgreSQL it runs
        in autocommit (BEGIN and COMMIT would be two more round trips), on SQLite as
        :meth:`write`. A block that runs more than one statement must use :meth:`write`."""
        if self._sqlite is not None:
            async with self.write() as conn:
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
            return await self._run_sqlite_write(fn, *args)
        async with self.write() as conn:
            return await fn(conn, *args)

    async def run_write_one(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """:meth:`run_write` for a function of exactly one statement: autocommit on PostgreSQL
        (as :meth:`write_one`)."""
        if self._sqlite is not None:
            return await self._run_sqlite_write(fn, *args)
        async with self.write_one() as conn:
            return await fn(conn, *args)

    async def _run_sqlite_write(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        assert self._sqlite is not None
        notifications: list[tuple[str, bytes]] = []

        @functools.wraps(fn)
        async def carrying(conn: Connection, *args: Any) -> T:
            conn.notifications = notifications
            conn.origin = self.origin
            return await fn(conn, *args)

        result = await self._sqlite.run_write(carrying, *args)
        self._hand_off(notifications)
        return result

    def add_notification_sink(self, sink: NotificationSink) -> None:
        """Call ``sink(channel, payload)`` with each notification a SQLite write transaction
        sent, once it has committed, in the order sent (on PostgreSQL it is never called: the
        server delivers notifications to its listeners)."""
        self._sinks.append(sink)

    def remove_notification_sink(self, sink: NotificationSink) -> None:
        self._sinks.remove(sink)

    def _hand_off(self, notifications: list[tuple[str, bytes]]) -> None:
        for channel, payload in notifications:
            for sink in list(self._sinks):
                try:
                    sink(channel, payload)
                except Exception:  # the commit stands; one sink must not stop the others
                    log.exception("a notification sink failed", channel=channel)

    async def open_listener(self, handler: NotificationHandler) -> PgListener:
        """A new dedicated connection for LISTEN (PostgreSQL only), outside the pool; it calls
        ``handler(channel, payload)`` for each notification. The caller closes it."""
        if self._pg is None:
            raise StoreError("LISTEN needs PostgreSQL")
        return await PgListener.connect(self._pg_dsn, handler, seconds=LISTENER_CONNECT_TIMEOUT)

    @contextmanager
    def observe(self, observer: StatementObserver) -> Iterator[None]:
        """Call ``observer(sql)`` before each statement runs, while the block lasts."""
        self._observers.append(observer)
        try:
            yield
        finally:
            self._observers.remove(observer)

    async def migrate(self) -> None:
        """Bring the schema to the newest revision (under an advisory lock on PostgreSQL), then
        seal the secrets an older chatd stored in plain text.

        Raises :class:`~chatd.store.secret_columns.UnknownSecretKeys` (and seals nothing)
        when stored secrets were sealed under a key this process does not hold: a replica
        started with another key would otherwise add values the others cannot open.
        """
        if self.is_sqlite:
            await asyncio.to_thread(_migrate_sqlite, self.sqlite_path)
        else:
            await _migrate_postgres(self.url)
        await self._seal_plaintext()

    async def _seal_plaintext(self) -> None:
        from chatd.store.secret_columns import check_keys, seal_plaintext

        async with self.write() as conn:
            if not self.is_sqlite:
                lock = sa.text("SELECT pg_advisory_xact_lock(:k)")
                await conn.execute(lock, {"k": MIGRATION_LOCK_KEY})
            await check_keys(conn, self.secrets)
            if not self.is_sqlite:
                sealed = await seal_plaintext(conn, self.secrets)
            else:
                # The plain text a sealed value replaces is zeroed, not left in free space.
                secure = (await conn.execute(sa.text("PRAGMA secure_delete"))).scalar_one()
                await conn.execute(sa.text("PRAGMA secure_delete=ON"))
                try:
                    sealed = await seal_plaintext(conn, self.secrets)
                finally:
                    await conn.execute(sa.text(f"PRAGMA secure_delete={int(secure)}"))
        if sealed:
            log.info("sealed provider keys stored in plain text", count=sealed)
            if self._sqlite is not None and not await self._sqlite.checkpoint():
                log.warning("could not empty the SQLite WAL after sealing plain-text keys")

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
