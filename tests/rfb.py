"""A small RFB (VNC) client for the tests, over any byte transport: the RFB 3.8 handshake
with security type None, then one framebuffer update request."""

from __future__ import annotations

import re
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

VERSION = re.compile(rb"RFB 003\.00\d\n")
SECURITY_NONE = 1
FRAMEBUFFER_UPDATE_REQUEST = 3
FRAMEBUFFER_UPDATE = 0


@dataclass(frozen=True)
class ServerInit:
    width: int
    height: int
    name: bytes


class RfbClient:
    """Reads through ``read`` (the next chunk; empty at the end) and writes through
    ``write``."""

    def __init__(
        self, read: Callable[[], Awaitable[bytes]], write: Callable[[bytes], Awaitable[None]]
    ) -> None:
        self._read = read
        self._write = write
        self._buffer = bytearray()
        self.version = b""

    async def exact(self, count: int) -> bytes:
        while len(self._buffer) < count:
            chunk = await self._read()
            if not chunk:
                raise EOFError(f"the server closed after {bytes(self._buffer)!r}")
            self._buffer += chunk
        data = bytes(self._buffer[:count])
        del self._buffer[:count]
        return data

    async def handshake(self) -> ServerInit:
        """ProtocolVersion, security None, ClientInit (shared), ServerInit."""
        self.version = await self.exact(12)
        assert VERSION.fullmatch(self.version), self.version
        await self._write(b"RFB 003.008\n")
        count = (await self.exact(1))[0]
        assert count > 0, "the server refused the connection"
        types = await self.exact(count)
        assert SECURITY_NONE in types, types
        await self._write(bytes([SECURITY_NONE]))
        (result,) = struct.unpack(">I", await self.exact(4))
        assert result == 0, "the security handshake failed"
        await self._write(b"\x01")  # shared
        head = await self.exact(24)
        width, height = struct.unpack(">HH", head[:4])
        (name_length,) = struct.unpack(">I", head[20:24])
        return ServerInit(width, height, await self.exact(name_length))

    async def request_update(self, init: ServerInit) -> int:
        """Ask for the whole screen; the type of the server's next message."""
        await self._write(
            struct.pack(">BBHHHH", FRAMEBUFFER_UPDATE_REQUEST, 0, 0, 0, init.width, init.height)
        )
        return (await self.exact(1))[0]
