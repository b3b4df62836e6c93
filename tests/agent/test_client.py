"""The connection loop against a real WebSocket server on 127.0.0.1."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
from collections.abc import AsyncIterator
from http import HTTPStatus
from pathlib import Path
from typing import Any

import anyio
import pytest
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.http11 import Request, Response

from chatd.agent import protocol
from chatd.agent.client import EXIT_AUTH_REFUSED, Backoff, agent_url
from chatd.agent.client import serve as agent_serve
from chatd.agent.dispatcher import Dispatcher

pytestmark = pytest.mark.anyio

TOKEN = "agent-secret"


class FakeServer:
    """The server's side of the agent protocol: accepts agents with ``TOKEN`` on
    ``AGENT_PATH`` and hands each connection to the test."""

    def __init__(self, refuse_with: HTTPStatus | None = None) -> None:
        self.refuse_with = refuse_with
        self.dials = 0
        self.paths: list[str] = []
        self.connections: asyncio.Queue[Peer] = asyncio.Queue()
        self.server: Server | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}"

    def check(self, connection: ServerConnection, request: Request) -> Response | None:
        self.dials += 1
        self.paths.append(request.path)
        if self.refuse_with is not None:
            return connection.respond(self.refuse_with, "refused\n")
        if request.headers.get(protocol.TOKEN_HEADER) != TOKEN:
            return connection.respond(HTTPStatus.UNAUTHORIZED, "bad token\n")
        return None

    async def handler(self, ws: ServerConnection) -> None:
        await self.connections.put(Peer(ws))
        await ws.wait_closed()

    async def next_peer(self) -> Peer:
        with anyio.fail_after(30):
            peer = await self.connections.get()
            peer.hello = await peer.receive()
            return peer


class Peer:
    """One agent's connection, seen from the server."""

    def __init__(self, ws: ServerConnection) -> None:
        self.ws = ws
        self.hello: dict[str, Any] = {}

    async def receive(self) -> dict[str, Any]:
        with anyio.fail_after(30):
            return protocol.decode(await self.ws.recv())

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(protocol.encode(frame))

    async def call(self, request_id: int, op: str, **args: Any) -> dict[str, Any]:
        await self.send(protocol.request(request_id, op, args))
        answer = await self.receive()
        assert answer["id"] == request_id, answer
        return answer


@contextlib.asynccontextmanager
async def fake_server(
    refuse_with: HTTPStatus | None = None, port: int = 0
) -> AsyncIterator[FakeServer]:
    fake = FakeServer(refuse_with)
    async with serve(
        fake.handler,
        "127.0.0.1",
        port,
        process_request=fake.check,
        max_size=protocol.MAX_FRAME_BYTES,
    ) as server:
        fake.server = server
        yield fake


@contextlib.asynccontextmanager
async def running_agent(
    url: str, dispatcher: Dispatcher, **options: Any
) -> AsyncIterator[asyncio.Task[int]]:
    backoff = options.pop("backoff", Backoff(0.01, 0.05))
    task = asyncio.create_task(
        agent_serve(
            url, TOKEN, dispatcher.directory, dispatcher=dispatcher, backoff=backoff, **options
        )
    )
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_hello_and_requests(agent: Dispatcher, workspace: Path, home: Path) -> None:
    (workspace / "a.txt").write_text("hello\n")
    async with fake_server() as server, running_agent(server.url, agent):
        peer = await server.next_peer()
        assert peer.hello == {
            "type": "hello",
            "version": protocol.PROTOCOL_VERSION,
            "directory": str(workspace),
            "home": str(home),
            "operating_system": platform.system().lower(),
        }
        assert server.paths == [protocol.AGENT_PATH]
        answer = await peer.call(1, "read_file", path="a.txt")
        assert answer == {
            "type": "response",
            "id": 1,
            "result": {
                "content": "     1\thello",
                "file_size": 6,
                "lines_read": 1,
                "total_lines": 1,
            },
        }
        missing = await peer.call(2, "read_file", path="missing.txt")
        assert missing["error"]["code"] == protocol.NOT_FOUND
        assert "missing.txt" in missing["error"]["message"]
        unknown = await peer.call(3, "format_disk")
        assert unknown["error"]["code"] == protocol.BAD_REQUEST
        await peer.ws.send("not json")
        await peer.send({"type": "surprise", "id": 4})
        await peer.send({"type": "request", "op": "process_list", "args": {}})  # no id
        no_op = await peer.call(5, "")
        assert no_op["error"]["code"] == protocol.BAD_REQUEST
        await peer.send({"type": "request", "id": 6, "op": "read_file", "args": "a.txt"})
        assert (await peer.receive())["error"]["code"] == protocol.BAD_REQUEST


async def test_requests_run_concurrently_and_cancel(agent: Dispatcher) -> None:
    async with fake_server() as server, running_agent(server.url, agent):
        peer = await server.next_peer()
        started = await peer.call(1, "process_start", command="sleep 100")
        process_id = started["result"]["process_id"]
        # A long wait is cancelled; the request after it is answered, the cancelled never.
        await peer.send(
            protocol.request(2, "process_output", {"process_id": process_id, "wait_ms": 600_000})
        )
        listed = await peer.call(3, "process_list")
        assert listed["result"]["processes"][0]["running"] is True
        await peer.send(protocol.cancel(2))
        await peer.send(protocol.cancel(99))  # nothing runs under that id: ignored
        signalled = await peer.call(4, "process_signal", process_id=process_id, signal="kill")
        assert signalled["result"] == {"ok": True}
        assert (await peer.call(5, "process_list"))["id"] == 5


