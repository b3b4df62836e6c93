"""Streaming operations: the agent's half of one request that answers over time.

A :class:`Channel` is what a streaming operation (``StreamOp``) holds while it runs: it sends
JSON events and raw bytes to the server and receives the bytes the server sends for it. The
operation's return value is its final result; raising :class:`~chatd.agent.errors.OpError`
ends it with an error; the server cancelling the request cancels the operation's task.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

# Bytes from the server a stream has not read yet, in frames; a server that sends more than
# this without the operation reading ends the stream (see ``Channel.feed``).
INBOUND_FRAMES = 256


class StreamOverflow(Exception):
    """The server sent more bytes than the operation has read."""


class Channel:
    """One streaming request, both directions."""

    def __init__(
        self,
        send_event: Callable[[dict[str, Any]], Awaitable[None]],
        send_data: Callable[[bytes], Awaitable[None]],
    ) -> None:
        self._send_event = send_event
        self._send_data = send_data
        self._inbound: asyncio.Queue[bytes] = asyncio.Queue(INBOUND_FRAMES)

    async def send_event(self, event: dict[str, Any]) -> None:
        """A JSON event to the server."""
        await self._send_event(event)

    async def send_data(self, data: bytes) -> None:
        """Raw bytes to the server."""
        await self._send_data(data)

    async def receive_data(self) -> bytes:
        """The next bytes the server sent for this request."""
        return await self._inbound.get()

    def feed(self, data: bytes) -> None:
        """Bytes from the server arrived; raises :class:`StreamOverflow` when too many wait."""
        try:
            self._inbound.put_nowait(data)
        except asyncio.QueueFull:
            raise StreamOverflow("the server sent more than the operation read") from None


StreamOp = Callable[[dict[str, Any], Channel], Awaitable[dict[str, Any]]]
