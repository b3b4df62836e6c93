"""The pub/sub contract, run against every backend: memory (with SQLite) and PostgreSQL.

Waits are bounded (:data:`WAIT`) and on events, never on the clock: a payload that must not
arrive is shown absent by a later one arriving first.
"""

from __future__ import annotations

import asyncio
import os
import random
import shutil
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from sqlalchemy.engine import make_url

from chatd.events.pg_pubsub import PostgresPubSub, backoff_delay
from chatd.events.pubsub import (
    MAX_PAYLOAD_BYTES,
    FanOut,
    InvalidChannel,
    InvalidPayload,
    MemoryPubSub,
    PayloadTooLarge,
    Subscription,
)
from chatd.store.db import Database
from chatd.store.errors import StoreError
from chatd.store.notify import notify
from chatd.store.sql import Connection
from tests.conftest import PG_ENV, PG_SKIP
from tests.helpers import TEST_SECRETS

pytestmark = pytest.mark.anyio

WAIT = 10.0  # seconds: the longest any expected delivery may take before the test fails


class Boom(Exception):
    pass


@dataclass
class Backend:
    kind: str
    pubsub: FanOut
    db: Database
    url: str = ""


def channel_name(label: str = "ch") -> str:
    return f"test:{label}:{uuid.uuid4().hex[:12]}"


async def receive(sub: Subscription) -> bytes:
    return await asyncio.wait_for(anext(sub), WAIT)


async def rest(sub: Subscription) -> list[bytes]:
    """What is left in a subscription that has ended."""
    return await asyncio.wait_for(_drain(sub), WAIT)


async def _drain(sub: Subscription) -> list[bytes]:
    return [payload async for payload in sub]


def terminate_backend(url: str, pid: int) -> None:
    """End the server process of one connection, as a failover or a proxy would."""
    with psycopg.connect(url.replace("postgresql+asyncpg://", "postgresql://")) as admin:
        row = admin.execute("SELECT pg_terminate_backend(%s)", (pid,)).fetchone()
        assert row == (True,)


def fast_pubsub(db: Database, **overrides: float) -> PostgresPubSub:
    """Short intervals: reconnection tests must not wait through the production ones."""
    options = {
        "health_interval": 5.0,
        "health_timeout": 5.0,
        "backoff_initial": 0.01,
        "backoff_max": 0.2,
        **overrides,
    }
    return PostgresPubSub(db, rng=random.Random(7), **options)


@pytest.fixture(params=["memory", "postgres"])
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    if request.param == "memory":
        template: Path = request.getfixturevalue("sqlite_template")
        path = tmp_path / "chatd.db"
        shutil.copy(template, path)
        db = Database(f"sqlite:///{path}", secrets=TEST_SECRETS)
        found = Backend("memory", MemoryPubSub(db), db)
    else:
        if not os.environ.get(PG_ENV):
            pytest.skip(PG_SKIP)
        url: str = request.getfixturevalue("pg_url")
        db = Database(url, secrets=TEST_SECRETS)
        found = Backend("postgres", fast_pubsub(db), db, url)
    await found.pubsub.start()
    try:
        yield found
    finally:
        await found.pubsub.stop()
        await found.db.close()


# ---- delivery ---------------------------------------------------------------------------------


async def test_every_subscriber_gets_every_payload_in_order(backend: Backend) -> None:
    pubsub, channel = backend.pubsub, channel_name()
    async with pubsub.subscribe(channel) as first, pubsub.subscribe(channel) as second:
        await pubsub.publish(channel, "one")
        await pubsub.publish(channel, b"two")
        assert [await receive(first), await receive(first)] == [b"one", b"two"]
        assert [await receive(second), await receive(second)] == [b"one", b"two"]


async def test_order_within_a_channel_is_the_order_published(backend: Backend) -> None:
    pubsub, channel = backend.pubsub, channel_name()
    sent = [f"hint {n}".encode() for n in range(50)]
    async with pubsub.subscribe(channel) as sub:
        for payload in sent:
            await pubsub.publish(channel, payload)
        assert [await receive(sub) for _ in sent] == sent


