"""SQLite calls made on the event loop's own thread, behind SQLAlchemy's aiosqlite dialect.

aiosqlite runs each call (cursor, execute, fetch, close, commit) on a worker thread and hands
the result back through the event loop. Measured here, that hop costs ~70 µs of CPU, so a
read transaction with one primary-key lookup took ~750 µs of CPU where SQLite itself needs a
few µs; a turn (~50 statements in ~16 transactions) spent ~45 ms of CPU on it. Embedded SQLite
answers chatd's statements (lookups by key or index, small inserts and updates) in
microseconds, so :class:`InlineConnection` runs them directly: it has the awaitable surface the
dialect's adapter expects, and each awaitable completes without suspending.

The price: while a statement runs, the event loop waits. Statements that can take long (chat
listing and search over many chats) go through :meth:`chatd.store.db.Database.read` with
``offload=True``, which uses an aiosqlite engine on its own thread.

Lock waits do not hold the loop either: writers are serialised in-process before ``BEGIN
IMMEDIATE`` (:meth:`~chatd.store.db.Database.write`) and the data dir holds one replica, so the
busy timeout only matters against another process (a backup tool, say), and WAL readers never
wait for writers.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from typing import Any


class InlineCursor:
    __slots__ = ("_cursor",)

    def __init__(self, cursor: sqlite3.Cursor) -> None:
        self._cursor = cursor

    async def __aenter__(self) -> InlineCursor:
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._cursor.close()

    async def execute(self, operation: str, parameters: Sequence[Any] = ()) -> InlineCursor:
        self._cursor.execute(operation, parameters)
        return self

    async def executemany(self, operation: str, seq: Sequence[Sequence[Any]]) -> InlineCursor:
        self._cursor.executemany(operation, seq)
        return self

    async def fetchall(self) -> list[Any]:
        return self._cursor.fetchall()

    async def fetchone(self) -> Any:
        return self._cursor.fetchone()

    async def fetchmany(self, size: int | None = None) -> list[Any]:
        return self._cursor.fetchmany(size or self._cursor.arraysize)

    async def close(self) -> None:
        self._cursor.close()

    @property
    def description(self) -> Any:
        return self._cursor.description

    @property
    def rowcount(self) -> int:
        return self._cursor.rowcount

    @property
    def lastrowid(self) -> int | None:
        return self._cursor.lastrowid

    @property
    def arraysize(self) -> int:
        return self._cursor.arraysize

    @arraysize.setter
    def arraysize(self, value: int) -> None:
        self._cursor.arraysize = value


class InlineConnection:
    """The part of ``aiosqlite.Connection`` that SQLAlchemy's adapter uses."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self._conn = conn
        self._connection: sqlite3.Connection | None = conn  # the adapter checks it is open

    @property
    def isolation_level(self) -> str | None:
        return self._conn.isolation_level

    def cursor(self) -> InlineCursor:
        return InlineCursor(self._conn.cursor())

    async def commit(self) -> None:
        self._conn.commit()

    async def rollback(self) -> None:
        self._conn.rollback()

    async def close(self) -> None:
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    def stop(self) -> None:
        """Terminate (the adapter's force close): closing is immediate here too."""
        if self._connection is not None:
            self._connection = None
            self._conn.close()

    async def create_function(
        self, name: str, num_params: int, func: Callable[..., Any], **kw: Any
    ) -> None:
        self._conn.create_function(name, num_params, func, **kw)


def connector(path: str) -> Callable[[], Any]:
    """An ``async_creator`` for :func:`sqlalchemy.ext.asyncio.create_async_engine`."""

    async def connect() -> InlineConnection:
        # isolation_level=None: chatd issues BEGIN itself (legacy mode would silently let two
        # writers claim the same row); the engine's "connect" listener sets the PRAGMAs.
        conn = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        return InlineConnection(conn)

    return connect
