"""``chatd chats list``, ``chatd chat new`` and following a real turn, against real processes."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx2
import pytest

from tests.e2e.server import ServerProcess, chatd_env, fake_provider_process, run_cli

pytestmark = pytest.mark.slow
READY_TIMEOUT = 60.0


@pytest.fixture
def servers() -> Iterator[list[ServerProcess]]:
    started: list[ServerProcess] = []
    yield started
    for server in started:
        server.stop()


@pytest.fixture
def fake_provider(tmp_path: Path) -> Iterator[str]:
    """A ``chatd dev fake-provider`` process; yields its base URL."""
    with fake_provider_process(tmp_path) as url:
        yield url


def start(env: dict[str, str], servers: list[ServerProcess]) -> ServerProcess:
    server = ServerProcess.start(env)
    servers.append(server)
    server.wait_ready()
    return server


def test_list_and_new_without_following(tmp_path: Path, servers: list[ServerProcess]) -> None:
    env = chatd_env(tmp_path, CHATD_WORKERS_ENABLED="false")
    server = start(env, servers)
    headers = {"Coder-Session-Token": server.value("token")}
    api = server.url + "/api/experimental/chats"
    r = httpx2.post(
        api + "/providers", headers=headers, json={"provider": "openai", "api_key": "k"}
    )
    assert r.status_code == 201, r.text
    r = httpx2.post(
        api + "/model-configs",
        headers=headers,
        json={"provider": "openai", "model": "gpt-4o", "context_limit": 128000},
    )
    assert r.status_code == 201, r.text

    empty = run_cli(env, "chats", "list")
    assert empty.returncode == 0, empty.stderr
    assert empty.stdout.split() == ["ID", "TITLE", "STATUS", "UPDATED"]

    created = run_cli(env, "chat", "new", "--no-follow", "hi")
    assert created.returncode == 0, created.stderr
    assert created.stdout.startswith("Created chat ") and created.stdout.rstrip().endswith(": hi")
    chat_id = created.stdout.split()[2].rstrip(":")

    listed = run_cli(env, "chats", "list")
    assert listed.returncode == 0, listed.stderr
    header, row = listed.stdout.splitlines()
    assert header.split() == ["ID", "TITLE", "STATUS", "UPDATED"]
    assert row.split()[:3] == [chat_id, "hi", "pending"]

    # uvicorn answers a refused WebSocket upgrade with the HTTP envelope.
    upgrade = {
        "Connection": "Upgrade",
        "Upgrade": "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
    }
    refused = httpx2.get(f"{api}/{chat_id}/stream", headers=upgrade)
    assert refused.status_code == 401
    assert refused.json()["message"].startswith("You are signed out")

    missing = run_cli(env, "chat", "send", "00000000-0000-0000-0000-000000000001", "x")
    assert missing.returncode == 1
    assert "error 404" in missing.stderr


def test_new_follows_a_real_turn(
    tmp_path: Path, servers: list[ServerProcess], fake_provider: str
) -> None:
    script = [
        {
            "match": {"stream": True},
            "reasoning": "thinking it over",
            "text": ["Hello", " from", " the fake"],
            "tokens_per_second": 4,  # slow enough that the CLI joins while it streams
        },
        {"match": {"stream": True}, "text": "Second answer."},
    ]
    assert httpx2.post(fake_provider + "/fake/script", json=script).status_code < 300
    env = chatd_env(
        tmp_path,
        CHATD_OPENAI_BASE_URL=fake_provider + "/v1",
        CHATD_OPENAI_MODEL="fake-model",
    )
    start(env, servers)

    new = run_cli(env, "chat", "new", "say hello")
    assert new.returncode == 0, new.stdout + new.stderr
    lines = new.stdout.splitlines()
    assert lines[0].startswith("Created chat ")
    assert "thinking it over" in new.stdout
    assert "Hello from the fake" in new.stdout
    chat_id = lines[0].split()[2].rstrip(":")

    sent = run_cli(env, "chat", "send", chat_id, "and again")
    assert sent.returncode == 0, sent.stdout + sent.stderr
    assert sent.stdout.startswith("Sent message ")
    assert "Second answer." in sent.stdout

    listed = run_cli(env, "chats", "list")
    assert f"{chat_id}" in listed.stdout and "waiting" in listed.stdout
