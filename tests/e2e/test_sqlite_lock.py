"""Another process holds SQLite's write lock while turns stream: the streams go on.

A backup tool or a ``sqlite3`` shell can hold the database's write lock for seconds. The
server's statements run off the event loop, so while the lock is held only the writes wait:
every stream keeps receiving deltas, and each turn's step is written once the lock is gone.
"""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.e2e import events as ev
from tests.e2e.turn_harness import deployment, fake_provider

pytestmark = pytest.mark.slow

CHATS = 3
HOLD_SECONDS = 3.0
# Each reply streams for ~5 s: it starts before the lock is taken and ends after it is let go.
WORDS = 125
TOKENS_PER_SECOND = 25

HOLD_LOCK = f"""
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None)
conn.execute("BEGIN IMMEDIATE")
print("locked", flush=True)
time.sleep({HOLD_SECONDS})
conn.execute("COMMIT")
"""


class Follower(threading.Thread):
    """Reads one chat's stream until its turn settles, noting when each frame arrived."""

    def __init__(self, socket: ev.Socket) -> None:
        super().__init__(daemon=True)
        self.socket = socket
        self.delta_times: list[float] = []
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not ev.settled(self.socket.events):
                received = self.socket.frame(ev.WAIT)
                if any(e.get("type") == "message_part" for e in received):
                    self.delta_times.append(time.monotonic())
        except BaseException as error:  # reported by the test
            self.error = error


def test_streams_go_on_while_another_process_holds_the_write_lock(tmp_path: Path) -> None:
    reply = " ".join(f"w{i}" for i in range(WORDS))
    with (
        fake_provider(tmp_path / "fake") as fake,
        deployment(tmp_path / "server", fake, "sqlite") as dep,
    ):
        database = tmp_path / "server" / "data" / "chatd.db"
        assert database.exists()
        chat_ids = [dep.idle_chat() for _ in range(CHATS)]
        with (
            ev.stream(dep.api.url, dep.api.token, chat_ids[0]) as s0,
            ev.stream(dep.api.url, dep.api.token, chat_ids[1]) as s1,
            ev.stream(dep.api.url, dep.api.token, chat_ids[2]) as s2,
        ):
            followers = [Follower(s) for s in (s0, s1, s2)]
            for chat_id in chat_ids:
                fake.script(
                    {"text": reply, "chunk_chars": 4, "tokens_per_second": TOKENS_PER_SECOND}
                )
                dep.api.send(chat_id, "go")
            for follower in followers:
                follower.start()
            ev_wait = time.monotonic() + ev.WAIT
            while not all(f.delta_times for f in followers):
                assert time.monotonic() < ev_wait, "no turn started streaming"
                time.sleep(0.01)

            with subprocess.Popen(
                [sys.executable, "-c", HOLD_LOCK, str(database)],
                stdout=subprocess.PIPE,
                text=True,
            ) as holder:
                assert holder.stdout is not None
                assert holder.stdout.readline().strip() == "locked"
                locked_at = time.monotonic()
                assert holder.wait(timeout=30) == 0
                released_at = time.monotonic()

            for follower in followers:
                follower.join(ev.WAIT)
                assert follower.error is None, follower.error
                assert not follower.is_alive()

        assert released_at - locked_at >= HOLD_SECONDS - 0.1
        for follower, chat_id in zip(followers, chat_ids, strict=True):
            during = [t for t in follower.delta_times if locked_at + 0.5 < t < released_at - 0.5]
            # ~2 s of a 25/s stream: the loop never stalled on the lock.
            assert len(during) >= 10, (chat_id, len(during))
            events = follower.socket.events
            assert ev.text_of(events) == reply  # no delta lost
            assert ev.statuses(events)[-1] == "waiting"
            assistant = [m for m in dep.api.messages(chat_id) if m["role"] == "assistant"][-1]
            assert "".join(p.get("text") or "" for p in assistant["content"]) == reply
