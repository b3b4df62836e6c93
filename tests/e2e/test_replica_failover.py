"""Faults across three real replicas on one PostgreSQL database.

- The replica running a turn is killed (SIGKILL) mid-turn: another takes the chat over once its
  heartbeat is stale and finishes it. Clients on the surviving replicas, and one that comes
  back with ``after_seq``, end with the same history: no message lost or repeated.
- Every replica's listener connection is terminated (``pg_terminate_backend``), or the
  PostgreSQL server is restarted (a cluster of the test's own), during a turn, while a message
  is queued through another replica: they reconnect, catch up from the event log, and every
  client sees the same events in the same order.
"""

from __future__ import annotations

import functools
import signal
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack
from pathlib import Path

import psycopg
import pytest

from chatd.store.listener import APPLICATION_NAME
from tests.e2e.events import Event, Socket, connect, has, render, settles
from tests.e2e.private_postgres import private_postgres
from tests.e2e.replicas import PART_PATHS, Replicas, part_path_env, replicas
from tests.e2e.server import wait_for
from tests.e2e.test_replica_events import (
    drain,
    numbers_increase,
    owner_index,
    wait_running,
)
from tests.e2e.turn_harness import Fake, fake_provider

pytestmark = pytest.mark.slow

STREAM = "/api/experimental/chats/{}/stream"
FAILOVER = {
    "CHATD_STALE_AFTER": "3",
    "CHATD_STALE_RECOVERY_INTERVAL": "0.5",
}


@pytest.fixture(params=PART_PATHS)
def part_path(request: pytest.FixtureRequest) -> dict[str, str]:
    """How a turn's parts reach the other replicas (the internal relay, or Redis Streams)."""
    return part_path_env(request.param)


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[Fake]:
    with fake_provider(tmp_path / "fake") as running:
        yield running


def stream(
    group: Replicas, index: int, chat_id: str, **params: int
) -> AbstractContextManager[Socket]:
    query = "&".join(f"{k}={v}" for k, v in params.items())
    path = STREAM.format(chat_id) + (f"?{query}" if query else "")
    return connect(group.urls[index], path, group.token, arrays=True)


def message_ids(events: list[Event]) -> list[int]:
    return [e["message"]["id"] for e in events if e["type"] == "message"]


def stored(group: Replicas, index: int, chat_id: str) -> list[tuple[int, str, str]]:
    return [
        (m["id"], m["role"], "".join(p.get("text", "") for p in m["content"] or []))
        for m in group.client(index).messages(chat_id)
    ]


def test_a_turn_whose_replica_is_killed_is_finished_by_another(
    tmp_path: Path, fake: Fake, part_path: dict[str, str]
) -> None:
    fake.script(
        {"text": [f"slow{i} " for i in range(40)], "tokens_per_second": 10},
        {"text": ["Finished ", "after ", "failover."]},
    )
    with replicas(tmp_path, fake, 3, **FAILOVER, **part_path) as group:
        chat_id = group.new_chat(0, "survive this")
        owner = wait_running(group, chat_id)
        survivors = [i for i in range(3) if i != owner]
        with (
            stream(group, survivors[0], chat_id) as first,
            stream(group, survivors[1], chat_id) as second,
        ):
            snapshots = [first.frame(10), second.frame(10)]
            first.until(has("P(assistant:text)"))
            # A client that leaves mid-turn, remembering the last number it received.
            with stream(group, survivors[1], chat_id) as leaver:
                leaver.frame(10)
                leaver.until(lambda es: len(es) > 3)
                left_at = leaver.events[-1]["seq"]
            group.servers[owner].proc.send_signal(signal.SIGKILL)
            group.servers[owner].proc.wait(10)
            # Another replica recovers the chat and runs the turn again to its end.
            for socket in (first, second):
                socket.until(has("M(assistant)"), timeout=60)
                socket.until(has("S(waiting)"), timeout=30)
        with stream(group, survivors[0], chat_id, after_seq=left_at) as back:
            resumed = drain(back)
        final = stored(group, survivors[0], chat_id)
        assert running_on(group, chat_id) is None
    assert [(role, text) for _, role, text in final] == [
        ("user", "survive this"),
        ("assistant", "Finished after failover."),
    ]
    for socket, snapshot in zip((first, second), snapshots, strict=True):
        live = socket.events[len(snapshot) :]
        assert numbers_increase(live), render(live)
        ids = message_ids(socket.events)
        assert len(ids) == len(set(ids))  # no message twice
        assert ids[-1] == final[-1][0]
    # Both survivors' clients saw the same events from where both had started.
    common = max(
        first.events[len(snapshots[0]) - 1]["seq"], second.events[len(snapshots[1]) - 1]["seq"]
    )
    assert [e for e in first.events if e["seq"] > common] == [
        e for e in second.events if e["seq"] > common
    ]
    # The client that came back gets the rest (with Redis the dead replica's parts too), or
    # is told to rebuild from a snapshot; either way it ends with the stored history, each
    # message once.
    if part_path:
        assert resumed == [e for e in first.events if e["seq"] > left_at], render(resumed)
    if resumed and resumed[0]["type"] == "history_reset":
        ids = message_ids(resumed)
        assert ids == [m_id for m_id, _, _ in final]
    else:
        assert resumed == [e for e in first.events if e["seq"] > left_at]
        assert numbers_increase(resumed)


