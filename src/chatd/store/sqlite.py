"""SQLite off the event loop: a writer thread, a reader thread and a scan thread.

Every write runs on the writer thread, on its one connection, under ``BEGIN IMMEDIATE``;
writers in this process queue for it on an asyncio lock, so only a lock held by another
process (a backup, a ``sqlite3`` shell) makes a write wait, and then only the writers wait:
the event loop goes on serving streams. Reads run on the reader thread, each read block on a
pooled connection inside a deferred transaction (one snapshot per block); in WAL mode they
never wait for the writer. Reads that may scan many rows (listing and searching chats) run on
a thread of their own, so they do not hold up the short ones.

Each thread is a lane: its connections are used on it alone, and its jobs run in the order
they were sent. That order is what makes a cancelled block safe: its rollback is queued
before anything the next user of its connection sends.

Two ways to run a transaction. A block (``async with``) sends each statement to the thread on
its own, which suits code that awaits other things between statements. A transaction function
(``run_write(fn)``, ``run_read(fn)``) is driven to its end on the thread in one hop: ``fn`` is a
coroutine function whose only awaits are the connection's statements, which on the thread run
at once, so the coroutine finishes without ever suspending. A function that awaits anything
else is a bug, and raises.
"""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import pysqlite

from chatd.store.errors import IntegrityError, StoreError, Unavailable
from chatd.store.sql import Connection, Parameters, ParameterSets, Plan, Planner, Result

T = TypeVar("T")
StatementObserver = Callable[[str], None]

# A write waits this long for another process's lock before it fails (the loop does not wait).
WRITE_BUSY_TIMEOUT_MS = 30_000
READ_BUSY_TIMEOUT_MS = 5_000


def translate(error: sqlite3.Error) -> StoreError:
    if isinstance(error, sqlite3.IntegrityError):
        return IntegrityError(str(error))
    if isinstance(error, sqlite3.OperationalError) and "locked" in str(error):
        return Unavailable(str(error))
    return StoreError(str(error))


@dataclass
class _Job:
    """A transaction function's run; ``abandoned`` once its caller was cancelled."""

    abandoned: bool = False


class SqliteConnection(Connection):
    """A connection that belongs to one lane; its statements run on that lane's thread."""

    dialect_name = "sqlite"

    def __init__(self, raw: sqlite3.Connection, lane: Lane) -> None:
        self.raw = raw
        self.lane = lane
        # Set on the loop as a block starts; sent with its first statement (one hop for both).
        self._begin: str | None = None
        self._on_thread = False  # a transaction function is being driven on the thread

    async def execute(self, statement: sa.Executable, parameters: ParameterSets = None) -> Result:
        if parameters is not None and not isinstance(parameters, Mapping):
            return await self._execute_many(statement, parameters)
        plan = self.lane.planner.plan(statement, parameters)
        sql, args = plan.bind(parameters)
        for observe in self.lane.observers:
            observe(sql)
        if self._on_thread:
            return self._run(plan, sql, args)
        return await self.lane.hop(self._run, plan, sql, args)

    async def _execute_many(
        self, statement: sa.Executable, parameter_sets: Sequence[Parameters]
    ) -> Result:
        if not parameter_sets:
            return Result([], 0)
        plan = self.lane.planner.plan(statement, parameter_sets[0])
        bound = [plan.bind(parameters) for parameters in parameter_sets]
        for observe in self.lane.observers:
            observe(bound[0][0])
        args = [a for _, a in bound]
        if self._on_thread:
            return self._run_many(bound[0][0], args)
        return await self.lane.hop(self._run_many, bound[0][0], args)

    def _run_many(self, sql: str, args: list[list[Any]]) -> Result:
        try:
            if self._begin is not None:
                begin, self._begin = self._begin, None
                self.raw.execute(begin)
            cursor = self.raw.executemany(sql, args)
            count = cursor.rowcount
            cursor.close()
            return Result([], count)
        except sqlite3.Error as error:
            raise translate(error) from error

    def _run(self, plan: Plan, sql: str, args: list[Any]) -> Result:
        try:
            if self._begin is not None:
                begin, self._begin = self._begin, None
                self.raw.execute(begin)
            cursor = self.raw.execute(sql, args)
            try:
                if cursor.description is None:
                    return Result([], cursor.rowcount)
                records = cursor.fetchall()
                keys = [d[0] for d in cursor.description]
                rows = plan.rows(keys, records) if records else []
                return Result(rows, cursor.rowcount if cursor.rowcount >= 0 else len(rows))
            finally:
                cursor.close()
        except sqlite3.Error as error:
            raise translate(error) from error

    def begin_block(self, begin: str) -> None:
        self._begin = begin

    def finish(self, commit: bool) -> None:
        """On the thread: end the transaction open on the connection, if one is."""
        if not self.raw.in_transaction:
            return
        try:
            self.raw.execute("COMMIT" if commit else "ROLLBACK")
        except sqlite3.Error as error:
            if self.raw.in_transaction:
                self.raw.execute("ROLLBACK")
            raise translate(error) from error

    def drive(
        self, begin: str, fn: Callable[..., Awaitable[T]], args: tuple[Any, ...], job: _Job
    ) -> T:
        """On the thread: run the transaction function ``fn(self, *args)`` to its end."""
        self._begin = begin
        self._on_thread = True
        try:
            coroutine = fn(self, *args)
            assert asyncio.iscoroutine(coroutine)
            try:
                coroutine.send(None)
            except StopIteration as done:
                result: T = done.value
            else:
                coroutine.close()
                raise RuntimeError(
                    f"{getattr(fn, '__qualname__', fn)} awaited something other than the "
                    "database inside a transaction function"
                )
        except BaseException:
            self._begin = None
            self.finish(commit=False)
            raise
        finally:
            self._on_thread = False
        self._begin = None
        self.finish(commit=not job.abandoned)
        return result


