"""Events across three real replicas on one PostgreSQL database.

A chat made through one replica appears on another's watch socket; a stream opened on a
replica that does not run the chat gets the same logged events, with the same numbers, as one
on the replica that does; an interrupt sent to a replica that does not run the turn stops it
within a fraction of a second (heartbeats here are 30 s apart, so only the event hint can);
and a client resumes on another replica after the last number it received, without a gap or a
repeat.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx2
import psycopg
import pytest

from tests.e2e.events import Event, Socket, connect, has, render, settles, watch
from tests.e2e.replicas import PART_PATHS, Replicas, part_path_env, replicas
from tests.e2e.turn_harness import Fake, fake_provider

pytestmark = pytest.mark.slow

STREAM = "/api/experimental/chats/{}/stream"
# Long enough that every test's turns take their heartbeat out of play.
NO_HEARTBEAT = {"CHATD_HEARTBEAT_INTERVAL": "30"}


@pytest.fixture(scope="module", params=PART_PATHS)
def group(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Replicas, Fake]]:
    home = tmp_path_factory.mktemp("replica-events")
    env = {**NO_HEARTBEAT, **part_path_env(request.param)}
    with fake_provider(home / "fake") as fake, replicas(home, fake, 3, **env) as running:
        yield running, fake


def owner_index(group: Replicas, chat_id: str) -> int:
    """Which replica runs the chat's turn now."""
    with psycopg.connect(group.database_url) as conn:
        (worker,) = conn.execute("SELECT worker_id FROM chats WHERE id = %s", (chat_id,)).fetchone()
        rows = conn.execute("SELECT id, address FROM replicas").fetchall()
    address = {str(r): a for r, a in rows}[str(worker)]
    return group.urls.index(address)


def wait_running(group: Replicas, chat_id: str) -> int:
    deadline = time.monotonic() + 30
    while group.client(0).chat(chat_id)["status"] != "running":
        assert time.monotonic() < deadline, "the chat never ran"
        time.sleep(0.05)
    return owner_index(group, chat_id)


def open_stream(group: Replicas, index: int, chat_id: str, **params: int) -> Any:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    path = STREAM.format(chat_id) + (f"?{query}" if query else "")
    return connect(group.urls[index], path, group.token, arrays=True)


def logged(events: list[Event]) -> list[tuple[int, str]]:
    """The logged events (not parts or retries) by number, with their type."""
    return [
        (e["seq"], e["type"])
        for e in events
        if e["type"] not in ("message_part", "retry") and e["seq"] % (1 << 24) == 0
    ]


def message_texts(events: list[Event]) -> list[str]:
    return [
        "".join(p.get("text", "") for p in e["message"]["content"] or [])
        for e in events
        if e["type"] == "message"
    ]


def uses_redis(group: Replicas) -> bool:
    return "CHATD_REDIS_URL" in group.env


def numbers_increase(events: list[Event]) -> bool:
    seqs = [e["seq"] for e in events]
    return all(a < b for a, b in zip(seqs, seqs[1:], strict=False))


def test_a_chat_made_on_one_replica_is_watched_and_streamed_on_the_others(
    group: tuple[Replicas, Fake],
) -> None:
    replicas_, fake = group
    fake.script({"text": ["Hello ", "from ", "the ", "owner."], "wait_for": "first"})
    with watch(replicas_.urls[2], replicas_.token) as watcher:
        chat_id = replicas_.new_chat(0, "[first] hi")
        watcher.until(lambda es: any(e["kind"] == "created" for e in es))
        assert watcher.events[0]["chat"]["id"] == chat_id
        owner = wait_running(replicas_, chat_id)
        other = next(i for i in range(3) if i != owner)
        with (
            open_stream(replicas_, owner, chat_id) as on_owner,
            open_stream(replicas_, other, chat_id) as elsewhere,
        ):
            snapshots = [socket.frame(10) for socket in (on_owner, elsewhere)]
            for snapshot in snapshots:
                assert snapshot[0]["status"] == {"status": "running"}
            fake.open_gate("first")
            on_owner.until(settles())
            elsewhere.until(settles())
            watcher.until(
                lambda es: any(
                    e["kind"] == "status_change" and e["chat"]["status"] == "waiting" for e in es
                )
            )
    owner_live = on_owner.events[len(snapshots[0]) :]
    other_live = elsewhere.events[len(snapshots[1]) :]
    assert "P(assistant:text)" in render(owner_live)
    assert numbers_increase(owner_live)
    # The same events, numbered alike, whichever replica a client is on: the parts are
    # relayed from the replica running the turn.
    assert other_live == owner_live
    assert [t for _, t in logged(owner_live)] == ["message", "status"], render(owner_live)


