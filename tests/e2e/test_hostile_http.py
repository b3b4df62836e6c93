"""Hostile HTTP against a real ``chatd server``: the envelope over real sockets, and its log.

What in-process tests cannot show: what uvicorn itself answers (URLs its parser refuses,
malformed requests), what a client that sends its whole body before reading (urllib) sees when
the body is refused, and what the server prints for an unhandled error.
"""

from __future__ import annotations

import json
import socket
import sqlite3
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from chatd.api.middleware import MAX_URL_BYTES
from tests.e2e.server import ServerProcess, chatd_env, wait_for

pytestmark = pytest.mark.slow

MAX_FILE = 10 << 20


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: dict[str, Any]


@dataclass
class Running:
    server: ServerProcess
    token: str
    org_id: str
    data_dir: Path

    def call(self, method: str, path: str, data: bytes | None = None, **headers: str) -> Answer:
        """A request with urllib (which sends a whole body before reading the answer)."""
        request = urllib.request.Request(
            self.server.url + path,
            data=data,
            method=method,
            headers={"Coder-Session-Token": self.token, **headers},
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return Answer(response.status, dict(response.headers), json.loads(response.read()))
        except urllib.error.HTTPError as error:
            return Answer(error.code, dict(error.headers), json.loads(error.read()))


@pytest.fixture(scope="module")
def running(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    home = tmp_path_factory.mktemp("hostile")
    server = ServerProcess.start(chatd_env(home, CHATD_WORKERS_ENABLED="false"))
    try:
        server.wait_ready()
        token = server.value("token")
        partial = Running(server, token, "", home / "data")
        org_id = partial.call("GET", "/api/v2/organizations").body
        assert isinstance(org_id, list)
        partial.org_id = org_id[0]["id"]
        yield partial
    finally:
        server.stop()


def raw_exchange(running: Running, request: bytes) -> Answer:
    """Send ``request`` bytes on a fresh connection and read the answer until the server closes."""
    host, port = running.server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(request)
        received = b""
        while chunk := sock.recv(65536):
            received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    return Answer(int(status_line.split()[1]), headers, json.loads(body))


def is_envelope(body: dict[str, Any]) -> bool:
    return isinstance(body.get("message"), str) and set(body) <= {"message", "detail"}


def test_an_upload_over_the_cap_is_a_413_for_a_client_that_sends_it_all(
    running: Running,
) -> None:
    # urllib writes all 11 MiB before reading, and asks to close the connection afterwards.
    answer = running.call(
        "POST",
        f"/api/experimental/chats/files?organization={running.org_id}",
        b"a" * (MAX_FILE + (1 << 20)),
        **{"Content-Type": "text/plain", "Content-Disposition": 'attachment; filename="a.txt"'},
    )
    assert answer.status == 413
    assert answer.body == {
        "message": "File too large.",
        "detail": f"Maximum file size is {MAX_FILE} bytes.",
    }
    assert answer.headers["connection"] == "close"


def test_a_json_body_over_its_limit_is_a_400_for_a_client_that_sends_it_all(
    running: Running,
) -> None:
    body = json.dumps({"email": "x" * (3 << 19), "password": "x"}).encode()
    answer = running.call(
        "POST", "/api/v2/users/login", body, **{"Content-Type": "application/json"}
    )
    assert answer.status == 400
    assert answer.body == {
        "message": "Request body must be valid JSON.",
        "detail": "http: request body too large",
    }


def test_long_urls_get_the_envelope(running: Running) -> None:
    # Over the app's cap: the app answers, with its request id.
    answer = running.call("GET", "/api/experimental/chats?q=" + "x" * MAX_URL_BYTES)
    assert answer.status == 414 and is_envelope(answer.body)
    assert len(answer.headers["x-request-id"]) == 32
    # A 1 MB URL never reaches the app: uvicorn's parser refuses it, and the envelope is ours.
    path = "/api/experimental/chats?q=" + "x" * 1_000_000
    answer = raw_exchange(running, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert answer.status == 414
    assert answer.body == {
        "message": "Request URL is too long.",
        "detail": f"The path and query string may hold at most {MAX_URL_BYTES} bytes.",
    }
    assert answer.headers["content-type"] == "application/json"


def test_large_headers_and_malformed_requests_get_the_envelope(running: Running) -> None:
    answer = running.call("GET", "/api/v2/users/me", **{"X-Padding": "x" * (100 << 10)})
    assert answer.status == 431 and is_envelope(answer.body)
    answer = raw_exchange(running, b"NOT AN HTTP REQUEST\r\n\r\n")
    assert answer.status == 400
    assert answer.body == {
        "message": "Invalid HTTP request.",
        "detail": "The request could not be parsed.",
    }
    assert running.call("GET", "/healthz").status == 200


def test_a_request_head_over_the_hard_bound_is_not_served(running: Running) -> None:
    # Over 1 MiB of headers: uvicorn alone would hold them all and serve the request. The server
    # refuses as soon as the bound is passed, while this client is still sending, so the client
    # sees either the 431 or a reset; never the health check's 200.
    request = b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Padding: " + b"x" * (2 << 20) + b"\r\n\r\n"
    try:
        answer = raw_exchange(running, request)
    except OSError:
        pass  # reset while sending or reading
    else:
        assert answer.status == 431 and is_envelope(answer.body)
    assert running.call("GET", "/healthz").status == 200


def test_hostile_json_prints_no_traceback(running: Running) -> None:
    for body in (b'{"email": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", b'{"email": "\\ud800"}'):
        answer = running.call(
            "POST", "/api/v2/users/login", body, **{"Content-Type": "application/json"}
        )
        assert answer.status == 400 and is_envelope(answer.body)
    running.server.collect()
    assert not [line for line in running.server.output if "Traceback" in line]


def test_an_unhandled_error_is_one_log_line(running: Running) -> None:
    database = sqlite3.connect(running.data_dir / "chatd.db", timeout=30)
    try:
        database.execute("ALTER TABLE chat_files RENAME TO chat_files_away")
        database.commit()
        started = len(running.server.output)
        answer = running.call("GET", f"/api/experimental/chats/files/{uuid.uuid4()}")
        # A second failure: once its line is out, all the first one printed is out too.
        marker = running.call(
            "GET", f"/api/experimental/chats/files/{uuid.uuid4()}", **{"X-Request-Id": "marker"}
        )
    finally:
        database.execute("ALTER TABLE chat_files_away RENAME TO chat_files")
        database.commit()
        database.close()
    rid = answer.headers["x-request-id"]
    assert answer.status == 500
    assert answer.body == {"message": "Internal error.", "detail": f"Request ID: {rid}"}
    assert marker.status == 500 and marker.headers["x-request-id"] == "marker"

    def printed() -> list[str]:
        running.server.collect()
        return running.server.output[started:]

    wait_for(lambda: any('"marker"' in line for line in printed()), "the second error's line")
    first, second = printed()  # one line per failed request, and nothing else
    entry = json.loads(first)
    assert entry["event"] == "unhandled error" and entry["level"] == "error"
    assert entry["request_id"] == rid and entry["error"] == "StoreError"
    assert "exception" not in entry
    assert json.loads(second)["request_id"] == "marker"


def test_websockets_are_not_compressed_when_a_client_asks(running: Running) -> None:
    """permessage-deflate is declined: it would compress every delta once per socket."""
    host, port = running.server.url.removeprefix("http://").split(":")
    request = (
        "GET /api/experimental/chats/watch HTTP/1.1\r\n"
        f"Host: {host}:{port}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
        "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n"
        f"Coder-Session-Token: {running.token}\r\n\r\n"
    )
    with socket.create_connection((host, int(port)), timeout=60) as sock:
        sock.sendall(request.encode())
        received = b""
        while b"\r\n\r\n" not in received and (chunk := sock.recv(65536)):
            received += chunk
    status_line, *header_lines = received.partition(b"\r\n\r\n")[0].decode().split("\r\n")
    headers = {k.lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
    assert status_line.split()[1] == "101"
    assert headers["upgrade"].lower() == "websocket"
    assert "sec-websocket-extensions" not in headers
