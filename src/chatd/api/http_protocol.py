"""HTTP/1.1 limits that uvicorn's httptools protocol does not have: a cap on a request's
request line and headers, and a deadline for sending them.

uvicorn 0.54 bounds the header block only in its h11 protocol
(``h11_max_incomplete_event_size``); the httptools one buffers whatever arrives. Its only
timeout is for idle keep-alive connections between requests: a connection that never
finishes its headers (or never sends a byte) stays open for good. This subclass of the public
protocol class adds both, at the protocol level, before any ASGI app runs:

- more than ``max_header_bytes`` of request line and headers: **431**, connection closed;
- headers not complete ``header_timeout`` seconds after the connection opened or the request
  began: **408** (or, when not a byte of it arrived, a silent close).

Both answers carry the usual error envelope. The byte count is a lower bound of what was
received (parsed headers, and whole chunks read while the headers were still incomplete), so
no request under the cap is refused; one over it is refused at most a read (64-256 KiB) late.
A slow request *body* is the application's business (bodies are read with size limits).
"""

from __future__ import annotations

import asyncio
import http
import json
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

DEFAULT_MAX_HEADER_BYTES = 64 * 1024
DEFAULT_HEADER_TIMEOUT = 20.0


class HeaderBlockTooLarge(Exception):
    """Raised from a parser callback to stop parsing a request whose headers are too large."""


class LimitedHttpProtocol(HttpToolsProtocol):
    max_header_bytes: ClassVar[int] = DEFAULT_MAX_HEADER_BYTES
    header_timeout: ClassVar[float] = DEFAULT_HEADER_TIMEOUT

    @classmethod
    def configured(cls, max_header_bytes: int, header_timeout: float) -> type[LimitedHttpProtocol]:
        """A protocol class with these limits (uvicorn instantiates it per connection)."""
        return type(
            cls.__name__,
            (cls,),
            {"max_header_bytes": max_header_bytes, "header_timeout": header_timeout},
        )

    # --- connection lifecycle ---------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self.awaiting_headers = True  # a new connection owes us a request's headers
        self.request_begun = False
        self.header_bytes_parsed = 0
        self.header_bytes_read = 0
        self.header_overflow = False
        self.header_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm_header_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_timer()
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        whole_chunk_is_header = self.awaiting_headers and self.request_begun
        super().data_received(data)
        if self.transport.is_closing() or not self.awaiting_headers:
            return
        if whole_chunk_is_header:
            self.header_bytes_read += len(data)
        if max(self.header_bytes_read, self.header_bytes_parsed) > self.max_header_bytes:
            self.header_overflow = True
            self._refuse_header_block()

    # --- parser callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.awaiting_headers = True
        self.request_begun = True
        self.header_bytes_parsed = 0
        self.header_bytes_read = 0
        self._arm_header_timer()

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        self._count(len(url))

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self._count(len(name) + len(value) + 4)  # ": " and CRLF

    def on_headers_complete(self) -> None:
        self.awaiting_headers = False
        self.request_begun = False
        self._disarm_header_timer()
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a parser error; a callback's :class:`HeaderBlockTooLarge` is one."""
        if self.header_overflow:
            self._refuse_header_block()
        else:
            super().send_400_response(msg)

    # --- the limits -------------------------------------------------------------------------

    def _count(self, size: int) -> None:
        self.header_bytes_parsed += size
        if self.header_bytes_parsed > self.max_header_bytes:
            self.header_overflow = True
            raise HeaderBlockTooLarge

    def _arm_header_timer(self) -> None:
        if self.header_timer is None:
            self.header_timer = self.loop.call_later(self.header_timeout, self._headers_late)

    def _disarm_header_timer(self) -> None:
        if self.header_timer is not None:
            self.header_timer.cancel()
            self.header_timer = None

    def _headers_late(self) -> None:
        self.header_timer = None
        if self.transport.is_closing() or not self.awaiting_headers:
            return
        if not self.request_begun:
            self.transport.close()  # not a byte of a request: nobody to answer
            return
        self._answer_and_close(
            http.HTTPStatus.REQUEST_TIMEOUT,
            "Request timeout.",
            f"The request line and headers must arrive within {self.header_timeout:g} seconds.",
        )

    def _refuse_header_block(self) -> None:
        self._answer_and_close(
            http.HTTPStatus.REQUEST_HEADER_FIELDS_TOO_LARGE,
            "Request header fields too large.",
            f"The request line and headers may take at most {self.max_header_bytes} bytes.",
        )

    def _answer_and_close(self, status: http.HTTPStatus, message: str, detail: str) -> None:
        self._disarm_header_timer()
        if self.transport.is_closing():
            return
        body = json.dumps({"message": message, "detail": detail}).encode()
        head = [f"HTTP/1.1 {status.value} {status.phrase}\r\n".encode()]
        for name, value in self.server_state.default_headers:
            head.append(name + b": " + value + b"\r\n")
        head.append(
            b"content-type: application/json\r\n"
            b"x-content-type-options: nosniff\r\n"
            b"content-length: " + str(len(body)).encode() + b"\r\n"
            b"connection: close\r\n\r\n"
        )
        self.transport.write(b"".join(head) + body)
        self.transport.close()
