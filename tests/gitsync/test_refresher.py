"""The refresher against the fake GitHub over real HTTP, on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import AsyncIterator

import pytest

from chatd.gitsync.client import GitHubClient
from chatd.sdk.events import ChatWatchEventKind
from chatd.store.chat_diff import (
    claim_due_statuses,
    save_refresh,
    set_pull_request_url,
)
from chatd.store.chat_git_state import GitSummary, record_chat_git_state
from chatd.store.db import Database
from chatd.testing.fake_github import FakeGitHub, FakeReview
from tests.gitsync.conftest import TOKEN
from tests.gitsync.world import World
from tests.helpers import seed_model_config

pytestmark = pytest.mark.anyio

MIN = dt.timedelta(minutes=1)


@pytest.fixture
async def world(db: Database, github_client: GitHubClient) -> AsyncIterator[World]:
    yield World(db, github_client, await seed_model_config(db))


async def test_open_draft_merged_and_closed_pull_requests(
    world: World, fake_github: FakeGitHub
) -> None:
    owner = await world.user("mona", TOKEN)
    chats = {b: await world.chat(owner, b) for b in ("open", "draft", "merged", "closed", "none")}
    fake_github.add_pull(
        "acme",
        "app",
        "open",
        title="Open one",
        additions=10,
        deletions=2,
        changed_files=3,
        commits=5,
        author="hubot",
        reviews=[FakeReview("a", "APPROVED"), FakeReview("b", "COMMENTED")],
    )
    fake_github.add_pull(
        "acme", "app", "draft", draft=True, reviews=[FakeReview("a", "CHANGES_REQUESTED")]
    )
    fake_github.add_pull("acme", "app", "merged", state="closed", merged=True)
    fake_github.add_pull("acme", "app", "closed", state="closed")
    now = world.clock.now()

    assert await world.refresher.refresh_due() == 5

    opened = await world.row(chats["open"])
    assert {k: opened[k] for k in opened if k not in ("created_at", "updated_at")} == {
        "chat_id": chats["open"],
        "url": "https://github.com/acme/app/pull/1",
        "pull_request_state": "open",
        "pull_request_title": "Open one",
        "pull_request_draft": False,
        "changes_requested": False,
        "additions": 10,
        "deletions": 2,
        "changed_files": 3,
        "author_login": "hubot",
        "author_avatar_url": "https://avatars.example.com/hubot.png",
        "base_branch": "main",
        "head_branch": "open",
        "pr_number": 1,
        "commits": 5,
        "approved": True,
        "reviewer_count": 2,
        "git_branch": "open",
        "git_remote_origin": "git@github.com:acme/app.git",
        "refreshed_at": now,
        "stale_at": now + 2 * MIN,
    }
    draft = await world.row(chats["draft"])
    assert (draft["pull_request_state"], draft["pull_request_draft"]) == ("open", True)
    assert (draft["changes_requested"], draft["approved"], draft["reviewer_count"]) == (
        True,
        False,
        1,
    )
    merged, closed = await world.row(chats["merged"]), await world.row(chats["closed"])
    assert (merged["pull_request_state"], merged["stale_at"]) == ("merged", now + 30 * MIN)
    assert (closed["pull_request_state"], closed["stale_at"]) == ("closed", now + 30 * MIN)
    none = await world.row(chats["none"])
    assert (none["url"], none["pull_request_state"], none["pr_number"]) == (None, None, None)
    assert (none["refreshed_at"], none["stale_at"]) == (now, now + 5 * MIN)
    # Every request carried the owner's token.
    assert {r.headers["authorization"] for r in fake_github.requests} == {f"Bearer {TOKEN}"}


async def test_a_status_is_refreshed_again_once_stale_and_watchers_hear_of_changes(
    world: World, fake_github: FakeGitHub
) -> None:
    owner = await world.user("mona", TOKEN)
    chat_id = await world.chat(owner, "feat/x")
    pull = fake_github.add_pull("acme", "app", "feat/x", title="First")
    with world.hub.owner(owner.id) as watch:
        await world.refresher.refresh_due()
        [first] = watch.drain()
        assert first.kind == ChatWatchEventKind.diff_status_change
        assert first.chat.id == chat_id and first.chat.owner_id == owner.id
        assert first.chat.diff_status is not None
        assert first.chat.diff_status.pull_request_title == "First"
        assert first.chat.diff_status.url == "https://github.com/acme/app/pull/1"

        # Not due yet: nothing is asked.
        pull.title = "Second"
        asked = len(fake_github.requests)
        assert await world.refresher.refresh_due() == 0
        assert len(fake_github.requests) == asked
        world.clock.advance(119)
        assert await world.refresher.refresh_due() == 0

        world.clock.advance(1)
        assert await world.refresher.refresh_due() == 1
        [second] = watch.drain()
        assert second.chat.diff_status is not None
        assert second.chat.diff_status.pull_request_title == "Second"
        assert second.chat.diff_status.refreshed_at == world.clock.now()

        # Refreshed with nothing new: the times move, nobody is told.
        world.clock.advance(120)
        assert await world.refresher.refresh_due() == 1
        assert watch.drain() == []
        assert (await world.row(chat_id))["refreshed_at"] == world.clock.now()

        # Merged: announced, and looked at less often.
        pull.state, pull.merged = "closed", True
        world.clock.advance(120)
        await world.refresher.refresh_due()
        [merged] = watch.drain()
        assert merged.chat.diff_status is not None
        assert merged.chat.diff_status.pull_request_state == "merged"
        assert (await world.row(chat_id))["stale_at"] == world.clock.now() + 30 * MIN


async def test_github_down_keeps_the_status_and_backs_off(
    world: World, fake_github: FakeGitHub
) -> None:
    owner = await world.user("mona", TOKEN)
    chat_id = await world.chat(owner, "feat/x")
    fake_github.add_pull("acme", "app", "feat/x", title="Kept")
    await world.refresher.refresh_due()
    before = await world.row(chat_id)

    fake_github.down = True
    waits = []
    with world.hub.owner(owner.id) as watch:
        for _ in range(3):
            world.clock.current = (await world.row(chat_id))["stale_at"]
            assert await world.refresher.refresh_due() == 1
            row = await world.row(chat_id)
            waits.append(row["stale_at"] - world.clock.now())
            assert {k: row[k] for k in row if k != "stale_at"} == {
                k: before[k] for k in before if k != "stale_at"
            }
        assert watch.drain() == []
    assert waits == [MIN, 2 * MIN, 4 * MIN]

    fake_github.down = False
    world.clock.current = (await world.row(chat_id))["stale_at"]
    await world.refresher.refresh_due()
    row = await world.row(chat_id)
    now = world.clock.now()
    assert (row["refreshed_at"], row["stale_at"]) == (now, now + 2 * MIN)
    # The streak is over: the next failure waits the shortest time again.
    fake_github.down = True
    world.clock.current = row["stale_at"]
    await world.refresher.refresh_due()
    assert (await world.row(chat_id))["stale_at"] == world.clock.now() + MIN


async def test_a_rate_limited_owner_waits_for_the_reset(
    world: World, fake_github: FakeGitHub
) -> None:
    owner = await world.user("mona", TOKEN)
    first, second = await world.chat(owner, "one"), await world.chat(owner, "two")
    fake_github.add_pull("acme", "app", "one", title="One")
    fake_github.add_pull("acme", "app", "two", title="Two")
    reset = world.clock.now() + 10 * MIN
    fake_github.rate_limit(int(reset.timestamp()))
    world.refresher.concurrency = 1  # one lookup at a time: the second sees the first refused

    assert await world.refresher.refresh_due() == 2
    for chat_id in (first, second):
        row = await world.row(chat_id)
        assert (row["stale_at"], row["refreshed_at"], row["url"]) == (reset, None, None)
    # The other branch was not asked for once the first was refused.
    assert len(fake_github.requests) == 1

    fake_github.rate_limit(None)
    world.clock.current = reset
    assert await world.refresher.refresh_due() == 2
    assert [(await world.row(c))["pull_request_title"] for c in (first, second)] == ["One", "Two"]


async def test_chats_of_owners_without_a_token_are_never_looked_up(
    world: World, fake_github: FakeGitHub
) -> None:
    owner = await world.user("mona")
    chat_id = await world.chat(owner, "feat/x")
    fake_github.add_pull("acme", "app", "feat/x")
    before = await world.row(chat_id)
    assert await world.refresher.refresh_due() == 0
    assert fake_github.requests == []
    assert await world.row(chat_id) == before


async def test_chats_on_one_branch_share_a_lookup_and_other_hosts_are_left(
    world: World, fake_github: FakeGitHub
) -> None:
    owner = await world.user("mona", TOKEN)
    a, b = await world.chat(owner, "feat/x"), await world.chat(owner, "feat/x")
    elsewhere = await world.chat(owner, "feat/x", "https://gitlab.com/acme/app.git")
    lookalike = await world.chat(owner, "feat/x", "https://github.com.example/acme/app.git")
    fake_github.add_pull("acme", "app", "feat/x", title="Shared")

    assert await world.refresher.refresh_due() == 3  # the gitlab row is not even claimed
    assert [r.path for r in fake_github.requests] == [
        "/repos/acme/app/pulls",
        "/repos/acme/app/pulls/1",
        "/repos/acme/app/pulls/1/reviews",
    ]
    assert [(await world.row(c))["pull_request_title"] for c in (a, b)] == ["Shared", "Shared"]
    assert (await world.row(elsewhere))["refreshed_at"] is None
    strange = await world.row(lookalike)
    assert (strange["refreshed_at"], strange["stale_at"]) == (None, world.clock.now() + 30 * MIN)


async def test_a_pull_request_known_only_by_its_url_is_refreshed_by_number(
    world: World, fake_github: FakeGitHub
) -> None:
    owner = await world.user("mona", TOKEN)
    chat_id = await world.chat(owner, "", "")
    pull = fake_github.add_pull("acme", "app", "feat/x", title="By number")
    async with world.db.write() as conn:
        url = "https://github.com/acme/app/pull/1"
        assert await set_pull_request_url(conn, world.clock.now(), chat_id, url)
    assert await world.refresher.refresh_due() == 1
    assert [r.path for r in fake_github.requests] == [
        f"/repos/acme/app/pulls/{pull.number}",
        f"/repos/acme/app/pulls/{pull.number}/reviews",
    ]
    assert (await world.row(chat_id))["pull_request_title"] == "By number"


async def test_what_was_found_for_an_old_branch_is_not_written(world: World) -> None:
    owner = await world.user("mona", TOKEN)
    chat_id = await world.chat(owner, "old")
    now = world.clock.now()
    async with world.db.write() as conn:
        [claimed] = await claim_due_statuses(
            conn, now, lease_until=now + 10 * MIN, host="github.com", limit=10
        )
    assert claimed["owner_id"] == owner.id
    async with world.db.write() as conn:
        origin = claimed["git_remote_origin"]
        await record_chat_git_state(
            conn, now, chat_id, GitSummary(branch="new", remote_origin=origin)
        )
    async with world.db.write() as conn:
        outbox = await save_refresh(
            conn, now, claimed, {"pull_request_title": "Old", "pr_number": 3}, now + MIN
        )
    assert outbox.watch == []
    row = await world.row(chat_id)
    assert (row["git_branch"], row["pr_number"], row["stale_at"]) == ("new", None, now)


async def test_the_service_refreshes_in_the_background_until_stopped(
    world: World, fake_github: FakeGitHub
) -> None:
    owner = await world.user("mona", TOKEN)
    chat_id = await world.chat(owner, "feat/x")
    fake_github.add_pull("acme", "app", "feat/x", title="Background")
    world.refresher.poll_interval = 0.01
    with world.hub.owner(owner.id) as watch:
        await world.refresher.start()
        try:
            async with asyncio.timeout(10):
                event = await watch.get()
        finally:
            await world.refresher.stop()
    assert event is not None and event.chat.id == chat_id
    assert (await world.row(chat_id))["pull_request_title"] == "Background"
    asked = len(fake_github.requests)
    world.clock.advance(3600)
    await asyncio.sleep(0.05)  # stopped: no pass runs however due the status is
    assert len(fake_github.requests) == asked
