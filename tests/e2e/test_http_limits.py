"""A real ``chatd server`` on loopback caps a request's header block (431) and closes
connections whose headers never finish (408), over plain sockets."""

from __future__ import annotations

import json
import select
import socket
import time
from collections.abc import Iterator

import httpx2
import pytest

from tests.e2e.server import WAIT, ServerProcess, chatd_env

pytestmark = pytest.mark.slow

MAX_HEADER_BYTES = 16 * 1024
HEADER_TIMEOUT = 2  # seconds; the tests wait for the closes with a far longer deadline


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    home = tmp_path_factory.mktemp("http-limits")
    env = chatd_env(
        home,
        CHATD_WORKERS_ENABLED="false",
        CHATD_HTTP_MAX_HEADER_BYTES=str(MAX_HEADER_BYTES),
        CHATD_HTTP_HEADER_TIMEOUT=str(HEADER_TIMEOUT),
    )
    process = ServerProcess.start(env)
    try:
        process.wait_ready()
        yield process
    finally:
        process.stop()


def address(server: ServerProcess) -> tuple[str, int]:
    host, port = server.url.removeprefix("http://").rsplit(":", 1)
    return host, int(port)


def open_socket(server: ServerProcess) -> socket.socket:
    sock = socket.create_connection(address(server), timeout=WAIT)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return sock


def send_all(sock: socket.socket, data: bytes, chunk: int = 4096) -> int:
    """Send ``data`` in chunks until done or the server hangs up; the bytes sent."""
    sent = 0
    try:
        while sent < len(data):
            sent += sock.send(data[sent : sent + chunk])
    except (BrokenPipeError, ConnectionResetError):
        pass
    return sent


def read_until_closed(sock: socket.socket, timeout: float = WAIT) -> bytes:
    """Everything the server sends until it closes the connection (bounded by ``timeout``)."""
    deadline = time.monotonic() + timeout
    received = b""
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"the connection stayed open; got {received[:200]!r}"
        ready, _, _ = select.select([sock], [], [], remaining)
        if not ready:
            continue
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            return received
        if not data:
            return received
        received += data


def status_and_body(response: bytes) -> tuple[int, dict[str, object]]:
    head, _, body = response.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    assert b"connection: close" in head.lower()
    return status, json.loads(body)


def request(headers: str = "", path: str = "/healthz") -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: chatd\r\n{headers}\r\n".encode()


TOO_LARGE = {
    "message": "Request headers are too large.",
    "detail": f"The request line and headers may take at most {MAX_HEADER_BYTES} bytes.",
}


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param(f"X-Big: {'a' * 40_000}\r\n", id="one-large-header"),
        pytest.param("".join(f"X-H{i}: {'b' * 1000}\r\n" for i in range(40)), id="many-headers"),
        pytest.param(f"X-Big: {'c' * 400_000}\r\n", id="one-huge-header"),
    ],
)
def test_a_header_block_over_the_cap_is_431(server: ServerProcess, headers: str) -> None:
    with open_socket(server) as sock:
        send_all(sock, request(headers))
        assert status_and_body(read_until_closed(sock)) == (431, TOO_LARGE)


def test_a_long_url_counts(server: ServerProcess) -> None:
    with open_socket(server) as sock:
        send_all(sock, request(path="/healthz?" + "q" * 40_000))
        status, body = status_and_body(read_until_closed(sock))
    assert (status, body["message"]) == (414, "Request URL is too long.")
    with open_socket(server) as sock:  # a URL under the cap, headers over it with the URL
        send_all(sock, request(f"X-Big: {'h' * 10_000}\r\n", "/healthz?" + "q" * 10_000))
        assert status_and_body(read_until_closed(sock)) == (431, TOO_LARGE)


def test_a_header_that_never_ends_is_cut_off(server: ServerProcess) -> None:
    """A header value trickling in, never terminated: refused long before it would end."""
    # Far more than the kernel's socket buffers on both ends can hold (tcp_rmem may allow
    # tens of MiB), so only a server that hung up stops the sending early.
    endless = 512 * 1024 * 1024
    piece = b"z" * 65536
    with open_socket(server) as sock:
        send_all(sock, b"GET /healthz HTTP/1.1\r\nHost: chatd\r\nX-Endless: ")
        sent = 0
        try:
            while sent < endless:
                sent += sock.send(piece)
        except (BrokenPipeError, ConnectionResetError):
            pass
        assert status_and_body(read_until_closed(sock)) == (431, TOO_LARGE)
    assert sent < endless


def test_headers_under_the_cap_are_served(server: ServerProcess) -> None:
    headers = {f"x-h{i}": "d" * 1000 for i in range(12)}  # ~12 KiB of 16
    r = httpx2.get(server.url + "/healthz", headers=headers, timeout=WAIT)
    assert r.status_code == 200
    with open_socket(server) as sock:  # keep-alive: two requests on one connection
        received = b""
        for _ in range(2):
            send_all(sock, request("X-Small: 1\r\n"))
            while b"\r\n\r\n" not in received:
                received += sock.recv(65536)
            head, _, received = received.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200")
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            while len(received) < length:
                received += sock.recv(65536)
            assert json.loads(received[:length]) == {"status": "ok"}
            received = received[length:]


def test_connections_whose_headers_never_finish_are_closed(server: ServerProcess) -> None:
    half_sent = [open_socket(server) for _ in range(20)]
    silent = [open_socket(server) for _ in range(3)]
    try:
        for sock in half_sent:
            send_all(sock, b"GET /healthz HTTP/1.1\r\nHost: chatd\r\nX-Partial: ye")
        for sock in half_sent:
            status, body = status_and_body(read_until_closed(sock))
            assert status == 408
            assert body == {
                "message": "Request timeout.",
                "detail": (
                    f"The request line and headers must arrive within {HEADER_TIMEOUT} seconds."
                ),
            }
        for sock in silent:
            assert read_until_closed(sock) == b""  # closed without an answer
    finally:
        for sock in half_sent + silent:
            sock.close()
    # The server is as responsive as before.
    assert httpx2.get(server.url + "/healthz", timeout=WAIT).status_code == 200
