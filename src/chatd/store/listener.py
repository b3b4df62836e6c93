"""A dedicated PostgreSQL connection that LISTENs, outside the pool, in autocommit.

A pooled connection would lose its ``LISTEN`` registrations when it goes back to the pool, so
the listener opens a connection of its own (:meth:`chatd.store.db.Database.open_listener`).
It knows nothing of reconnecting: the pub/sub that owns it watches :attr:`PgListener.lost`,
checks it with :meth:`PgListener.ping` when nothing arrives for a while, and opens a new one
when either says the connection is gone.

Statements on it are serialised (asyncpg runs one operation at a time on a connection).
Notifications arrive through asyncpg's listener callbacks, in the order the server sent them,
and are passed to the handler given at connect time as ``(channel, payload)``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import asyncpg

from chatd.store.errors import StoreError
from chatd.store.notify import check_channel
from chatd.store.postgres import translate

# Called with (channel, payload) for each notification, on the event loop.
NotificationHandler = Callable[[str, str], None]

_ERRORS = (asyncpg.PostgresError, asyncpg.InterfaceError, OSError, TimeoutError)


# How the listener shows in pg_stat_activity.
APPLICATION_NAME = "chatd event listener"


class PgListener:
    """One connection and the channels it listens on."""

    def __init__(
        self, raw: asyncpg.Connection, handler: NotificationHandler, *, statement_seconds: float
    ) -> None:
        self._raw = raw
        self._handler = handler
        # The longest any statement on it may take (a silent connection never answers).
        self.statement_seconds = statement_seconds
        self._lock = asyncio.Lock()
        self._channels: set[str] = set()
        # Set when asyncpg sees the connection close, whoever closed it.
        self.lost = asyncio.Event()
        raw.add_termination_listener(self._on_termination)

    @classmethod
    async def connect(cls, dsn: str, handler: NotificationHandler, *, seconds: float) -> PgListener:
        """A new connection to ``dsn`` within ``seconds`` (also the longest a statement on it
        may take); :class:`~chatd.store.errors.Unavailable` if none."""
        try:
            raw = await asyncpg.connect(
                dsn, timeout=seconds, server_settings={"application_name": APPLICATION_NAME}
            )
        except _ERRORS as error:
            raise translate(error) from error
        return cls(raw, handler, statement_seconds=seconds)

    @property
    def server_pid(self) -> int:
        """The PostgreSQL backend process serving this connection."""
        return int(self._raw.get_server_pid())

    @property
    def channels(self) -> frozenset[str]:
        """The channels LISTENed on."""
        return frozenset(self._channels)

    def _on_termination(self, _conn: object) -> None:
        self.lost.set()

    def _on_notification(self, _conn: object, _pid: int, channel: str, payload: str) -> None:
        self._handler(channel, payload)

    async def listen(self, channel: str) -> None:
        """``LISTEN`` on ``channel`` (nothing when it already does)."""
        check_channel(channel)  # asyncpg quotes it as an identifier; checked all the same
        async with self._lock:
            if channel in self._channels:
                return
            await self._run(
                self._raw.add_listener(channel, self._on_notification), self.statement_seconds
            )
            self._channels.add(channel)

    async def unlisten(self, channel: str) -> None:
        """``UNLISTEN`` ``channel`` (nothing when it does not listen on it)."""
        check_channel(channel)
        async with self._lock:
            if channel not in self._channels:
                return
            self._channels.discard(channel)
            removal = self._raw.remove_listener(channel, self._on_notification)
            await self._run(removal, self.statement_seconds)

    async def ping(self, seconds: float) -> None:
        """A ``SELECT 1`` round trip within ``seconds`` (waiting for the statement
        before it included), or a StoreError."""
        await self._run(self._ping(), seconds)

    async def _ping(self) -> None:
        async with self._lock:
            await self._raw.fetchval("SELECT 1")

    async def _run(self, operation: Awaitable[object], seconds: float) -> None:
        try:
            await asyncio.wait_for(operation, seconds)
        except _ERRORS as error:
            raise translate(error, self._raw) from error

    def abort(self) -> None:
        """Drop the connection at once, without a word to the server (it failed a check)."""
        if not self._raw.is_closed():
            self._raw.terminate()

    async def close(self, seconds: float = 2.0) -> None:
        """Close the connection: politely if the server answers within ``seconds``, at once
        otherwise (a connection that went silent would never answer)."""
        if self._raw.is_closed():
            return
        try:
            await self._raw.close(timeout=seconds)
        except (*_ERRORS, StoreError):
            self._raw.terminate()
        except asyncio.CancelledError:
            self._raw.terminate()
            raise
