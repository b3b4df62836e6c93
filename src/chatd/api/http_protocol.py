"""HTTP/1.1 limits and answers that uvicorn's httptools protocol does not have.

Some requests never reach the application, and uvicorn's httptools protocol leaves them
unbounded or answers them in plain text. This subclass of the public protocol class works at
the protocol level, before any ASGI app runs, and answers with the error envelope:

- a request line and headers over ``max_header_bytes``: **431** (**414** when the URL alone is
  over it). uvicorn bounds the header block only in its h11 protocol; the httptools one keeps
  whatever arrives. Past the cap nothing more of the head is kept: the rest is read and
  dropped until the head ends, so a client that sends it all before reading gets the answer
  rather than a reset, up to :data:`DRAIN_BYTES`; beyond that the answer goes out at once
  (such a client can see a reset);
- headers not complete ``header_timeout`` seconds after the connection opened or the request
  began: **408** (or, when not a byte of it arrived, a silent close). uvicorn's only timeout is
  for idle keep-alive connections between requests;
- a request the parser refuses: **414** for a URL over httptools' own limit (65,535 bytes), else
  **400**, where uvicorn answered in plain text.

Every such answer closes the connection. A slow request *body* is the application's business
(bodies are read with size limits). The application's own limits (:mod:`chatd.api.middleware`)
are lower, so a client within these sees the app's answer, with its request id.
"""

from __future__ import annotations

import asyncio
import http
from typing import ClassVar

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from chatd.api.errors import ApiError
from chatd.api.middleware import SECURITY_HEADERS, headers_too_large, url_too_long

DEFAULT_MAX_HEADER_BYTES = 64 * 1024
DEFAULT_HEADER_TIMEOUT = 20.0
HTTPTOOLS_MAX_URL = 65_535
# A head over the cap is read and dropped up to this many bytes before the answer.
DRAIN_BYTES = 1 << 20


class HeaderBlockTooLarge(Exception):
    """Raised from a parser callback to stop parsing a request whose head was too large."""


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
        self.url_bytes = 0
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
        if max(self.header_bytes_read, self.header_bytes_parsed) > self.drain_bytes():
            self.header_overflow = True
            self._refuse_header_block()

    # --- parser callbacks -------------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.awaiting_headers = True
        self.request_begun = True
        self.header_bytes_parsed = 0
        self.header_bytes_read = 0
        self.url_bytes = 0
        self._arm_header_timer()

    def on_url(self, url: bytes) -> None:
        self.url_bytes += len(url)
        if self._kept(len(url)):
            super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if self._kept(len(name) + len(value) + 4):  # ": " and CRLF
            super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.awaiting_headers = False
        self.request_begun = False
        self._disarm_header_timer()
        if self.header_overflow:
            raise HeaderBlockTooLarge  # a parser error: answered by send_400_response
        super().on_headers_complete()

    def send_400_response(self, msg: str) -> None:
        """uvicorn's answer to a parser error (a callback's :class:`HeaderBlockTooLarge` is one):
        the envelope instead of plain text."""
        if self.header_overflow:
            self._refuse_header_block()
        elif self.url_bytes > HTTPTOOLS_MAX_URL:
            self._answer_and_close(url_too_long())
        else:
            self._answer_and_close(
                ApiError(400, "Invalid HTTP request.", "The request could not be parsed.")
            )

    # --- the limits -------------------------------------------------------------------------

    def _kept(self, size: int) -> bool:
        """Count ``size`` bytes of the head; False once past the cap (they are dropped)."""
        self.header_bytes_parsed += size
        if self.header_bytes_parsed > self.max_header_bytes:
            self.header_overflow = True
        return not self.header_overflow

    def drain_bytes(self) -> int:
        return max(DRAIN_BYTES, self.max_header_bytes)

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
            ApiError(
                http.HTTPStatus.REQUEST_TIMEOUT,
                "Request timeout.",
                f"The request line and headers must arrive within {self.header_timeout:g} "
                "seconds.",
            )
        )

    def _refuse_header_block(self) -> None:
        if self.url_bytes > self.max_header_bytes:
            self._answer_and_close(url_too_long())
            return
        error = headers_too_large()
        error.detail = (
            f"The request line and headers may take at most {self.max_header_bytes} bytes."
        )
        self._answer_and_close(error)

    def _answer_and_close(self, error: ApiError) -> None:
        self._disarm_header_timer()
        if self.transport.is_closing():
            return
        self.transport.write(raw_response(error, self.server_state.default_headers))
        self.transport.close()


def raw_response(error: ApiError, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """``error`` as the bytes of an HTTP/1.1 response that closes the connection."""
    body = bytes(error.response().body)
    status = http.HTTPStatus(error.status)
    lines = [f"HTTP/1.1 {status.value} {status.phrase}".encode("ascii")]
    lines += [name + b": " + value for name, value in default_headers]
    lines += [name + b": " + value for name, value in SECURITY_HEADERS]
    lines += [
        b"content-type: application/json",
        b"content-length: " + str(len(body)).encode("ascii"),
        b"connection: close",
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
