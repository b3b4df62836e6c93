"""Servers that misbehave at the MCP endpoint, run as their own process for the tests:
``python tests/tools/mcp_misbehaving_main.py MODE PORT`` on 127.0.0.1.

``hang``: accepts connections and reads, and never answers. ``garbage``: answers every HTTP
request with status 200 and a JSON content type whose body is not JSON.
"""

from __future__ import annotations

import asyncio
import sys

GARBAGE = b'{"jsonrpc": "2.0", "id": 1, "result": {"protocolVersion": '


async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while await reader.read(65536):
        pass
    writer.close()


async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            length = 0
            for line in head.decode("latin-1").split("\r\n"):
                name, _, value = line.partition(":")
                if name.strip().lower() == "content-length":
                    length = int(value.strip())
            if length:
                await reader.readexactly(length)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n"
                + f"Content-Length: {len(GARBAGE)}\r\n\r\n".encode()
                + GARBAGE
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        writer.close()


async def main() -> None:
    mode, port = sys.argv[1], int(sys.argv[2])
    handler = {"hang": hang, "garbage": garbage}[mode]
    server = await asyncio.start_server(handler, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