def _connect(path: str, busy_timeout_ms: int, read_only: bool) -> sqlite3.Connection:
    try:
        raw = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        raw.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        if not read_only:
            raw.execute("PRAGMA journal_mode=WAL")
        raw.execute("PRAGMA foreign_keys=ON")
        raw.execute("PRAGMA synchronous=NORMAL")
        if read_only:
            raw.execute("PRAGMA query_only=ON")
    except sqlite3.Error as error:
        raise translate(error) from error
    return raw


class Lane:
    """One thread and the connections that are used on it alone."""

    def __init__(
        self,
        name: str,
        path: str,
        planner: Planner,
        observers: list[StatementObserver],
        *,
        read_only: bool,
        max_connections: int,
    ) -> None:
        self.planner = planner
        self.observers = observers
        self._name = name
        self._path = path
        self._read_only = read_only
        # Started on first use (again after close: an app's lifespan may run more than once).
        self._executor: ThreadPoolExecutor | None = None
        self._idle: list[SqliteConnection] = []
        self._slots = asyncio.Semaphore(max_connections)

    async def hop(self, fn: Callable[..., T], *args: Any) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(1, thread_name_prefix=f"chatd-sqlite-{self._name}")
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[SqliteConnection]:
        async with self._slots:
            if self._idle:
                conn = self._idle.pop()
            else:
                busy = READ_BUSY_TIMEOUT_MS if self._read_only else WRITE_BUSY_TIMEOUT_MS
                raw = await self.hop(_connect, self._path, busy, self._read_only)
                conn = SqliteConnection(raw, self)
            try:
                yield conn
            finally:
                self._idle.append(conn)

    @asynccontextmanager
    async def block(self, begin: str) -> AsyncIterator[SqliteConnection]:
        """A transaction whose statements the caller sends one by one."""
        async with self.connection() as conn:
            conn.begin_block(begin)
            try:
                yield conn
            except BaseException:
                await asyncio.shield(self.hop(conn.finish, False))
                raise
            # Shielded: a cancelled caller must not leave the transaction open on a connection
            # that goes back to the pool (the commit still runs, before the next user's work).
            await asyncio.shield(self.hop(conn.finish, True))

    async def run(self, begin: str, fn: Callable[..., Awaitable[T]], args: tuple[Any, ...]) -> T:
        """The transaction function ``fn`` driven on the thread in one hop."""
        async with self.connection() as conn:
            job = _Job()
            try:
                return await self.hop(conn.drive, begin, fn, args, job)
            except asyncio.CancelledError:
                job.abandoned = True  # rolled back unless its commit had already begun
                raise

    async def close(self) -> None:
        for conn in self._idle:
            await self.hop(conn.raw.close)
        self._idle.clear()
        if self._executor is not None:
            self._executor.shutdown(wait=True)
            self._executor = None


class SqliteDatabase:
    """The SQLite file at ``path``: its writer, reader and scan lanes."""

    def __init__(self, path: str, observers: list[StatementObserver]) -> None:
        self.path = path
        planner = Planner(pysqlite.dialect())
        self._writer = Lane("writer", path, planner, observers, read_only=False, max_connections=1)
        self._reader = Lane("reader", path, planner, observers, read_only=True, max_connections=32)
        self._scanner = Lane("scan", path, planner, observers, read_only=True, max_connections=8)
        # Writers queue here before the writer's connection: one transaction at a time.
        self._write_lock = asyncio.Lock()

    @asynccontextmanager
    async def write(self) -> AsyncIterator[SqliteConnection]:
        async with self._write_lock, self._writer.block("BEGIN IMMEDIATE") as conn:
            yield conn

    @asynccontextmanager
    async def read(self, *, scan: bool = False) -> AsyncIterator[SqliteConnection]:
        async with (self._scanner if scan else self._reader).block("BEGIN") as conn:
            yield conn

    async def run_write(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        async with self._write_lock:
            return await self._writer.run("BEGIN IMMEDIATE", fn, args)

    async def run_read(self, fn: Callable[..., Awaitable[T]], *args: Any) -> T:
        return await self._reader.run("BEGIN", fn, args)

    async def checkpoint(self) -> bool:
        """Copy the WAL into the database file and empty it; False when a reader kept it."""

        def truncate(conn: SqliteConnection) -> bool:
            row = conn.raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            return row is not None and row[0] == 0

        async with self._write_lock, self._writer.connection() as conn:
            return await self._writer.hop(truncate, conn)

    async def close(self) -> None:
        async with self._write_lock:
            await self._writer.close()
        await self._reader.close()
        await self._scanner.close()
