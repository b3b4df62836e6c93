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
import contextvars
import queue
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects.sqlite import pysqlite

from chatd.store.errors import IntegrityError, StoreError, Unavailable
from chatd.store.sql import (
    Connection,
    Parameters,
    ParameterSets,
    Plan,
    Planner,
    Result,
    StatementObserver,
)

T = TypeVar("T")

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
    """One block's (or one transaction function's) use of a connection of a lane.

    The block's ``BEGIN`` goes with its first statement, in the same job (one hop for both):
    which statement that is is settled here, on the loop, as statements are sent, so a job of
    an earlier, cancelled block that runs late on the thread cannot take this block's.
    """

    dialect_name = "sqlite"

    def __init__(
        self, raw: sqlite3.Connection, lane: Lane, begin: str, *, on_thread: bool = False
    ) -> None:
        self.raw = raw
        self.lane = lane
        self._begin: str | None = begin
        self._on_thread = on_thread  # a transaction function driven on the thread

    def _take_begin(self) -> str | None:
        begin, self._begin = self._begin, None
        return begin

    async def execute(self, statement: sa.Executable, parameters: ParameterSets = None) -> Result:
        if parameters is not None and not isinstance(parameters, Mapping):
            return await self._execute_many(statement, parameters)
        plan, sql, args = self.lane.planner.prepare(statement, parameters)
        if self._on_thread:
            return _run(self.raw, self._take_begin(), plan, sql, args)
        return await self.lane.hop(_run, self.raw, self._take_begin(), plan, sql, args)

    async def _execute_many(
        self, statement: sa.Executable, parameter_sets: Sequence[Parameters]
    ) -> Result:
        if not parameter_sets:
            return Result([], 0)
        sql, args = self.lane.planner.prepare_many(statement, parameter_sets)
        if self._on_thread:
            return _run_many(self.raw, self._take_begin(), sql, args)
        return await self.lane.hop(_run_many, self.raw, self._take_begin(), sql, args)


def _run(
    raw: sqlite3.Connection, begin: str | None, plan: Plan, sql: str, args: list[Any]
) -> Result:
    """On the thread: one statement (after the block's ``BEGIN``, when it is the first)."""
    try:
        if begin is not None:
            raw.execute(begin)
        cursor = raw.execute(sql, args)
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


def _run_many(
    raw: sqlite3.Connection, begin: str | None, sql: str, args: list[list[Any]]
) -> Result:
    try:
        if begin is not None:
            raw.execute(begin)
        raw.executemany(sql, args).close()
        return Result([], len(args))  # as on PostgreSQL: one per parameter set
    except sqlite3.Error as error:
        raise translate(error) from error


def _finish(raw: sqlite3.Connection, commit: bool) -> None:
    """On the thread: end the transaction open on the connection, if one is."""
    if not raw.in_transaction:
        return
    try:
        raw.execute("COMMIT" if commit else "ROLLBACK")
    except sqlite3.Error as error:
        if raw.in_transaction:
            raw.execute("ROLLBACK")
        raise translate(error) from error


def _drive(
    raw: sqlite3.Connection,
    lane: Lane,
    begin: str,
    fn: Callable[..., Awaitable[T]],
    args: tuple[Any, ...],
    job: _Job,
) -> T:
    """On the thread: run the transaction function ``fn(conn, *args)`` to its end."""
    if job.abandoned:  # its caller was cancelled before it began: nothing to do
        raise asyncio.CancelledError
    conn = SqliteConnection(raw, lane, begin, on_thread=True)
    try:
        coroutine = fn(conn, *args)
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
        _finish(raw, commit=False)
        raise
    _finish(raw, commit=not job.abandoned)
    return result


