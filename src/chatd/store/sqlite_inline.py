"""SQLite for the asyncio engine, run on the event loop's own thread.

SQLAlchemy's aiosqlite dialect sends each DBAPI call (cursor, execute, fetch, close, commit) to
aiosqlite's worker thread and waits for the answer through the event loop, from inside a
greenlet. Measured here, a read transaction with one primary-key lookup cost ~750 µs of CPU
that way, where SQLite itself needs a few µs; a turn (~50 statements in ~16 transactions)
spent most of its CPU on those hops. Embedded SQLite answers chatd's statements (lookups by key
or index, small inserts and updates) in microseconds, so :class:`InlineSQLiteDialect` is the
plain ``sqlite3`` dialect declared usable by the asyncio engine, and
:class:`InlineAsyncConnection` runs statements straight on the sync connection (no greenlet:
nothing ever waits). Plain statements (:func:`chatd.store.direct_sql.plan`) skip SQLAlchemy's
execution context too and go to the ``sqlite3`` cursor: a read by primary key, checkout to
return, went from ~60 to ~48 µs of CPU.

The price: while a statement runs, the event loop waits. Statements that can take long (chat
listing and search over many chats) go through :meth:`chatd.store.db.Database.read` with
``offload=True``, which uses an aiosqlite engine on its own thread.

Lock waits do not hold the loop either: writers are serialised in-process before ``BEGIN
IMMEDIATE`` (:meth:`~chatd.store.db.Database.write`) and the data dir holds one replica, so the
busy timeout only matters against another process (a backup tool, say), and WAL readers never
wait for writers.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import pool
from sqlalchemy.dialects import registry
from sqlalchemy.dialects.sqlite.pysqlite import SQLiteDialect_pysqlite
from sqlalchemy.engine import URL, Connection, Transaction, make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine
from sqlalchemy.pool import QueuePool

from chatd.store.direct_sql import plan

DRIVER = "chatd_inline"


class InlineSQLiteDialect(SQLiteDialect_pysqlite):
    driver = DRIVER
    is_async = True  # for AsyncEngine: every call completes without waiting
    supports_statement_cache = True

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        return pool.AsyncAdaptedQueuePool

    def create_connect_args(self, url: URL) -> Any:
        args, kwargs = super().create_connect_args(url)
        # chatd issues BEGIN itself (legacy mode would silently let two writers claim the same
        # row); connections may be closed from the pool's finaliser on another thread.
        kwargs["isolation_level"] = None
        kwargs["check_same_thread"] = False
        return args, kwargs


class InlineAsyncConnection(AsyncConnection):
    """The asyncio connection API over calls that complete at once.

    Statements, transactions and closing call the sync connection directly, and so does
    checking out an idle pooled connection. Opening a new connection (its first-use setup is
    guarded by an asyncio lock) or waiting for one when all are in use takes the greenlet path.
    """

    async def start(self, is_ctxmanager: bool = False) -> InlineAsyncConnection:
        pool = self.sync_engine.pool
        if self.sync_connection is None and isinstance(pool, QueuePool) and pool.checkedin():
            # An idle connection is taken without waiting (nor connecting: see the class).
            self.sync_connection = self._assign_proxied(self.sync_engine.connect())
            return self
        await super().start(is_ctxmanager)
        return self

    async def execute(
        self,
        statement: Any,
        parameters: Any = None,
        *,
        execution_options: Any = None,
    ) -> Any:
        conn = self._proxied
        planned = plan(conn, statement, parameters, execution_options)
        if planned is None:
            return conn.execute(statement, parameters, execution_options=execution_options)
        # Plain statements go to the sqlite3 cursor (chatd.store.direct_sql): SQLAlchemy's
        # execution context and cursor result cost ~25 µs a statement, SQLite a few.
        cursor = conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
        try:
            cursor.execute(planned.sql, planned.args)
            rows = cursor.fetchall() if planned.metadata is not None else ()
        except Exception as error:
            conn._handle_dbapi_exception(error, planned.sql, planned.args, cursor, None)
            raise
        result = planned.result(rows, cursor.rowcount)
        cursor.close()
        return result

    async def exec_driver_sql(
        self, statement: str, parameters: Any = None, execution_options: Any = None
    ) -> Any:
        return self._proxied.exec_driver_sql(statement, parameters, execution_options)

    async def execution_options(self, **opt: Any) -> InlineAsyncConnection:
        self._proxied.execution_options(**opt)
        return self

    def begin(self) -> Any:  # an async context manager, as AsyncConnection.begin() returns
        return _InlineTransaction(self._proxied)

    async def close(self) -> None:
        self._proxied.close()

    async def __aexit__(self, type_: Any, value: Any, traceback: Any) -> None:
        await self.close()  # nothing to shield: closing cannot be interrupted


class _InlineTransaction:
    """``async with conn.begin()``: commit on success, roll back on error."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self._transaction: Transaction | None = None

    async def __aenter__(self) -> _InlineTransaction:
        self._transaction = self._conn.begin()
        return self

    async def __aexit__(self, type_: Any, value: Any, traceback: Any) -> None:
        assert self._transaction is not None
        self._transaction.__exit__(type_, value, traceback)


class InlineAsyncEngine(AsyncEngine):
    _connection_cls = InlineAsyncConnection


registry.register(f"sqlite.{DRIVER}", __name__, "InlineSQLiteDialect")


def create_inline_engine(url: str, **kw: Any) -> AsyncEngine:
    """An asyncio engine on ``url`` (any SQLite driver) that runs everything inline."""
    engine = create_async_engine(make_url(url).set(drivername=f"sqlite+{DRIVER}"), **kw)
    return InlineAsyncEngine(engine.sync_engine)
