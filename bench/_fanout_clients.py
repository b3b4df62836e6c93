"""Stream clients for ``bench/fanout.py``, spread over processes, each followed on its own.

Unlike ``bench/stream.py``'s followers, which pool every delta of a run, each client here keeps
its own record: which replica and chat it followed, its write → receive latencies, and what its
``seq`` numbers and delta indexes say about delivery. The reply's deltas are ``w0 ``, ``w1 ``,
... each stamped ``[[t=<ns>]]`` by the fake provider, so a client knows which of them it missed
or got twice even where several were sent in one event. Records are reduced in the client
process (only latencies travel back in full, as a compact array) so that a run of 1,000
clients costs the parent little.
"""

from __future__ import annotations

import array
import asyncio
import json
import re
import time
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

from _process_pool import ProcessPool
from _stream_clients import OPEN_TIMEOUT, TurnEnd, open_stream
from websockets.asyncio.client import ClientConnection

DELTA = re.compile(r"\[\[t=(\d+)\]\]w(\d+) ")


@dataclass(frozen=True)
class Target:
    """One client to open: the stream of ``chat_id`` on replica ``replica`` at ``ws_url``."""

    replica: int
    ws_url: str
    chat_id: str


@dataclass
class Record:
    """What one client received in one turn (picklable)."""

    replica: int
    chat_id: str
    latencies_ns: array.array[int] = field(default_factory=lambda: array.array("q"))
    # Those of the deltas after the reply's first ``skip``: past the relay's start.
    later_ns: array.array[int] = field(default_factory=lambda: array.array("q"))
    first_stamp_ns: int | None = None
    last_receive_ns: int | None = None
    parts: int = 0  # message_part events carrying reply text
    deltas: int = 0  # reply deltas received, repeats included
    missing: int = 0  # reply deltas never received
    repeated_deltas: int = 0  # reply deltas received more than once
    repeated_seqs: int = 0  # events whose seq an earlier event of the stream had
    backwards_seqs: int = 0  # events whose seq is below the one before
    errors: list[str] = field(default_factory=list)

    @property
    def complete(self) -> bool:
        """The client followed the turn to its end without an error."""
        return not self.errors


class Follower:
    """One ``/chats/{chat}/stream`` socket: open it, then follow one turn to its end."""

    def __init__(self, target: Target, token: str) -> None:
        self.target = target
        self.url = f"{target.ws_url}/api/experimental/chats/{target.chat_id}/stream"
        self.token = token
        self.socket: ClientConnection | None = None

    async def open(self) -> None:
        self.socket = await open_stream(self.url, self.token)

    async def follow(self, expected: int, skip: int, record: Record) -> None:
        """Record the turn's text deltas and every event's ``seq`` until the turn ends."""
        seen_seqs: set[int] = set()
        seen_deltas: set[int] = set()
        last_seq = -1
        turn = TurnEnd(record.errors)
        try:
            if self.socket is None:
                record.errors.append("not open")
                return
            async for frame in self.socket:
                received = time.time_ns()
                for event in json.loads(frame):
                    seq = event.get("seq")
                    if isinstance(seq, int):
                        if seq in seen_seqs:
                            record.repeated_seqs += 1
                        elif seq < last_seq:
                            record.backwards_seqs += 1
                        seen_seqs.add(seq)
                        last_seq = max(last_seq, seq)
                    if event["type"] == "message_part":
                        part = event["message_part"]["part"]
                        if part.get("type") == "text":
                            text = part.get("text") or ""
                            self._deltas(text, received, skip, record, seen_deltas)
                    elif turn.ends(event):
                        return
            record.errors.append("socket closed mid-turn")
        finally:
            record.missing = len(set(range(expected)) - seen_deltas)

    @staticmethod
    def _deltas(text: str, received: int, skip: int, record: Record, seen: set[int]) -> None:
        record.parts += 1
        for stamp_text, index_text in DELTA.findall(text):
            stamp, index = int(stamp_text), int(index_text)
            record.deltas += 1
            if index in seen:
                record.repeated_deltas += 1
            seen.add(index)
            record.latencies_ns.append(received - stamp)
            if index >= skip:
                record.later_ns.append(received - stamp)
            if record.first_stamp_ns is None or stamp < record.first_stamp_ns:
                record.first_stamp_ns = stamp
        if record.last_receive_ns is None or received > record.last_receive_ns:
            record.last_receive_ns = received

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()


async def _bounded(coros: list[Any], limit: float) -> list[BaseException | None]:
    """Run ``coros`` together; past ``limit`` seconds the rest are cancelled. Each one's error
    (a timeout for the cancelled), or None."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    if not tasks:
        return []
    _, late = await asyncio.wait(tasks, timeout=limit)
    for task in late:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return [
        TimeoutError(f"still open after {limit:.0f}s")
        if task in late
        else (None if task.cancelled() else task.exception())
        for task in tasks
    ]


async def _open(follower: Follower, gate: asyncio.Semaphore) -> None:
    async with gate:
        await follower.open()


def _serve(conn: Connection) -> None:
    asyncio.run(_loop(conn))


async def _loop(conn: Connection) -> None:
    loop = asyncio.get_running_loop()
    followers: list[Follower] = []
    while True:
        command, args = await loop.run_in_executor(None, conn.recv)
        if command == "open":
            targets, token, concurrency = args
            followers = [Follower(t, token) for t in targets]
            gate = asyncio.Semaphore(concurrency)
            opens = [_open(f, gate) for f in followers]
            failed = await _bounded(opens, 2 * OPEN_TIMEOUT)
            conn.send([repr(e) for e in failed if e is not None])
        elif command == "follow":
            expected, skip, limit = args
            records = [Record(f.target.replica, f.target.chat_id) for f in followers]
            following = [
                f.follow(expected, skip, r) for f, r in zip(followers, records, strict=True)
            ]
            conn.send("following")
            failed = await _bounded(following, limit)
            for record, error in zip(records, failed, strict=True):
                if error is not None:
                    record.errors.append(repr(error))
            await asyncio.gather(*(f.close() for f in followers), return_exceptions=True)
            followers = []
            conn.send(records)
        elif command == "stop":
            return


class FanoutPool(ProcessPool):
    """``size`` client processes; the clients are dealt out round robin."""

    def __init__(self, size: int) -> None:
        super().__init__(size, _serve)

    async def open(self, targets: list[Target], token: str, concurrency: int) -> list[str]:
        """Every client's stream opened (its snapshot read), at most ``concurrency`` handshakes
        at a time over all processes; the errors of those that failed."""
        size = len(self._pipes)
        share = max(1, concurrency // size)
        for i, pipe in enumerate(self._pipes):
            pipe.send(("open", (targets[i::size], token, share)))
        errors: list[str] = []
        for pipe in self._pipes:
            errors += await self._ask(pipe)
        return errors

    async def start_following(self, expected: int, skip: int, limit: float) -> None:
        """Every process reads its sockets (acknowledged before this returns); each client
        expects deltas ``0..expected-1`` and keeps apart the latencies after the first
        ``skip``."""
        for pipe in self._pipes:
            pipe.send(("follow", (expected, skip, limit)))
        for pipe in self._pipes:
            assert await self._ask(pipe) == "following"

    async def collect(self) -> list[Record]:
        """Each client's record, once every process has seen its turns end."""
        records: list[Record] = []
        for pipe in self._pipes:
            records += await self._ask(pipe)
        return records