async def test_reconnects_and_processes_survive(agent: Dispatcher) -> None:
    async with fake_server() as server, running_agent(server.url, agent):
        first = await server.next_peer()
        started = await first.call(1, "process_start", command="echo before; sleep 100")
        process_id = started["result"]["process_id"]
        waited = await first.call(2, "process_output", process_id=process_id, wait_ms=50)
        for _ in range(100):
            if waited["result"]["output"]:
                break
            waited = await first.call(2, "process_output", process_id=process_id, wait_ms=50)
        assert waited["result"]["output"] == "before\n"
        await first.ws.close()
        second = await server.next_peer()
        assert second.hello["type"] == "hello"
        again = await second.call(1, "process_output", process_id=process_id)
        assert again["result"]["running"] is True
        assert again["result"]["output"] == "before\n"
        await second.call(2, "process_signal", process_id=process_id, signal="kill")


async def test_dials_again_until_the_server_is_up(agent: Dispatcher) -> None:
    async with fake_server() as probe:
        port = int(probe.url.rsplit(":", 1)[1])
    delays: list[float] = []
    up: asyncio.Event = asyncio.Event()

    async def sleep(delay: float) -> None:
        delays.append(delay)
        if len(delays) == 3:
            up.set()
        await asyncio.sleep(0)

    async with running_agent(f"http://127.0.0.1:{port}/", agent, sleep=sleep):
        with anyio.fail_after(30):
            await up.wait()
        async with fake_server(port=port) as server:
            peer = await server.next_peer()
            assert peer.hello["version"] == protocol.PROTOCOL_VERSION
    assert delays[:3] == sorted(delays[:3])


async def test_refused_token_ends_the_agent(agent: Dispatcher) -> None:
    async with fake_server(HTTPStatus.FORBIDDEN) as server:
        task = asyncio.create_task(
            agent_serve(
                server.url,
                TOKEN,
                agent.directory,
                dispatcher=agent,
                backoff=Backoff(0.001, 0.002),
                max_auth_refusals=3,
            )
        )
        with anyio.fail_after(30):
            assert await task == EXIT_AUTH_REFUSED
        assert server.dials == 3


async def test_wrong_token_is_refused_then_retried(agent: Dispatcher) -> None:
    async with fake_server() as server:
        task = asyncio.create_task(
            agent_serve(
                server.url,
                "wrong",
                agent.directory,
                dispatcher=agent,
                backoff=Backoff(0.001, 0.002),
                max_auth_refusals=2,
            )
        )
        with anyio.fail_after(30):
            assert await task == EXIT_AUTH_REFUSED


def test_backoff_doubles_to_its_maximum() -> None:
    backoff = Backoff(0.1, 5.0, rand=lambda: 0.5)
    delays = [round(backoff.delay(), 3) for _ in range(8)]
    assert delays == [0.1, 0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]
    backoff.reset()
    assert backoff.delay() == pytest.approx(0.1)
    low, high = (
        Backoff(1.0, jitter=0.2, rand=lambda: 0.0),
        Backoff(1.0, jitter=0.2, rand=lambda: 1.0),
    )
    assert low.delay() == pytest.approx(0.8)
    assert high.delay() == pytest.approx(1.2)


def test_agent_url() -> None:
    assert agent_url("http://host:3000") == f"ws://host:3000{protocol.AGENT_PATH}"
    assert agent_url("https://host/base/") == f"wss://host/base{protocol.AGENT_PATH}"
    assert agent_url("ws://127.0.0.1:9") == f"ws://127.0.0.1:9{protocol.AGENT_PATH}"
    for bad in ("ftp://host", "host:3000", "http://"):
        with pytest.raises(ValueError):
            agent_url(bad)


async def test_text_that_is_not_unicode_is_answered(tmp_path: Path, home: Path) -> None:
    """A directory and file names that are not UTF-8 reach the server replaced; an answer
    that still cannot be encoded is an error answer, not silence."""
    workspace = tmp_path / os.fsdecode(b"ws-\xff")
    workspace.mkdir()
    (workspace / os.fsdecode(b"\xfe.txt")).write_text("odd\n")
    dispatcher = Dispatcher(workspace, home=home)
    try:
        async with fake_server() as server, running_agent(server.url, dispatcher):
            peer = await server.next_peer()
            assert peer.hello["directory"] == str(tmp_path / "ws-\ufffd")
            # Lone surrogates arrive as JSON escapes.
            missing = {"path": os.fsdecode(b"\xfd")}
            await peer.ws.send(json.dumps(protocol.request(1, "read_file", missing)))
            answer = await peer.receive()
            assert answer["id"] == 1 and answer["error"]["code"] == protocol.FAILED
            assert "not valid Unicode" in answer["error"]["message"]
            command = {"command": "true #\udcfe", "wait_ms": 0}
            await peer.ws.send(json.dumps(protocol.request(2, "process_start", command)))
            assert (await peer.receive())["result"]["command"] == "true #\ufffd"
            outside = (await peer.call(3, "read_file", path="/etc/hostname"))["error"]
            assert (
                outside["code"] == protocol.OUTSIDE_WORKSPACE and "ws-\ufffd" in outside["message"]
            )
    finally:
        await dispatcher.close()
