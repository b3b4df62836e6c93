"""Clients for ``bench/stream.py``: a chat-stream WebSocket follower and a bare SSE reader.

Both record, for every stamped text delta, ``receive time - stamp`` where the receive time is
``time.time_ns()`` taken once per network read (a WebSocket frame, an SSE read), and the stamp is
the fake provider's ``time.time_ns()`` when it wrote the delta (``stamp_deltas``). Client and
fake run on the same host, so the clocks agree.
"""

from __future__ import annotations

import asyncio
import json
import statistics
import time
from dataclasses import dataclass, field
from typing import Any

import httpx2
from websockets.asyncio.client import ClientConnection, connect

from chatd.testing import stamps

OPEN_TIMEOUT = 60.0


@dataclass
class Tally:
    """Everything the clients of one run received."""

    expected: int = 0
    latencies_ns: list[int] = field(default_factory=list)
    stamps_ns: list[int] = field(default_factory=list)  # each latency's write time
    spans: dict[object, list[int]] = field(default_factory=dict)  # stream -> [first, last]
    first_stamp_ns: int | None = None
    last_receive_ns: int | None = None
    errors: list[str] = field(default_factory=list)

    def add(self, text: str, received_ns: int, stream: object) -> None:
        for stamp in stamps(text):
            self.latencies_ns.append(received_ns - stamp)
            self.stamps_ns.append(stamp)
            span = self.spans.setdefault(stream, [stamp, stamp])
            span[0], span[1] = min(span[0], stamp), max(span[1], stamp)
            if self.first_stamp_ns is None or stamp < self.first_stamp_ns:
                self.first_stamp_ns = stamp
        if self.last_receive_ns is None or received_ns > self.last_receive_ns:
            self.last_receive_ns = received_ns

    @property
    def received(self) -> int:
        return len(self.latencies_ns)

    def throughput(self) -> float:
        """Delivered deltas per second, from the first delta written to the last received."""
        if self.first_stamp_ns is None or self.last_receive_ns is None:
            return 0.0
        span = (self.last_receive_ns - self.first_stamp_ns) / 1e9
        return self.received / span if span > 0 else 0.0

    def latency_ms(self) -> tuple[float, float]:
        """p50 and p99 of write → receive, in ms."""
        if len(self.latencies_ns) < 2:
            only = self.latencies_ns[0] / 1e6 if self.latencies_ns else float("nan")
            return only, only
        return _p50_p99(self.latencies_ns)

    def steady_p99_ms(self) -> float:
        """p99 over the deltas written while every stream was running (nan if under 100).

        Leaves out the start and the end of a run, where all turns start or finish at once.
        """
        if not self.spans:
            return float("nan")
        start = max(first for first, _ in self.spans.values())
        end = min(last for _, last in self.spans.values())
        steady = [
            latency
            for stamp, latency in zip(self.stamps_ns, self.latencies_ns, strict=True)
            if start <= stamp <= end
        ]
        return _p50_p99(steady)[1] if len(steady) >= 100 else float("nan")


def _p50_p99(latencies_ns: list[int]) -> tuple[float, float]:
    """p50 and p99 in ms (at least two values)."""
    cuts = statistics.quantiles(latencies_ns, n=100, method="inclusive")
    return statistics.median(latencies_ns) / 1e6, cuts[98] / 1e6


async def open_stream(url: str, token: str, *, deflate: bool = False) -> ClientConnection:
    """A chat's stream socket, its snapshot frame read, so nothing sent afterwards is missed
    (``deflate``: permessage-deflate offered)."""
    socket = await connect(
        url,
        additional_headers={"Coder-Session-Token": token},
        compression="deflate" if deflate else None,
        max_size=None,
        open_timeout=OPEN_TIMEOUT,
        ping_interval=None,
    )
    await socket.recv()
    return socket


class TurnEnd:
    """Where a followed turn ends: its status leaves ``running`` (anything but ``waiting`` is
    noted in ``errors``, as is every ``error`` event)."""

    def __init__(self, errors: list[str]) -> None:
        self.errors = errors
        self.running = False

    def ends(self, event: dict[str, Any]) -> bool:
        """Whether ``event`` (any but a ``message_part``) ends the turn."""
        kind = event["type"]
        if kind == "status":
            status = event["status"]["status"]
            if status == "running":
                self.running = True
            elif self.running and status != "pending":
                if status != "waiting":
                    self.errors.append(f"turn ended {status}")
                return True
        elif kind == "error":
            self.errors.append(str(event.get("error", {}).get("message")))
        return False


class ChatFollower:
    """One ``/chats/{chat}/stream`` socket: open it, then follow one turn to its end."""

    def __init__(self, ws_url: str, token: str, chat_id: str, deflate: bool) -> None:
        self.url = f"{ws_url}/api/experimental/chats/{chat_id}/stream"
        self.token = token
        self.deflate = deflate
        self.socket: ClientConnection | None = None

    async def open(self) -> None:
        self.socket = await open_stream(self.url, self.token, deflate=self.deflate)

    async def follow(self, tally: Tally) -> None:
        """Record the turn's text deltas until its status leaves ``running``."""
        assert self.socket is not None
        turn = TurnEnd(tally.errors)
        async for frame in self.socket:
            received = time.time_ns()
            for event in json.loads(frame):
                if event["type"] == "message_part":
                    part = event["message_part"]["part"]
                    if part.get("type") == "text":
                        tally.add(part.get("text") or "", received, self)
                elif turn.ends(event):
                    return
        tally.errors.append("socket closed mid-turn")

    async def close(self) -> None:
        if self.socket is not None:
            await self.socket.close()


async def bare_stream(client: httpx2.AsyncClient, fake_url: str, tally: Tally) -> None:
    """One streamed chat completion read straight from the fake provider."""
    body = {
        "model": "fake-model",
        "stream": True,
        "messages": [{"role": "user", "content": "bench"}],
    }
    pending = b""
    async with client.stream("POST", fake_url + "/v1/chat/completions", json=body) as response:
        if response.status_code != 200:
            tally.errors.append(f"status {response.status_code}")
            return
        async for chunk in response.aiter_bytes():
            received = time.time_ns()
            *events, pending = (pending + chunk).split(b"\n\n")
            for event in events:
                _bare_event(event, received, tally, response)


def _bare_event(event: bytes, received: int, tally: Tally, stream: object) -> None:
    if not event.startswith(b"data: ") or event == b"data: [DONE]":
        return
    chunk: dict[str, Any] = json.loads(event[6:])
    for choice in chunk.get("choices", ()):
        text = choice.get("delta", {}).get("content")
        if text:
            tally.add(text, received, stream)


async def gather_bounded(coros: list[Any], limit: float, tally: Tally, what: str) -> None:
    """Run ``coros`` together; past ``limit`` seconds the rest are cancelled (their deltas lost)."""
    tasks = [asyncio.ensure_future(c) for c in coros]
    if not tasks:
        return
    done, late = await asyncio.wait(tasks, timeout=limit)
    for task in late:
        task.cancel()
    await asyncio.gather(*late, return_exceptions=True)
    if late:
        tally.errors.append(f"{len(late)} {what} still open after {limit:.0f}s")
    for task in done:
        exc = task.exception()
        if exc is not None:
            tally.errors.append(f"{what}: {exc!r}")
