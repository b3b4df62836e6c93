"""Pull-request status from a fake GitHub, as the chat list's search and the diff endpoint
show it (a real app; SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from collections.abc import AsyncIterator
from typing import Any

import pytest
from fastapi import FastAPI

from chatd.api.app import create_app
from chatd.github_site import GITHUB_COM
from chatd.gitsync.refresher import Refresher
from chatd.settings import Settings
from chatd.store import git_tokens
from chatd.store.chat_diff import get_diff_status_row
from chatd.store.chat_git_state import GitSummary, record_chat_git_state
from chatd.store.db import Database
from chatd.testing.fake_github import FakeGitHub, serve_fake_github
from tests.api.chat_helpers import StepClock, make_org_admin
from tests.helpers import Api, ApiUser, bootstrap_admin, make_chat

pytestmark = pytest.mark.anyio

TOKEN = "ghp_memberToken0"
CHATS = "/api/experimental/chats"
DIFF = "diff --git a/app.py b/app.py\n--- a/app.py\n+++ b/app.py\n@@ -1 +1 @@\n-a\n+b\n"


@pytest.fixture
async def fake_github() -> AsyncIterator[FakeGitHub]:
    fake = FakeGitHub(tokens={TOKEN})
    async with serve_fake_github(fake):
        yield fake


@pytest.fixture
def settings(settings: Settings, fake_github: FakeGitHub) -> Settings:
    return settings.model_copy(update={"github_api_url": fake_github.url})


class Chats:
    def __init__(self, api: Api, db: Database, app: FastAPI, owner: ApiUser, config: uuid.UUID):
        self.api, self.db, self.app, self.owner, self.config = api, db, app, owner, config

    async def set_token(self) -> None:
        r = await self.api.request(
            "PUT", "/api/v2/users/me/github-token", self.owner, json={"token": TOKEN}
        )
        assert r.status_code == 204, r.text

    async def on_branch(self, title: str, branch: str, origin: str) -> uuid.UUID:
        chat_id = await make_chat(self.db, self.owner, self.config, title)
        async with self.db.write() as conn:
            await record_chat_git_state(
                conn, self.db.now(), chat_id, GitSummary(branch=branch, remote_origin=origin)
            )
        return chat_id

    async def refresh(self) -> None:
        refresher = Refresher(self.db, self.app.state.hub, self.app.state.github, GITHUB_COM)
        await refresher.refresh_due()

    async def titles(self, q: str) -> set[str]:
        r = await self.api.request("GET", CHATS, self.owner, params={"q": q})
        assert r.status_code == 200, r.text
        return {c["title"] for c in r.json()}

    async def diff(self, chat_id: uuid.UUID) -> dict[str, Any]:
        r = await self.api.request("GET", f"{CHATS}/{chat_id}/diff", self.owner)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body


@pytest.fixture
async def chats(
    api: Api, db: Database, app: FastAPI, member: ApiUser, model_id: uuid.UUID
) -> Chats:
    return Chats(api, db, app, member, model_id)


async def test_search_keys_over_statuses_from_github(chats: Chats, fake_github: FakeGitHub) -> None:
    await chats.set_token()
    app, lib = "git@github.com:acme/app.git", "https://github.com/acme/lib.git"
    await chats.on_branch("opened", "login", app)
    await chats.on_branch("drafted", "wip", app)
    await chats.on_branch("merged", "done", app)
    await chats.on_branch("closed", "dropped", lib)
    plain = await chats.on_branch("plain", "nothing", lib)
    fake_github.add_pull("acme", "app", "login", title="Add the login page")
    fake_github.add_pull("acme", "app", "wip", title="Work in progress", draft=True)
    fake_github.add_pull("acme", "app", "done", title="Done", state="closed", merged=True)
    fake_github.add_pull("acme", "lib", "dropped", title="Dropped", state="closed")
    await chats.refresh()

    assert await chats.titles("pr_status:open") == {"opened"}
    assert await chats.titles("pr_status:draft") == {"drafted"}
    assert await chats.titles("pr_status:merged,closed") == {"merged", "closed"}
    assert await chats.titles("pr:3") == {"merged"}
    assert await chats.titles("pr:1") == {"opened", "closed"}  # numbers are per repository
    assert await chats.titles("pr_title:LOGIN") == {"opened"}
    assert await chats.titles('diff_url:"https://github.com/acme/app/pull/2"') == {"drafted"}
    assert await chats.titles('diff_url:"https://github.com/acme/lib/pull/1"') == {"closed"}
    assert await chats.titles("repo:acme/lib") == {"closed", "plain"}
    assert await chats.titles("repo:acme pr_status:open,draft") == {"opened", "drafted"}

    r = await chats.api.request("GET", CHATS, chats.owner, params={"q": "pr_title:login"})
    [item] = r.json()
    status = item["diff_status"]
    assert (status["url"], status["pull_request_state"], status["pr_number"]) == (
        "https://github.com/acme/app/pull/1",
        "open",
        1,
    )
    r = await chats.api.request("GET", f"{CHATS}/{plain}", chats.owner)
    assert r.json()["diff_status"]["url"] == "https://github.com/acme/lib/tree/nothing"
    assert "pull_request_state" not in r.json()["diff_status"]


async def test_the_diff_of_a_chat_with_a_pull_request(
    chats: Chats, fake_github: FakeGitHub
) -> None:
    await chats.set_token()
    chat_id = await chats.on_branch("with pr", "feat/x", "git@github.com:acme/app.git")
    fake_github.add_pull("acme", "app", "feat/x", diff=DIFF)
    await chats.refresh()
    assert await chats.diff(chat_id) == {
        "chat_id": str(chat_id),
        "provider": "github",
        "remote_origin": "https://github.com/acme/app",
        "branch": "feat/x",
        "pull_request_url": "https://github.com/acme/app/pull/1",
        "diff": DIFF,
    }
    assert fake_github.requests[-1].headers["accept"] == "application/vnd.github.diff"
    assert fake_github.requests[-1].headers["authorization"] == f"Bearer {TOKEN}"

    fake_github.down = True  # GitHub away: the answer is what is known, without the diff
    assert await chats.diff(chat_id) == {
        "chat_id": str(chat_id),
        "provider": "github",
        "remote_origin": "https://github.com/acme/app",
        "branch": "feat/x",
        "pull_request_url": "https://github.com/acme/app/pull/1",
    }


async def test_an_organization_admin_sees_the_status_but_not_the_diff(
    chats: Chats, fake_github: FakeGitHub
) -> None:
    await chats.set_token()
    chat_id = await chats.on_branch("with pr", "feat/x", "git@github.com:acme/app.git")
    fake_github.add_pull("acme", "app", "feat/x", diff=DIFF)
    await chats.refresh()
    admin = await chats.api.create_user("orgadmin")
    await make_org_admin(chats.db, admin)
    asked = len(fake_github.requests)
    r = await chats.api.request("GET", f"{CHATS}/{chat_id}/diff", admin)
    assert r.status_code == 200, r.text
    assert r.json() == {
        "chat_id": str(chat_id),
        "provider": "github",
        "remote_origin": "https://github.com/acme/app",
        "branch": "feat/x",
        "pull_request_url": "https://github.com/acme/app/pull/1",
    }
    assert len(fake_github.requests) == asked  # the owner's token was not used for them


async def test_the_diff_endpoint_finds_the_open_pull_request_of_a_branch(
    chats: Chats, fake_github: FakeGitHub, db: Database, clock: StepClock
) -> None:
    await chats.set_token()
    chat_id = await chats.on_branch("fresh", "feat/y", "https://github.com/acme/app")
    fake_github.add_pull("acme", "app", "feat/y", state="closed")
    fake_github.add_pull("acme", "app", "feat/y", diff=DIFF)

    fake_github.down = True
    assert await chats.diff(chat_id) == {
        "chat_id": str(chat_id),
        "provider": "github",
        "remote_origin": "https://github.com/acme/app",
        "branch": "feat/y",
    }
    fake_github.down = False
    body = await chats.diff(chat_id)
    assert (body["pull_request_url"], body["diff"]) == ("https://github.com/acme/app/pull/2", DIFF)
    [lookup] = fake_github.requests_to("/pulls")[1:2]
    assert lookup.query["state"] == "open"
    async with db.read() as conn:
        row = await get_diff_status_row(conn, chat_id)
    assert row is not None
    assert row["url"] == "https://github.com/acme/app/pull/2"
    assert row["stale_at"] == clock.now() - dt.timedelta(seconds=1)  # refreshed soon


async def test_no_token_no_github(chats: Chats, fake_github: FakeGitHub) -> None:
    chat_id = await chats.on_branch("no token", "feat/x", "git@github.com:acme/app.git")
    fake_github.add_pull("acme", "app", "feat/x", diff=DIFF)
    await chats.refresh()
    assert await chats.diff(chat_id) == {
        "chat_id": str(chat_id),
        "provider": "github",
        "remote_origin": "https://github.com/acme/app",
        "branch": "feat/x",
    }
    assert fake_github.requests == []


async def test_a_server_with_workers_refreshes_statuses_on_its_own(
    settings: Settings, db: Database, fake_github: FakeGitHub, model_id: uuid.UUID
) -> None:
    running = settings.model_copy(update={"workers_enabled": True, "github_poll_interval": 0.05})
    server = create_app(running, db)
    async with server.router.lifespan_context(server):
        owner = await bootstrap_admin(db, settings)
        async with db.write() as conn:
            await git_tokens.set_token(conn, db.now(), owner.id, TOKEN, db.secrets)
        fake_github.add_pull("acme", "app", "feat/x", title="Seen by the server")
        with server.state.hub.owner(owner.id) as watch:
            chat_id = await make_chat(db, owner, model_id, "served")
            async with db.write() as conn:
                await record_chat_git_state(
                    conn,
                    db.now(),
                    chat_id,
                    GitSummary(branch="feat/x", remote_origin="git@github.com:acme/app.git"),
                )
            async with asyncio.timeout(10):
                event = await watch.get()
    assert event is not None and event.chat.id == chat_id
    assert event.chat.diff_status is not None
    assert event.chat.diff_status.pull_request_title == "Seen by the server"
