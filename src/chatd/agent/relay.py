"""Relaying one stream socket over a :class:`~chatd.agent.streams.Channel`: bytes both ways
until the socket ends. The server ending its side (empty bytes) half-closes the socket, whose
peer then ends the connection."""

from __future__ import annotations

import asyncio
import contextlib

from chatd.agent.streams import Channel


async def relay(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, channel: Channel, chunk: int
) -> None:
    """Copy the socket's bytes to the channel, ``chunk`` bytes at most at a time, and the
    channel's to the socket, until the socket's end; raises what a side raised."""

    async def up() -> None:
        with contextlib.suppress(ConnectionError):
            while data := await reader.read(chunk):
                await channel.send_data(data)

    async def down() -> None:
        while data := await channel.receive_data():
            for start in range(0, len(data), chunk):
                writer.write(data[start : start + chunk])
                try:
                    await writer.drain()
                except ConnectionError:
                    return  # the socket closed: the reader sees its end
        if writer.can_write_eof():
            with contextlib.suppress(OSError):
                writer.write_eof()  # the server sends no more: the peer ends the connection

    to_server = asyncio.create_task(up())
    to_socket = asyncio.create_task(down())
    try:
        pending = {to_server, to_socket}
        while to_server in pending:
            done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            if to_socket in done and to_socket.exception() is not None:
                break
    finally:
        for task in (to_server, to_socket):
            task.cancel()
        await asyncio.gather(to_server, to_socket, return_exceptions=True)
    for task in (to_server, to_socket):
        if task.done() and not task.cancelled():
            error = task.exception()
            if error is not None:
                raise error
