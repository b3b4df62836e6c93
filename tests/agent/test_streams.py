"""Streaming operations over the connection loop: events, bytes both ways, end and cancel."""

from __future__ import annotations

import asyncio
from typing import Any

import anyio
import pytest

from chatd.agent import protocol
from chatd.agent.dispatcher import Dispatcher
from chatd.agent.errors import OpError
from chatd.agent.streams import INBOUND_FRAMES, Channel
from tests.agent.test_client import fake_server, running_agent

pytestmark = pytest.mark.anyio


def echo_streams(agent: Dispatcher, ended: asyncio.Queue[str]) -> None:
    """``echo``: an event, then each byte frame back upper-cased until ``bye``.
    ``refuse``: an error at once. ``stall``: reads nothing until cancelled."""

    async def echo(args: dict[str, Any], channel: Channel) -> dict[str, Any]:
        await channel.send_event({"ready": True, "greeting": args.get("greeting")})
        try:
            while (data := await channel.receive_data()) != b"bye":
                await channel.send_data(data.upper())
            return {"ok": True}
        finally:
            ended.put_nowait("echo")

    async def refuse(args: dict[str, Any], channel: Channel) -> dict[str, Any]:
        raise OpError(protocol.UNAVAILABLE, "nothing to stream here")

    async def stall(args: dict[str, Any], channel: Channel) -> dict[str, Any]:
        await channel.send_event({"stalling": True})
        try:
            await asyncio.Event().wait()
            return {}
        finally:
            ended.put_nowait("stall")

    agent.streams.update({"echo": echo, "refuse": refuse, "stall": stall})


async def next_end(ended: asyncio.Queue[str]) -> str:
    with anyio.fail_after(30):
        return await ended.get()


async def test_a_stream_sends_events_and_bytes_then_ends(agent: Dispatcher) -> None:
    ended: asyncio.Queue[str] = asyncio.Queue()
    echo_streams(agent, ended)
    async with fake_server() as server, running_agent(server.url, agent):
        peer = await server.next_peer()
        await peer.send(protocol.request(7, "echo", {"greeting": "hi"}))
        assert await peer.receive() == {
            "type": "event",
            "id": 7,
            "event": {"ready": True, "greeting": "hi"},
        }
        await peer.ws.send(protocol.data_frame(7, b"abc"))
        with anyio.fail_after(30):
            echoed = await peer.ws.recv()
        assert isinstance(echoed, bytes)
        assert protocol.parse_data_frame(echoed) == (7, b"ABC")
        # Bytes for a request that is not a stream, or that does not exist, are dropped.
        await peer.ws.send(protocol.data_frame(99, b"lost"))
        await peer.ws.send(b"\x00")  # too short to carry an id: ignored
        # A plain request is still answered while the stream runs.
        assert (await peer.call(8, "process_list"))["result"] == {"processes": []}
        await peer.ws.send(protocol.data_frame(7, b"bye"))
        assert await peer.receive() == {"type": "response", "id": 7, "result": {"ok": True}}
        assert await next_end(ended) == "echo"


async def test_a_stream_error_and_an_unknown_stream(agent: Dispatcher) -> None:
    echo_streams(agent, asyncio.Queue())
    async with fake_server() as server, running_agent(server.url, agent):
        peer = await server.next_peer()
        refused = await peer.call(1, "refuse")
        assert refused["error"] == {
            "code": protocol.UNAVAILABLE,
            "message": "nothing to stream here",
        }
        assert (await peer.call(2, "git_nothing"))["error"]["code"] == protocol.BAD_REQUEST


async def test_cancel_and_disconnect_end_a_stream(agent: Dispatcher) -> None:
    ended: asyncio.Queue[str] = asyncio.Queue()
    echo_streams(agent, ended)
    async with fake_server() as server, running_agent(server.url, agent):
        peer = await server.next_peer()
        await peer.send(protocol.request(1, "stall", {}))
        assert (await peer.receive())["event"] == {"stalling": True}
        await peer.send(protocol.cancel(1))
        assert (await peer.call(2, "process_list"))["id"] == 2  # nothing came for request 1
        assert await next_end(ended) == "stall"
        await peer.send(protocol.request(3, "echo", {}))
        assert (await peer.receive())["type"] == "event"
        await peer.ws.close()
        assert await next_end(ended) == "echo"


async def test_a_server_flooding_a_stream_ends_it(agent: Dispatcher) -> None:
    ended: asyncio.Queue[str] = asyncio.Queue()
    echo_streams(agent, ended)
    async with fake_server() as server, running_agent(server.url, agent):
        peer = await server.next_peer()
        await peer.send(protocol.request(1, "stall", {}))
        assert (await peer.receive())["event"] == {"stalling": True}
        for _ in range(INBOUND_FRAMES + 1):
            await peer.ws.send(protocol.data_frame(1, b"x"))
        assert await next_end(ended) == "stall"
        # The server hears that the stream is over.
        answer = await peer.receive()
        assert (answer["type"], answer["id"]) == ("response", 1)
        assert answer["error"]["code"] == protocol.LIMIT
