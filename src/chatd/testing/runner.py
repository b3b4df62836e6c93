"""Serving a :class:`FakeProvider` with uvicorn on a loopback port.

``async with serve_fake(fake) as url:`` runs it in the current event loop (async tests);
``with serve_fake_in_thread(fake) as url:`` runs it in a thread of its own (sync tests, e2e).
``url`` is the base URL, e.g. ``http://127.0.0.1:43121``; SDKs take ``url + "/v1"`` (OpenAI)
or ``url`` (Anthropic).
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager

import uvicorn

from chatd.testing.fake_provider import FakeProvider

STARTUP_TIMEOUT = 10.0


def _bind(host: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def make_server(fake: FakeProvider, host: str = "127.0.0.1", port: int = 0) -> uvicorn.Server:
    config = uvicorn.Config(
        fake.app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="off",
        timeout_graceful_shutdown=1,
    )
    return uvicorn.Server(config)


def _url(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{host}:{port}"


async def _run(server: uvicorn.Server, sock: socket.socket) -> None:
    await server.serve(sockets=[sock])


@asynccontextmanager
async def serve_fake(fake: FakeProvider, host: str = "127.0.0.1") -> AsyncIterator[str]:
    """Serve ``fake`` in this event loop on a free port; yields the base URL."""
    sock = _bind(host, 0)
    server = make_server(fake, host)
    task = asyncio.create_task(_run(server, sock))
    try:
        async with asyncio.timeout(STARTUP_TIMEOUT):
            while not server.started:
                if task.done():
                    task.result()
                await asyncio.sleep(0.01)
        yield _url(sock)
    finally:
        fake.release()
        server.should_exit = True
        await task
        sock.close()


@contextmanager
def serve_fake_in_thread(fake: FakeProvider, host: str = "127.0.0.1") -> Iterator[str]:
    """Serve ``fake`` from a background thread on a free port; yields the base URL."""
    sock = _bind(host, 0)
    server = make_server(fake, host)
    thread = threading.Thread(target=lambda: asyncio.run(_run(server, sock)), daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the fake provider did not start")
            time.sleep(0.01)
        yield _url(sock)
    finally:
        fake.release()
        server.should_exit = True
        thread.join(STARTUP_TIMEOUT)
        sock.close()
