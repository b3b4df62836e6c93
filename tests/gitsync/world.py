"""Chats with diff statuses, their owners' GitHub tokens, and a refresher, for gitsync tests."""

from __future__ import annotations

import uuid

from chatd import accounts
from chatd.events.hub import EventHub
from chatd.github_site import GITHUB_COM
from chatd.gitsync.client import GitHubClient
from chatd.gitsync.refresher import Refresher
from chatd.store import git_tokens
from chatd.store.chat_diff import get_diff_status_row
from chatd.store.chat_git_state import GitSummary, record_chat_git_state
from chatd.store.db import Database
from chatd.store.sql import RowDict
from chatd.store.users import ensure_default_org
from tests.api.chat_helpers import StepClock
from tests.helpers import ApiUser, make_chat

ORIGIN = "git@github.com:acme/app.git"


class World:
    def __init__(self, db: Database, client: GitHubClient, model_config_id: uuid.UUID) -> None:
        self.db = db
        self.hub = EventHub()
        self.clock = StepClock(db)
        self.config = model_config_id
        self.refresher = Refresher(db, self.hub, client, GITHUB_COM)

    async def user(self, name: str, token: str | None = None) -> ApiUser:
        async with self.db.write() as conn:
            org = await ensure_default_org(conn, self.db.now())
            user_id = await accounts.create_user(
                conn,
                now=self.db.now(),
                email=f"{name}@example.com",
                username=name,
                name=name,
                hashed_password="",
                is_owner=False,
                org_ids=[org],
            )
            if token is not None:
                await git_tokens.set_token(conn, self.db.now(), user_id, token, self.db.secrets)
        return ApiUser(id=user_id, username=name, token="", org_id=org)

    async def chat(self, owner: ApiUser, branch: str, origin: str = ORIGIN) -> uuid.UUID:
        chat_id = await make_chat(self.db, owner, self.config, branch)
        async with self.db.write() as conn:
            await record_chat_git_state(
                conn, self.db.now(), chat_id, GitSummary(branch=branch, remote_origin=origin)
            )
        return chat_id

    async def row(self, chat_id: uuid.UUID) -> RowDict:
        async with self.db.read() as conn:
            row = await get_diff_status_row(conn, chat_id)
        assert row is not None
        return row
