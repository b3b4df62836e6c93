"""The clients of ``bench/stream.py`` spread over processes.

One Python process reading every stream of a 100-chat run is itself the bottleneck (its event
loop parses every frame), so the followers and the bare readers run in a pool of client
processes, each with its own event loop, driven over a pipe. A run's tallies are merged in the
parent. Each process keeps its sockets open between commands: ``open`` connects (and reads the
snapshots), ``follow`` acknowledges at once and then reads every socket until its turn ends,
``bare`` reads streams straight from the fake provider.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from multiprocessing.connection import Connection

import httpx2
from _process_pool import ProcessPool
from _stream_clients import ChatFollower, Tally, bare_stream, gather_bounded


@dataclass
class Part:
    """What one client process received in one run (picklable)."""

    latencies_ns: list[int] = field(default_factory=list)
    stamps_ns: list[int] = field(default_factory=list)
    spans: list[list[int]] = field(default_factory=list)
    first_stamp_ns: int | None = None
    last_receive_ns: int | None = None
    errors: list[str] = field(default_factory=list)

    @classmethod
    def of(cls, tally: Tally) -> Part:
        return cls(
            tally.latencies_ns,
            tally.stamps_ns,
            list(tally.spans.values()),
            tally.first_stamp_ns,
            tally.last_receive_ns,
            tally.errors,
        )

    def into(self, tally: Tally) -> None:
        tally.latencies_ns += self.latencies_ns
        tally.stamps_ns += self.stamps_ns
        for span in self.spans:
            tally.spans[object()] = span
        if self.first_stamp_ns is not None:
            known = tally.first_stamp_ns
            tally.first_stamp_ns = min(self.first_stamp_ns, known or self.first_stamp_ns)
        if self.last_receive_ns is not None:
            known = tally.last_receive_ns
            tally.last_receive_ns = max(self.last_receive_ns, known or self.last_receive_ns)
        tally.errors += self.errors


def _serve(conn: Connection) -> None:
    asyncio.run(_loop(conn))


async def _loop(conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    followers: list[ChatFollower] = []
    while True:
        command, args = await loop.run_in_executor(None, conn.recv)
        if command == "open":
            ws_url, token, chat_ids, deflate = args
            followers = [ChatFollower(ws_url, token, c, deflate) for c in chat_ids]
            tally = Tally()
            await gather_bounded([f.open() for f in followers], 120, tally, "opens")
            conn.send(Part.of(tally))
        elif command == "follow":
            (limit,) = args
            tally = Tally()
            following = [asyncio.ensure_future(f.follow(tally)) for f in followers]
            conn.send("following")
            await gather_bounded(following, limit, tally, "streams")
            await asyncio.gather(*(f.close() for f in followers), return_exceptions=True)
            followers = []
            conn.send(Part.of(tally))
        elif command == "bare":
            fake_url, count, limit = args
            tally = Tally()
            limits = httpx2.Limits(max_connections=None, max_keepalive_connections=count)
            async with httpx2.AsyncClient(limits=limits, timeout=limit) as client:
                reads = [bare_stream(client, fake_url, tally) for _ in range(count)]
                await gather_bounded(reads, limit, tally, "streams")
            conn.send(Part.of(tally))
        elif command == "stop":
            return


class ClientPool(ProcessPool):
    """``size`` client processes; chats and bare streams are dealt out round robin."""

    def __init__(self, size: int) -> None:
        super().__init__(size, _serve)

    async def open(
        self, ws_url: str, token: str, chat_ids: list[str], deflate: bool, tally: Tally
    ) -> None:
        """Every chat's stream opened (its snapshot read) in some client process."""
        size = len(self._pipes)
        for i, pipe in enumerate(self._pipes):
            pipe.send(("open", (ws_url, token, chat_ids[i::size], deflate)))
        for pipe in self._pipes:
            part: Part = await self._ask(pipe)
            tally.errors += part.errors

    async def start_following(self, limit: float) -> None:
        """Every process reads its sockets (acknowledged before this returns)."""
        for pipe in self._pipes:
            pipe.send(("follow", (limit,)))
        for pipe in self._pipes:
            assert await self._ask(pipe) == "following"

    async def collect(self, tally: Tally) -> None:
        """Wait for the runs begun by :meth:`start_following` or :meth:`bare` to end."""
        for pipe in self._pipes:
            part: Part = await self._ask(pipe)
            part.into(tally)

    def bare(self, fake_url: str, count: int, limit: float) -> None:
        size = len(self._pipes)
        for i, pipe in enumerate(self._pipes):
            share = count // size + (1 if i < count % size else 0)
            pipe.send(("bare", (fake_url, share, limit)))