def running_on(group: Replicas, chat_id: str) -> int | None:
    """Which replica runs the chat now (None: none)."""
    with psycopg.connect(group.database_url) as conn:
        row = conn.execute("SELECT worker_id FROM chats WHERE id = %s", (chat_id,)).fetchone()
    return None if row is None or row[0] is None else owner_index(group, chat_id)


def listeners(group: Replicas) -> list[int]:
    """The backend pids of the replicas' LISTEN connections."""
    with psycopg.connect(group.database_url) as conn:
        rows = conn.execute(
            "SELECT pid FROM pg_stat_activity"
            " WHERE datname = current_database() AND application_name = %s",
            (APPLICATION_NAME,),
        ).fetchall()
    return [pid for (pid,) in rows]


TERMINATE_LISTENERS = (
    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
    " WHERE datname = current_database() AND application_name = %s"
)


def terminate_listeners(group: Replicas) -> None:
    with psycopg.connect(group.database_url, autocommit=True) as conn:
        (terminated,) = conn.execute(TERMINATE_LISTENERS, (APPLICATION_NAME,)).fetchone() or (0,)
    assert terminated == 3


# What is cut mid-turn: the replicas' LISTEN connections, or every connection by a restart of
# the server (with the default settings: pooled connections are not tested before use).
CUTS = ("listeners", "restart")


@pytest.mark.parametrize("cut", CUTS)
def test_connections_cut_off_mid_turn_catch_up_from_the_log(
    tmp_path: Path, fake: Fake, part_path: dict[str, str], cut: str
) -> None:
    fake.script(
        {"text": [f"part{i} " for i in range(30)], "tokens_per_second": 15},
        {"text": ["The ", "queued ", "one."]},
    )
    with ExitStack() as stack:
        if cut == "restart":
            cluster = stack.enter_context(private_postgres())
            restarting = replicas(tmp_path, fake, 3, cluster.admin_url, **part_path)
            group = stack.enter_context(restarting)
            cut_off: Callable[[], None] = cluster.restart
        else:
            group = stack.enter_context(replicas(tmp_path, fake, 3, **part_path))
            cut_off = functools.partial(terminate_listeners, group)
        wait_for(lambda: len(listeners(group)) == 3, "every replica to listen")
        chat_id = group.new_chat(0, "first")
        owner = wait_running(group, chat_id)
        others = [i for i in range(3) if i != owner]
        sockets = [stream(group, i, chat_id) for i in (owner, *others)]
        with sockets[0] as a, sockets[1] as b, sockets[2] as c:
            snapshots = [s.frame(10) for s in (a, b, c)]
            a.until(has("P(assistant:text)"))
            before = listeners(group)
            cut_off()
            # Queued through a replica that is not running the turn, while nobody listens.
            assert group.client(others[1]).send(chat_id, "second")["queued"] is True
            for s in (a, b, c):
                s.until(settles(turns=2), timeout=60)
        wait_for(lambda: len(listeners(group)) == 3, "every replica to listen again")
        assert not set(listeners(group)) & set(before)
        final = [(role, text) for _, role, text in stored(group, others[0], chat_id)]
    assert final == [
        ("user", "first"),
        ("assistant", "".join(f"part{i} " for i in range(30))),
        ("user", "second"),
        ("assistant", "The queued one."),
    ]
    start = max(
        s.events[len(snap) - 1]["seq"] for s, snap in zip((a, b, c), snapshots, strict=True)
    )
    seen = [[e for e in s.events if e["seq"] > start] for s in (a, b, c)]
    assert seen[0] == seen[1] == seen[2], render(seen[1])
    assert "Q[second]" in render(seen[0]) and numbers_increase(seen[0])
