"""uvicorn's httptools protocol, answering requests it cannot parse with the error envelope.

Some requests never reach the application: the parser refuses a URL over 65,535 bytes
(httptools keeps URL offsets in 16 bits) and any malformed request line or header, and uvicorn
answers those with a plain-text 400. This protocol answers with the envelope instead: 414 for
a URL over the limit, 431 for headers over :data:`MAX_HEAD_BYTES`, 400 otherwise. It also
bounds how much of a request head is held in memory (uvicorn keeps all of it), refusing a head
over :data:`MAX_HEAD_BYTES` as soon as it is seen, while its sender may still be sending (such a
client can see a connection reset instead of the answer).

The application's own limits (:mod:`chatd.api.middleware`) are lower, so a client that stays
within these sees the app's answer, with its request id.
"""

from __future__ import annotations

import http

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from chatd.api.errors import ApiError
from chatd.api.middleware import headers_too_large, url_too_long

HTTPTOOLS_MAX_URL = 65_535
MAX_HEAD_BYTES = 1 << 20


class HeadTooLarge(Exception):
    """The request line or headers went over :data:`MAX_HEAD_BYTES`."""


class EnvelopeHttpToolsProtocol(HttpToolsProtocol):
    head_bytes = 0

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.head_bytes = 0

    def on_url(self, url: bytes) -> None:
        super().on_url(url)
        if len(self.url) > MAX_HEAD_BYTES:
            raise HeadTooLarge

    def on_header(self, name: bytes, value: bytes) -> None:
        super().on_header(name, value)
        self.head_bytes += len(name) + len(value)
        if self.head_bytes > MAX_HEAD_BYTES:
            raise HeadTooLarge

    def send_400_response(self, msg: str) -> None:
        """Called for every request the parser refuses; answers and closes the connection."""
        url: bytes = getattr(self, "url", b"")
        if len(url) > HTTPTOOLS_MAX_URL:
            error = url_too_long()
        elif self.head_bytes > MAX_HEAD_BYTES:
            error = headers_too_large()
        else:
            error = ApiError(400, "Invalid HTTP request.", "The request could not be parsed.")
        self.transport.write(raw_response(error, self.server_state.default_headers))
        self.transport.close()


def raw_response(error: ApiError, default_headers: list[tuple[bytes, bytes]]) -> bytes:
    """``error`` as the bytes of an HTTP/1.1 response that closes the connection."""
    body = bytes(error.response().body)
    status = http.HTTPStatus(error.status)
    lines = [f"HTTP/1.1 {status.value} {status.phrase}".encode("ascii")]
    lines += [name + b": " + value for name, value in default_headers]
    lines += [
        b"content-type: application/json",
        b"content-length: " + str(len(body)).encode("ascii"),
        b"x-content-type-options: nosniff",
        b"connection: close",
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body
