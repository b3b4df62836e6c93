"""uvicorn's server, stopping the chat turns before it closes the connections.

uvicorn's shutdown closes every connection (the workspace agents' WebSockets among them)
before the application's lifespan shutdown stops the worker: a turn waiting on a workspace
call would see its agent go away, save that as the call's result, and could call the model
again. This server stops listening, then stops the worker's turns and waits for them (each
saves its partial step with its calls answered as interrupted, and its chat goes back to
pending, engine-behaviour §5.7), then shuts down as uvicorn does. A second signal
(``force_exit``) cuts the wait short.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Awaitable, Callable

import uvicorn

# How often the wait for the turns looks for a second signal (as uvicorn's own waits do).
FORCE_EXIT_POLL = 0.1


class ChatdServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config, stop_turns: Callable[[], Awaitable[None]]) -> None:
        super().__init__(config)
        self.stop_turns = stop_turns

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        for server in self.servers:
            server.close()  # no new connections meanwhile; uvicorn closes them again
        stopping = asyncio.ensure_future(self.stop_turns())
        while not stopping.done() and not self.force_exit:
            await asyncio.wait({stopping}, timeout=FORCE_EXIT_POLL)
        if not stopping.done():
            stopping.cancel()
        await asyncio.gather(stopping, return_exceptions=True)
        await super().shutdown(sockets)