def switch_to_wal(raw: sqlite3.Connection, busy_timeout_ms: int) -> None:
    """Switch to WAL. SQLite answers this pragma "database is locked" at once, without
    waiting, while another connection is opening the same file: try again for as long as
    the busy timeout allows."""
    deadline = time.monotonic() + busy_timeout_ms / 1000
    while True:
        try:
            raw.execute("PRAGMA journal_mode=WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() >= deadline:
                raise
            time.sleep(0.01)


def _connect(path: str, busy_timeout_ms: int, read_only: bool) -> sqlite3.Connection:
    try:
        raw = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        raw.execute(f"PRAGMA busy_timeout={busy_timeout_ms}")
        if not read_only:
            switch_to_wal(raw, busy_timeout_ms)
        raw.execute("PRAGMA foreign_keys=ON")
        raw.execute("PRAGMA synchronous=NORMAL")
        if read_only:
            raw.execute("PRAGMA query_only=ON")
    except sqlite3.Error as error:
        raise translate(error) from error
    return raw


Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


class _JobThread:
    """A thread that runs the jobs sent to it in order and settles their futures on the loop.

    A job whose caller was cancelled still runs (the lane's order depends on it); its result
    is dropped."""

    def __init__(self, name: str) -> None:
        self._jobs: queue.SimpleQueue[Job | None] = queue.SimpleQueue()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def send(
        self,
        loop: asyncio.AbstractEventLoop,
        done: asyncio.Future[Any],
        fn: Callable[..., Any],
        args: tuple[Any, ...],
    ) -> None:
        self._jobs.put((loop, done, fn, args))

    def stop(self) -> None:
        self._jobs.put(None)
        self._thread.join()

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            loop, done, fn, args = job
            try:
                outcome: tuple[Any, BaseException | None] = (fn(*args), None)
            except BaseException as error:  # handed to the caller, whatever it is
                outcome = (None, error)
            try:
                loop.call_soon_threadsafe(_settle, done, *outcome)
            except RuntimeError:  # the loop is closed: nobody waits for the answer
                pass


def _settle(done: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if done.cancelled():
        return
    if error is not None:
        done.set_exception(error)
    else:
        done.set_result(result)


class Lane:
    """One thread and the connections that are used on it alone."""

    def __init__(
        self,
        name: str,
        path: str,
        planner: Planner,
        *,
        read_only: bool,
        max_connections: int,
    ) -> None:
        self.planner = planner
        self._name = name
        self._path = path
        self._read_only = read_only
        # Started on first use (again after close: an app's lifespan may run more than once).
        self._thread: _JobThread | None = None
        self._idle: list[sqlite3.Connection] = []
        self._max_connections = max_connections
        self._slots = asyncio.Semaphore(max_connections)

    async def hop(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` run on the lane's thread, after every job sent before it."""
        if self._thread is None:
            self._thread = _JobThread(f"chatd-sqlite-{self._name}")
        loop = asyncio.get_running_loop()
        done: asyncio.Future[T] = loop.create_future()
        self._thread.send(loop, done, fn, args)
        return await done

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[sqlite3.Connection]:
        """One of the lane's connections, for the block's length."""
        async with self._slots:
            if self._idle:
                raw = self._idle.pop()
            else:
                busy = READ_BUSY_TIMEOUT_MS if self._read_only else WRITE_BUSY_TIMEOUT_MS
                raw = await self.hop(_connect, self._path, busy, self._read_only)
            try:
                yield raw
            finally:
                self._idle.append(raw)

    @asynccontextmanager
    async def block(self, begin: str) -> AsyncIterator[SqliteConnection]:
        """A transaction whose statements the caller sends one by one."""
        async with self.connection() as raw:
            try:
                yield SqliteConnection(raw, self, begin)
            except BaseException:
                await asyncio.shield(self.hop(_finish, raw, False))
                raise
            # Shielded: a cancelled caller must not leave the transaction open on a connection
            # that goes back to the pool (the commit still runs, before the next user's work).
            await asyncio.shield(self.hop(_finish, raw, True))

    async def run(self, begin: str, fn: Callable[..., Awaitable[T]], args: tuple[Any, ...]) -> T:
        """The transaction function ``fn`` driven on the thread in one hop."""
        async with self.connection() as raw:
            job = _Job()
            context = contextvars.copy_context()  # the caller's log context (request id)
            try:
                return await self.hop(context.run, _drive, raw, self, begin, fn, args, job)
            except asyncio.CancelledError:
                job.abandoned = True  # rolled back unless its commit had already begun
                raise

    async def close(self) -> None:
        """Close the connections once every block using one has ended, then the thread."""
        for _ in range(self._max_connections):
            await self._slots.acquire()
        try:
            for raw in self._idle:
                await self.hop(raw.close)
            self._idle.clear()
        finally:
            for _ in range(self._max_connections):
                self._slots.release()
        if self._thread is not None:
            await asyncio.to_thread(self._thread.stop)
            self._thread = None


class SqliteDatabase:
    """The SQLite file at ``path``: its writer, reader and scan lanes."""

    def __init__(self, path: str, observers: list[StatementObserver]) -> None:
        self.path = path
        planner = Planner(pysqlite.dialect(), observers)
        self._writer = Lane("writer", path, planner, read_only=False, max_connections=1)
        self._reader = Lane("reader", path, planner, read_only=True, max_connections=32)
        self._scanner = Lane("scan", path, planner, read_only=True, max_connections=8)
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

        def truncate(raw: sqlite3.Connection) -> bool:
            row = raw.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            return row is not None and row[0] == 0

        async with self._write_lock, self._writer.connection() as raw:
            return await self._writer.hop(truncate, raw)

    async def close(self) -> None:
        async with self._write_lock:
            await self._writer.close()
        await self._reader.close()
        await self._scanner.close()
