"""kill -9 a real ``chatd server`` mid-turn; a restarted one finishes the chat (§4.5).

The fake provider stalls the second turn's stream after two deltas, so the server is certainly
mid-turn when it is killed. The restarted server's stale recovery puts the chat back to
pending, the turn runs again from the committed history, and the message queued before the
kill is promoted afterwards. Nothing committed is lost, and nothing is stored twice.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx2
import pytest

from tests.e2e.server import (
    ServerProcess,
    chatd_env,
    fake_provider_process,
    postgres_database,
    wait_for,
)

pytestmark = pytest.mark.slow
PG_ENV = "CHATD_TEST_DATABASE_URL"


@pytest.fixture
def fake_provider(tmp_path: Path) -> Iterator[str]:
    with fake_provider_process(tmp_path) as url:
        yield url


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """'' for the embedded SQLite, else a fresh PostgreSQL database (dropped afterwards)."""
    if request.param == "sqlite":
        yield ""
        return
    base = os.environ.get(PG_ENV)
    if not base:
        pytest.skip(f"PostgreSQL tests are off: set {PG_ENV}")
    with postgres_database(base, "chatd_kill") as url:
        yield url


class Client:
    def __init__(self, server: ServerProcess, token: str) -> None:
        self.root = server.url
        self.base = server.url + "/api/experimental/chats"
        self.headers = {"Coder-Session-Token": token}

    def org_id(self) -> str:
        r = httpx2.get(self.root + "/api/v2/users/me", headers=self.headers, timeout=10)
        assert r.status_code == 200, r.text
        return str(r.json()["organization_ids"][0])

    def call(self, method: str, path: str = "", **kwargs: Any) -> Any:
        r = httpx2.request(method, self.base + path, headers=self.headers, timeout=10, **kwargs)
        assert r.status_code < 300, r.text
        return r.json() if r.content else None

    def status(self, chat_id: str) -> str:
        return str(self.call("GET", f"/{chat_id}")["status"])

    def history(self, chat_id: str) -> list[tuple[str, str]]:
        messages = self.call("GET", f"/{chat_id}/messages", params={"limit": 100})["messages"]
        return [
            (m["role"], "".join(p.get("text", "") for p in m.get("content") or []))
            for m in sorted(messages, key=lambda m: m["id"])
        ]


def stream_calls(fake: str) -> int:
    return sum(1 for r in httpx2.get(fake + "/fake/requests").json() if r["body"].get("stream"))


def test_kill_mid_turn_then_restart_finishes_the_chat(
    tmp_path: Path, fake_provider: str, database_url: str
) -> None:
    replies = [
        {"match": {"stream": True}, "text": "First answer."},
        {"match": {"stream": True}, "text": "Second answer, cut off.", "stall_after": 2},
        {"match": {"stream": True}, "text": "Second answer, after the restart."},
        {"match": {"stream": True}, "text": "Third answer."},
    ]
    assert httpx2.post(fake_provider + "/fake/script", json=replies).status_code < 300
    env = chatd_env(
        tmp_path,
        CHATD_OPENAI_BASE_URL=fake_provider + "/v1",
        CHATD_OPENAI_MODEL="fake-model",
        CHATD_ACQUIRE_INTERVAL="0.1",
        CHATD_HEARTBEAT_INTERVAL="0.2",
        CHATD_STALE_AFTER="1.5",
        CHATD_STALE_RECOVERY_INTERVAL="0.2",
    )
    if database_url:
        env["CHATD_DATABASE_URL"] = database_url

    # The first server must not take its own stalled turn for a dead worker's: with the short
    # stale window the second server recovers with, a heartbeat that lags 1.5 s on a loaded
    # machine made it run the turn again and take the reply meant for after the restart.
    first = ServerProcess.start({**env, "CHATD_STALE_AFTER": "600"})
    try:
        first.wait_ready()
        token = first.value("token")
        api = Client(first, token)
        chat = api.call(
            "POST",
            json={
                "organization_id": api.org_id(),
                "content": [{"type": "text", "text": "one"}],
            },
        )
        chat_id = chat["id"]
        wait_for(lambda: api.status(chat_id) == "waiting", "the first turn")
        api.call(
            "POST", f"/{chat_id}/messages", json={"content": [{"type": "text", "text": "two"}]}
        )
        wait_for(lambda: stream_calls(fake_provider) == 2, "the second turn to stream")
        assert api.status(chat_id) == "running"
        queued = api.call(
            "POST", f"/{chat_id}/messages", json={"content": [{"type": "text", "text": "three"}]}
        )
        assert queued["queued"] is True
    finally:
        first.proc.kill()
        first.proc.wait()

    second = ServerProcess.start(env)
    try:
        second.wait_ready()
        api = Client(second, token)
        wait_for(lambda: stream_calls(fake_provider) == 4, "the recovered turns")
        wait_for(lambda: api.status(chat_id) == "waiting", "the chat to finish")
        assert api.history(chat_id) == [
            ("user", "one"),
            ("assistant", "First answer."),
            ("user", "two"),
            ("assistant", "Second answer, after the restart."),
            ("user", "three"),
            ("assistant", "Third answer."),
        ]
        assert api.call("GET", f"/{chat_id}").get("last_error") is None
    finally:
        second.stop()
