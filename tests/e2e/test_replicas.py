"""Three real replicas on one PostgreSQL database: each registers where it is reached, they
share the chats' turns with none run twice, and each removes its row when it stops cleanly.

Each chat's reply is scripted with the fake's ``match.user`` on a marker in its first
message, so whichever replica runs a chat's turn, that chat gets its own reply.
"""

from __future__ import annotations

import json
import random
import signal
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

from chatd.testing.script import last_user_text
from tests.e2e.replicas import Replicas, replicas
from tests.e2e.server import wait_for
from tests.e2e.turn_harness import Fake, fake_provider

pytestmark = pytest.mark.slow

REPLICAS = 3
CHATS = 50
SEED = 20261207
GATE = "replies"  # holds every reply until the test has seen the turns spread
# How long all the chats may take to finish their turns (they take a few seconds).
TURNS_DONE_WITHIN = 45.0


def marker(n: int) -> str:
    return f"[chat-{n:03d}]"  # delimited: one marker is never part of another


def reply(n: int) -> str:
    return f"Reply number {n}."


def text_of(message: dict[str, Any]) -> str:
    return "".join(p.get("text", "") for p in message.get("content") or [])


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[Fake]:
    with fake_provider(tmp_path / "fake") as running:
        yield running


def registered(group: Replicas) -> dict[str, str]:
    """The ``replicas`` table: id -> address."""
    with psycopg.connect(group.database_url) as conn:
        rows = conn.execute("SELECT id, address FROM replicas").fetchall()
    return {str(replica_id): address for replica_id, address in rows}


def worker_id(group: Replicas, index: int) -> str:
    """The id replica ``index``'s worker logged at start (the id chats.worker_id names)."""
    server = group.servers[index]
    server.collect()
    for line in server.output:
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("event") == "worker started":
            return str(entry["worker_id"])
    raise AssertionError("no 'worker started' line:\n" + "\n".join(server.output))


def running_on(group: Replicas) -> dict[str, str]:
    """The running chats: id -> the worker (replica) id that runs it."""
    with psycopg.connect(group.database_url) as conn:
        rows = conn.execute("SELECT id, worker_id FROM chats WHERE status = 'running'").fetchall()
    return {str(chat_id): str(worker) for chat_id, worker in rows}


def wait_all_waiting(group: Replicas, chats: list[str], rng: random.Random) -> None:
    """Poll every chat, each time through a random replica, until all are ``waiting``."""
    left = set(chats)
    deadline = time.monotonic() + TURNS_DONE_WITHIN
    while left:
        for chat_id in sorted(left):
            status = group.client(rng.randrange(REPLICAS)).chat(chat_id)["status"]
            assert status in ("pending", "running", "waiting"), (chat_id, status)
            if status == "waiting":
                left.discard(chat_id)
        assert time.monotonic() < deadline, f"{len(left)} chats never reached waiting"
        if left:
            time.sleep(0.2)


def streamed_per_marker(fake: Fake) -> Counter[str]:
    """How many streamed model calls (turns' steps) each chat's marker received."""
    counts: Counter[str] = Counter()
    for request in fake.requests():
        body = request["body"]
        if body.get("stream"):
            counts[last_user_text(body).split(" ", 1)[0]] += 1
    return counts


def test_replicas_register_share_the_turns_once_each_and_deregister(
    tmp_path: Path, fake: Fake
) -> None:
    with replicas(tmp_path, fake, REPLICAS) as group:
        # Each replica is registered under its worker's id, at the address it listens on.
        rows = registered(group)
        assert rows == {worker_id(group, i): group.urls[i] for i in range(REPLICAS)}
        assert len(set(rows.values())) == REPLICAS

        rng = random.Random(SEED)
        fake.script(
            *(
                {"text": reply(n), "match": {"user": marker(n)}, "wait_for": GATE}
                for n in range(CHATS)
            )
        )
        chats = [
            group.new_chat(rng.randrange(REPLICAS), f"{marker(n)} hello") for n in range(CHATS)
        ]
        # With every reply held, all the chats run at once: each names, in chats.worker_id,
        # a registered replica, and the turns are spread over more than one of them (each
        # replica is woken by the chats made through it).
        wait_for(lambda: len(running_on(group)) == CHATS, "every chat to be running")
        ran_on = Counter(running_on(group).values())
        assert set(ran_on) <= set(rows), ran_on
        assert len(ran_on) > 1, ran_on
        fake.open_gate(GATE)
        wait_all_waiting(group, chats, rng)

        for n, chat_id in enumerate(chats):
            messages = group.client(rng.randrange(REPLICAS)).messages(chat_id)
            assert [(m["role"], text_of(m)) for m in messages] == [
                ("user", f"{marker(n)} hello"),
                ("assistant", reply(n)),
            ]
        # No turn ran twice: one streamed call per chat, and every scripted reply used.
        assert streamed_per_marker(fake) == Counter({marker(n): 1 for n in range(CHATS)})
        assert fake.remaining() == 0

        # A clean stop removes the replica's row, and only its.
        for index in range(REPLICAS):
            assert group.stop(index) == -signal.SIGTERM
            assert registered(group) == {
                worker_id(group, i): group.urls[i] for i in range(index + 1, REPLICAS)
            }