async def test_a_subscriber_hears_only_its_channel(backend: Backend) -> None:
    pubsub, here, there = backend.pubsub, channel_name("here"), channel_name("there")
    async with pubsub.subscribe(here) as sub_here, pubsub.subscribe(there) as sub_there:
        await pubsub.publish(there, "for there")
        await pubsub.publish(here, "for here")
        assert await receive(sub_here) == b"for here"  # "for there" went first, elsewhere
        assert await receive(sub_there) == b"for there"
        await pubsub.publish(here, "again here")
        await pubsub.publish(there, "again there")
        assert await receive(sub_there) == b"again there"


async def test_leaving_unsubscribes_and_the_others_still_hear(backend: Backend) -> None:
    pubsub, channel = backend.pubsub, channel_name()
    async with pubsub.subscribe(channel) as staying:
        async with pubsub.subscribe(channel) as leaving:
            await pubsub.publish(channel, "both")
            assert await receive(leaving) == b"both"
        await pubsub.publish(channel, "after one left")
        assert await receive(staying) == b"both"
        assert await receive(staying) == b"after one left"
        assert await rest(leaving) == []  # its iteration ended, with nothing more
        assert channel in pubsub.channels
    assert channel not in pubsub.channels
    async with pubsub.subscribe(channel) as again:  # subscribing anew works
        await pubsub.publish(channel, "back")
        assert await receive(again) == b"back"


async def test_a_subscriber_that_falls_behind_is_dropped(backend: Backend) -> None:
    pubsub, channel = backend.pubsub, channel_name()
    pubsub.queue_size = 3
    async with pubsub.subscribe(channel) as slow:
        pubsub.queue_size = 100
        async with pubsub.subscribe(channel) as keeping_up:
            for n in range(5):
                await pubsub.publish(channel, str(n))
            assert [await receive(keeping_up) for _ in range(5)] == [b"0", b"1", b"2", b"3", b"4"]
            assert await rest(slow) == []
            assert slow.lagged
            assert not keeping_up.lagged


async def test_stopping_ends_every_subscription(backend: Backend) -> None:
    pubsub, channel = backend.pubsub, channel_name()
    async with pubsub.subscribe(channel) as sub:
        await pubsub.publish(channel, "last")
        assert await receive(sub) == b"last"
        await pubsub.stop()
        assert await rest(sub) == []
        assert not sub.lagged
    assert not [t for t in asyncio.all_tasks() if t.get_name() == "chatd-pubsub-listener"]


# ---- publishing inside a transaction ----------------------------------------------------------


async def test_a_notification_in_a_transaction_arrives_on_commit_once(backend: Backend) -> None:
    pubsub, db, channel = backend.pubsub, backend.db, channel_name()
    async with pubsub.subscribe(channel) as sub:
        async with db.write() as conn:
            await notify(conn, channel, "changed")
            await notify(conn, channel, "changed")  # identical: delivered once
            await notify(conn, channel, "also changed")
            await pubsub.publish(channel, "published while it was open")
        assert await receive(sub) == b"published while it was open"  # the other waited
        assert await receive(sub) == b"changed"
        assert await receive(sub) == b"also changed"
        await pubsub.publish(channel, "after")
        assert await receive(sub) == b"after"  # no second "changed"


async def test_a_notification_in_a_rolled_back_transaction_never_arrives(
    backend: Backend,
) -> None:
    pubsub, db, channel = backend.pubsub, backend.db, channel_name()
    async with pubsub.subscribe(channel) as sub:
        with pytest.raises(Boom):
            async with db.write() as conn:
                await notify(conn, channel, "rolled back")
                raise Boom
        await pubsub.publish(channel, "after the rollback")
        assert await receive(sub) == b"after the rollback"


async def test_a_transaction_function_notifies_on_commit_only(backend: Backend) -> None:
    pubsub, db, channel = backend.pubsub, backend.db, channel_name()

    def sending(payload: str, fail: bool) -> Callable[[Connection], Awaitable[None]]:
        async def change(conn: Connection) -> None:
            await notify(conn, channel, payload)
            if fail:
                raise Boom

        return change

    async with pubsub.subscribe(channel) as sub:
        with pytest.raises(Boom):
            await db.run_write(sending("rolled back", fail=True))
        await db.run_write(sending("committed", fail=False))
        await db.run_write_one(sending("committed alone", fail=False))
        assert await receive(sub) == b"committed"
        assert await receive(sub) == b"committed alone"