def test_an_interrupt_sent_to_another_replica_stops_the_turn_at_once(
    group: tuple[Replicas, Fake],
) -> None:
    replicas_, fake = group
    fake.script({"text": ["Working ", "on ", "it"], "stall_after": 2})
    chat_id = replicas_.new_chat(1, "a long job")
    owner = wait_running(replicas_, chat_id)
    other = next(i for i in range(3) if i != owner)
    with open_stream(replicas_, owner, chat_id) as on_owner:
        on_owner.frame(10)
        on_owner.until(has("P(assistant:text)"))
        sent = time.monotonic()
        r = httpx2.post(
            f"{replicas_.urls[other]}/api/experimental/chats/{chat_id}/interrupt",
            headers={"Coder-Session-Token": replicas_.token},
            timeout=10,
        )
        assert r.status_code == 200, r.text
        on_owner.until(has("M(assistant)"), timeout=10)
        stopped = time.monotonic() - sent
    # The owner's turn saved what it had: only the hint could tell it this soon.
    assert stopped < 1.0, stopped
    assert replicas_.client(other).wait_status(chat_id, "waiting")["status"] == "waiting"
    (answer,) = [m for m in replicas_.client(owner).messages(chat_id) if m["role"] == "assistant"]
    assert "Working" in "".join(p.get("text", "") for p in answer["content"])


def drain(socket: Socket, quiet: float = 0.5) -> list[Event]:
    """Everything the socket receives until it is quiet for ``quiet`` seconds."""
    while True:
        try:
            socket.frame(quiet)
        except TimeoutError:
            return socket.events


def test_a_client_resumes_after_its_last_number_on_any_replica(
    group: tuple[Replicas, Fake],
) -> None:
    replicas_, fake = group
    fake.script({"text": ["one ", "two ", "three ", "four"], "wait_for": "resume"})
    chat_id = replicas_.new_chat(0, "count")
    owner = wait_running(replicas_, chat_id)
    other = next(i for i in range(3) if i != owner)
    with open_stream(replicas_, owner, chat_id) as whole:
        snapshot = whole.frame(10)
        fake.open_gate("resume")
        whole.until(settles())
    live = whole.events[len(snapshot) :]
    # A client that left after the turn's first part resumes: on the replica that ran the
    # turn (it keeps the turn's events a while), exactly the events after that number.
    first_part = next(e["seq"] for e in live if e["type"] == "message_part")
    with open_stream(replicas_, owner, chat_id, after_seq=first_part) as resumed:
        assert drain(resumed) == [e for e in live if e["seq"] > first_part]
    # Elsewhere: from Redis, exactly the same; without it the parts were never kept there, so
    # it says so, then sends the snapshot.
    with open_stream(replicas_, other, chat_id, after_seq=first_part) as elsewhere:
        events = drain(elsewhere)
    if uses_redis(replicas_):
        assert events == [e for e in live if e["seq"] > first_part]
    else:
        assert events[0]["type"] == "history_reset", render(events)
        assert [e["type"] for e in events[1:]] == ["status", "message", "message"]
        assert all(e["seq"] == events[0]["seq"] for e in events)
    # After the turn ended the log alone says what followed, on every replica: a client that
    # had everything gets nothing more, and nothing twice.
    final = live[-1]["seq"]
    for index in range(3):
        with open_stream(replicas_, index, chat_id, after_seq=final) as caught_up:
            assert drain(caught_up) == []


def test_an_edit_sent_to_another_replica_stops_the_turn_and_runs_the_new_one(
    group: tuple[Replicas, Fake],
) -> None:
    replicas_, fake = group
    fake.script(
        {"text": ["Answering ", "the ", "old ", "question"], "stall_after": 2},
        {"text": ["Answer ", "to ", "the ", "edit."]},
    )
    chat_id = replicas_.new_chat(2, "the old question")
    owner = wait_running(replicas_, chat_id)
    other = next(i for i in range(3) if i != owner)
    (question,) = [m for m in replicas_.client(other).messages(chat_id) if m["role"] == "user"]
    with open_stream(replicas_, owner, chat_id) as on_owner:
        on_owner.frame(10)
        on_owner.until(has("P(assistant:text)"))
        sent = time.monotonic()
        replicas_.client(other).call(
            "PATCH",
            f"/{chat_id}/messages/{question['id']}",
            json={"content": [{"type": "text", "text": "the new question"}]},
        )
        # The stalled turn stops at once: its partial answer is saved, then the new turn runs.
        on_owner.until(has("M(assistant)"), timeout=10)
        stopped = time.monotonic() - sent
        on_owner.until(lambda es: "Answer to the edit." in message_texts(es), timeout=30)
    assert stopped < 1.0, stopped
    final = replicas_.client(other).wait_status(chat_id, "waiting")
    assert final["status"] == "waiting"
    texts = [
        (m["role"], "".join(p.get("text", "") for p in m["content"] or []))
        for m in replicas_.client(other).messages(chat_id)
    ]
    assert texts == [("user", "the new question"), ("assistant", "Answer to the edit.")]
