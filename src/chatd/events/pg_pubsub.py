"""Pub/sub over PostgreSQL LISTEN/NOTIFY, for replicas that share one database.

Publishing goes through the store's pool (``pg_notify`` on a pooled connection, or on the
transaction's own with :func:`chatd.store.notify.notify`). Listening needs a connection that
stays open and keeps its ``LISTEN`` registrations, so one dedicated connection per process,
outside the pool (:meth:`chatd.store.db.Database.open_listener`), listens on every channel
that has a subscriber here and fans notifications out to them.

A connection can die silently (a failover, a proxy's idle timeout, a cable), so a supervisor
task watches it::

    connect -> LISTEN every subscribed channel -> wait for the connection to close, at most
    health_interval -> on timeout, unless a notification arrived meanwhile (a sign of life),
    SELECT 1 within health_timeout -> wait again ...
    any failure -> drop it -> reconnect (backoff doubling from backoff_initial to backoff_max,
    jittered to 50-100 %, until it succeeds) -> LISTEN again -> run on_reconnect callbacks

Whatever was sent while the listener was away is lost; the reconnect callbacks are where
subscribers resync from the database.
"""

from __future__ import annotations

import asyncio
import contextlib
import random

import structlog

from chatd.events.pubsub import QUEUE_SIZE, FanOut
from chatd.store.db import Database
from chatd.store.errors import StoreError
from chatd.store.listener import PgListener
from chatd.store.notify import check_channel, encode_payload, notify

log = structlog.get_logger(__name__)

# Seconds without a sign of life before the listener's connection is checked.
HEALTH_INTERVAL = 10.0
# Seconds the check (SELECT 1) may take before the connection is given up.
HEALTH_TIMEOUT = 5.0
# Seconds before the first reconnection attempt, and the most between two.
BACKOFF_INITIAL = 0.1
BACKOFF_MAX = 10.0


def backoff_delay(attempt: int, initial: float, maximum: float, rng: random.Random) -> float:
    """Seconds to wait before reconnection attempt ``attempt`` (0-based): doubling from
    ``initial``, capped at ``maximum``, then jittered down to between half and all of it so
    that replicas cut off together do not come back in step."""
    ceiling = min(maximum, initial * 2 ** min(attempt, 32))
    return float(ceiling * rng.uniform(0.5, 1.0))


class PostgresPubSub(FanOut):
    """LISTEN/NOTIFY through ``database`` (a PostgreSQL one). Intervals are injectable so tests
    need not wait through the production ones; ``rng`` drives the jitter."""

    def __init__(
        self,
        database: Database,
        *,
        queue_size: int = QUEUE_SIZE,
        health_interval: float = HEALTH_INTERVAL,
        health_timeout: float = HEALTH_TIMEOUT,
        backoff_initial: float = BACKOFF_INITIAL,
        backoff_max: float = BACKOFF_MAX,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(queue_size)
        if database.is_sqlite:
            raise ValueError("PostgresPubSub needs a PostgreSQL database: use MemoryPubSub")
        self._database = database
        self.health_interval = health_interval
        self.health_timeout = health_timeout
        self.backoff_initial = backoff_initial
        self.backoff_max = backoff_max
        self._rng = rng or random.Random()
        self._listener: PgListener | None = None
        self._supervisor: asyncio.Task[None] | None = None
        # Serialises bringing the listener's channels in line with the subscribed ones.
        self._sync_lock = asyncio.Lock()
        # Times the listener came back after a loss (for logs and tests).
        self.reconnects = 0
        # A notification arrived since the last health check: the connection is alive.
        self._heard = False

    @property
    def listener_pid(self) -> int | None:
        """The server process of the listener's connection (None while disconnected)."""
        listener = self._listener
        return None if listener is None or listener.lost.is_set() else listener.server_pid

    @property
    def running(self) -> bool:
        return self._supervisor is not None

    async def start(self) -> None:
        """Connect the listener and start its supervisor; a StoreError (and nothing left
        running) when the database cannot be reached."""
        if self._supervisor is not None:
            return
        listener = await self._connect()
        self._supervisor = asyncio.create_task(
            self._supervise(listener), name="chatd-pubsub-listener"
        )

    async def stop(self) -> None:
        supervisor, self._supervisor = self._supervisor, None
        if supervisor is not None:
            supervisor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await supervisor
        listener, self._listener = self._listener, None
        if listener is not None:
            await listener.close()
        self.close_subscriptions()

    async def publish(self, channel: str, payload: bytes | str) -> None:
        check_channel(channel)
        encode_payload(payload)  # checked before a connection is taken
        async with self._database.write_one() as conn:
            await notify(conn, channel, payload)

    # ---- the listener -----------------------------------------------------------------------

    def _on_notification(self, channel: str, payload: str) -> None:
        self._heard = True
        self.deliver(channel, payload.encode())

    async def _connect(self) -> PgListener:
        """A new listener, LISTENing on every subscribed channel once it is returned."""
        listener = await self._database.open_listener(self._on_notification)
        try:
            async with self._sync_lock:
                for channel in sorted(self._channels):
                    await listener.listen(channel)
                self._listener = listener
        except BaseException:
            await listener.close()
            raise
        return listener

    async def _sync_channel(self, channel: str) -> None:
        """LISTEN or UNLISTEN ``channel`` on the current listener, as its subscribers require.
        A failure is left to the supervisor, which LISTENs again on its next connection."""
        async with self._sync_lock:
            listener = self._listener
            if listener is None or listener.lost.is_set():
                return
            try:
                if channel in self._channels:
                    await listener.listen(channel)
                else:
                    await listener.unlisten(channel)
            except StoreError as error:
                log.info("pub/sub listener failed to change channels", error=str(error))
                listener.lost.set()  # the supervisor replaces it

    async def channel_added(self, channel: str) -> None:
        await self._sync_channel(channel)

    async def channel_removed(self, channel: str) -> None:
        await self._sync_channel(channel)

    async def _supervise(self, listener: PgListener) -> None:
        while True:
            try:
                await self._watch(listener)
            except StoreError as error:
                log.warning("pub/sub listener failed its health check", error=str(error))
            except Exception:  # whatever it was, the supervisor must go on
                log.exception("pub/sub listener failed")
            else:
                log.warning("pub/sub listener lost its connection")
            self._listener = None
            listener.abort()
            listener = await self._reconnect()
            self.reconnects += 1
            log.info("pub/sub listener reconnected", reconnects=self.reconnects)
            await self.fire_reconnect()

    async def _watch(self, listener: PgListener) -> None:
        """Return when the connection closes; raise when it stops answering."""
        while True:
            try:
                await asyncio.wait_for(listener.lost.wait(), self.health_interval)
                return
            except TimeoutError:
                if self._heard:
                    self._heard = False
                    continue
                await listener.ping(self.health_timeout)

    async def _reconnect(self) -> PgListener:
        attempt = 0
        while True:
            delay = backoff_delay(attempt, self.backoff_initial, self.backoff_max, self._rng)
            await asyncio.sleep(delay)
            try:
                return await self._connect()
            except StoreError as error:
                log.info("pub/sub listener could not reconnect", attempt=attempt, error=str(error))
            except Exception:
                log.exception("pub/sub listener could not reconnect", attempt=attempt)
            attempt += 1