# ---- limits and names -------------------------------------------------------------------------


async def test_the_largest_payload_arrives_whole_and_a_larger_one_is_refused(
    backend: Backend,
) -> None:
    pubsub, db, channel = backend.pubsub, backend.db, channel_name()
    largest = "x" * MAX_PAYLOAD_BYTES
    async with pubsub.subscribe(channel) as sub:
        with pytest.raises(PayloadTooLarge, match="7999"):
            await pubsub.publish(channel, largest + "x")
        with pytest.raises(PayloadTooLarge):
            await pubsub.publish(channel, "é" * 4000)  # 4000 characters, 8000 bytes
        with pytest.raises(PayloadTooLarge):
            async with db.write() as conn:
                await notify(conn, channel, largest.encode() + b"x")
        await pubsub.publish(channel, largest)
        assert await receive(sub) == largest.encode()


@pytest.mark.parametrize(
    "name",
    ["", "a" * 64, 'quote"d', "semi;colon", "two words", "new\nline", "ünï", "x'); DROP--"],
)
async def test_an_invalid_channel_name_is_refused_before_any_sql(
    backend: Backend, name: str
) -> None:
    pubsub, db = backend.pubsub, backend.db
    with pytest.raises(InvalidChannel):
        await pubsub.publish(name, "hint")
    with pytest.raises(InvalidChannel):
        async with pubsub.subscribe(name):
            pass
    with pytest.raises(InvalidChannel):
        async with db.write() as conn:
            await notify(conn, name, "hint")
    assert not pubsub.channels


async def test_the_longest_channel_name_is_heard_whole(backend: Backend) -> None:
    pubsub = backend.pubsub
    longest = ("Chat.Stream:" + uuid.uuid4().hex * 2)[:63]  # mixed case, kept as given
    async with pubsub.subscribe(longest) as sub:
        await pubsub.publish(longest, "hint")
        assert await receive(sub) == b"hint"


@pytest.mark.parametrize("payload", [b"\xff\xfe", "nul\x00inside", b"nul\x00inside"])
async def test_a_payload_that_is_not_text_is_refused(
    backend: Backend, payload: bytes | str
) -> None:
    with pytest.raises(InvalidPayload):
        await backend.pubsub.publish(channel_name(), payload)


async def test_on_sqlite_only_a_write_transaction_notifies(tmp_path: Path) -> None:
    db = Database(f"sqlite:///{tmp_path / 'chatd.db'}", secrets=TEST_SECRETS)
    try:
        async with db.read() as conn:
            with pytest.raises(StoreError, match="write transaction"):
                await notify(conn, "ch", "hint")
    finally:
        await db.close()


def test_a_backend_refuses_the_other_kind_of_database(tmp_path: Path) -> None:
    sqlite = Database(f"sqlite:///{tmp_path / 'chatd.db'}", secrets=TEST_SECRETS)
    postgres = Database("postgresql://nobody@127.0.0.1:1/none", secrets=TEST_SECRETS)
    with pytest.raises(ValueError, match="PostgreSQL"):
        PostgresPubSub(sqlite)
    with pytest.raises(ValueError, match="PostgresPubSub"):
        MemoryPubSub(postgres)


# ---- the PostgreSQL listener ------------------------------------------------------------------


def postgres_only(backend: Backend) -> PostgresPubSub:
    if not isinstance(backend.pubsub, PostgresPubSub):
        pytest.skip("the memory backend has no connection to lose")
    return backend.pubsub


