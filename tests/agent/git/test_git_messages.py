"""What a subscriber reads: a slow reader gets the newest state, never a backlog."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatd.agent.git.messages import Subscriber, message
from chatd.agent.git.repo import RepoState
from tests.agent.git.conftest import next_message

pytestmark = pytest.mark.anyio


async def test_changes_not_yet_read_merge_into_one_message() -> None:
    subscriber = Subscriber()
    messages = subscriber.messages()
    subscriber.offer({}, "2024-01-01T00:00:00.000Z", full=True)
    assert await next_message(messages) == {
        "type": "changes",
        "scanned_at": "2024-01-01T00:00:00.000Z",
        "repositories": [],
    }
    a, b = Path("/w/a"), Path("/w/b")
    subscriber.offer({a: RepoState("/w/a", branch="one")}, "t1", full=False)
    subscriber.offer({b: RepoState("/w/b", note="cut")}, "t2", full=False)
    subscriber.offer({a: RepoState("/w/a", branch="two")}, "t3", full=False)
    merged = await next_message(messages)
    assert merged["scanned_at"] == "t3"
    assert [(r["repo_root"], r["branch"]) for r in merged["repositories"]] == [
        ("/w/a", "two"),
        ("/w/b", ""),
    ]
    assert merged["message"] == "/w/b: cut"
    subscriber.close()
    assert [m async for m in messages] == []


def test_a_message_lists_repositories_in_order() -> None:
    states = [RepoState("/w/z"), RepoState("/w/a", removed=True)]
    assert [r["repo_root"] for r in message(states, "t")["repositories"]] == ["/w/a", "/w/z"]
    assert "message" not in message(states, "t")
