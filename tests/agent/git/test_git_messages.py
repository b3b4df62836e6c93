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


def test_a_message_keeps_its_diffs_within_its_budget() -> None:
    states = [
        RepoState("/w/a", unified_diff="a" * 600, additions=6),
        RepoState("/w/b", unified_diff="b" * 600, additions=7, note="cut at its own limit"),
        RepoState("/w/c", unified_diff="c" * 300, additions=3),
    ]
    body = message(states, "t", budget=1024)
    shown = [
        (r["repo_root"], len(r["unified_diff"]), r["truncated"], r["additions"])
        for r in body["repositories"]
    ]
    # b no longer fits after a; c still does: the budget is spent in path order.
    assert shown == [("/w/a", 600, False, 6), ("/w/b", 0, True, 7), ("/w/c", 300, False, 3)]
    assert body["message"] == (
        "/w/b: cut at its own limit; "
        "/w/b: diff omitted: the message's 1 KiB of diff went to the repositories before it"
    )