async def test_a_terminated_listener_reconnects_and_hears_again(backend: Backend) -> None:
    pubsub = postgres_only(backend)
    channel, joining_late = channel_name(), channel_name("late")
    reconnected = asyncio.Event()
    async_calls: list[str] = []
    removed_calls: list[str] = []

    async def resync() -> None:
        async_calls.append("resync")

    pubsub.on_reconnect(reconnected.set)
    pubsub.on_reconnect(resync)
    pubsub.on_reconnect(lambda: removed_calls.append("removed"))()  # removed at once

    async with pubsub.subscribe(channel) as sub:
        await pubsub.publish(channel, "before")
        assert await receive(sub) == b"before"
        first_pid = pubsub.listener_pid
        assert first_pid is not None
        terminate_backend(backend.url, first_pid)
        # Subscribing while the listener is down or coming back: LISTENed on the new one.
        async with pubsub.subscribe(joining_late) as late:
            await asyncio.wait_for(reconnected.wait(), WAIT)
            assert pubsub.reconnects == 1
            assert pubsub.listener_pid not in (None, first_pid)
            await pubsub.publish(channel, "after")
            await pubsub.publish(joining_late, "for the late one")
            assert await receive(sub) == b"after"
            assert await receive(late) == b"for the late one"
    assert async_calls == ["resync"]
    assert removed_calls == []


async def test_start_fails_cleanly_when_the_database_is_unreachable() -> None:
    db = Database("postgresql://nobody@127.0.0.1:1/none", secrets=TEST_SECRETS)
    pubsub = PostgresPubSub(db)
    try:
        with pytest.raises(StoreError):
            await pubsub.start()
        assert not pubsub.running
        await pubsub.stop()  # nothing to stop: no error
    finally:
        await db.close()


def test_backoff_doubles_up_to_its_bound_with_jitter() -> None:
    rng = random.Random(1)
    delays = [backoff_delay(attempt, 0.1, 5.0, rng) for attempt in range(60)]
    for attempt, delay in enumerate(delays):
        ceiling = min(5.0, 0.1 * 2**attempt)
        assert ceiling / 2 <= delay <= ceiling
    assert len({round(d, 6) for d in delays[20:]}) > 1  # jittered, not in step


class SilenceableRelay:
    """A TCP relay on 127.0.0.1 to a server. :meth:`silence` makes the connections open at
    that moment drop every byte both ways while their sockets stay open, as a dead network
    path does (neither end is told); connections made afterwards relay normally."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._links: list[tuple[asyncio.StreamWriter, asyncio.StreamWriter]] = []
        self._silenced: set[int] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._accept, "127.0.0.1", 0)
        return int(self._server.sockets[0].getsockname()[1])

    def silence(self) -> None:
        self._silenced.update(id(pair) for pair in self._links)

    async def _accept(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await asyncio.open_connection(*self._target)
        pair = (writer, up_writer)
        self._links.append(pair)
        for source, sink in ((reader, up_writer), (up_reader, writer)):
            task = asyncio.create_task(self._pump(id(pair), source, sink))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def _pump(
        self, link: int, source: asyncio.StreamReader, sink: asyncio.StreamWriter
    ) -> None:
        try:
            while chunk := await source.read(65536):
                if link not in self._silenced:
                    sink.write(chunk)
                    await sink.drain()
        except OSError:
            pass
        finally:
            if link not in self._silenced:
                sink.close()

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for client, upstream in self._links:
            client.close()
            upstream.close()
        if self._server is not None:
            await self._server.wait_closed()


async def test_a_listener_whose_connection_went_silent_is_replaced(backend: Backend) -> None:
    postgres_only(backend)
    url = make_url(backend.url)
    relay = SilenceableRelay(url.host or "127.0.0.1", url.port or 5432)
    relayed = url.set(host="127.0.0.1", port=await relay.start())
    listen_db = Database(relayed.render_as_string(hide_password=False), secrets=TEST_SECRETS)
    # Checked often and given up fast, so that the test does not wait long for either.
    pubsub = fast_pubsub(listen_db, health_interval=0.05, health_timeout=0.2)
    reconnected = asyncio.Event()
    pubsub.on_reconnect(reconnected.set)
    channel = channel_name()

    async def publish(payload: str) -> None:  # straight to the server, not through the relay
        async with backend.db.write_one() as conn:
            await notify(conn, channel, payload)

    try:
        await pubsub.start()
        async with pubsub.subscribe(channel) as sub:
            await publish("before")
            assert await receive(sub) == b"before"
            first_pid = pubsub.listener_pid
            relay.silence()
            await asyncio.wait_for(reconnected.wait(), WAIT)
            assert pubsub.listener_pid not in (None, first_pid)
            await publish("after")
            assert await receive(sub) == b"after"
    finally:
        await pubsub.stop()
        await listen_db.close()
        await relay.stop()
