"""A workspace's git state written to the diff status of the chats bound to it."""

from __future__ import annotations

import dataclasses
import datetime as dt
import uuid

import pytest
import sqlalchemy as sa

from chatd.sdk.events import ChatWatchEventKind
from chatd.store.chat_git_state import GitSummary, record_git_state
from chatd.store.chat_updates import set_workspace
from chatd.store.db import Database
from chatd.store.tables import chat_diff_statuses, workspaces
from tests.helpers import ApiUser, make_chat, seed_model_config

pytestmark = pytest.mark.anyio

SUMMARY = GitSummary(
    branch="feature",
    remote_origin="https://github.com/acme/widgets.git",
    additions=3,
    deletions=1,
    changed_files=2,
)


async def add_workspace(db: Database, owner: ApiUser) -> uuid.UUID:
    workspace_id = uuid.uuid4()
    now = db.now()
    async with db.write() as conn:
        await conn.execute(
            workspaces.insert().values(
                id=workspace_id,
                owner_id=owner.id,
                organization_id=owner.org_id,
                name=f"ws-{workspace_id.hex[:6]}",
                created_at=now,
                updated_at=now,
                kind="local",
                parameters={},
                agent_id=uuid.uuid4(),
            )
        )
    return workspace_id


async def bound_chats(
    db: Database, owner: ApiUser, workspace_id: uuid.UUID, model: uuid.UUID, n: int
) -> list[uuid.UUID]:
    ids = []
    for _ in range(n):
        chat_id = await make_chat(db, owner, model)
        async with db.write() as conn:
            await set_workspace(conn, db.now(), chat_id, workspace_id)
        ids.append(chat_id)
    return ids


async def status_rows(db: Database) -> dict[uuid.UUID, dict[str, object]]:
    async with db.read() as conn:
        rows = (await conn.execute(sa.select(chat_diff_statuses))).all()
    return {row.chat_id: row.as_dict() for row in rows}


async def test_every_bound_chat_gets_the_state_once(db: Database, member: ApiUser) -> None:
    workspace_id = await add_workspace(db, member)
    model = await seed_model_config(db)
    bound = await bound_chats(db, member, workspace_id, model, 2)
    unbound = await make_chat(db, member, model)

    async with db.write() as conn:
        outbox = await record_git_state(conn, db.now(), workspace_id, SUMMARY)
    assert sorted(e.chat.id for _, e in outbox.watch) == sorted(bound)
    for owner_id, event in outbox.watch:
        assert owner_id == member.id
        assert event.kind == ChatWatchEventKind.diff_status_change
        status = event.chat.diff_status
        assert status is not None
        assert (status.additions, status.deletions, status.changed_files) == (3, 1, 2)
        # No pull request yet: the URL is the branch on GitHub.
        assert status.url == "https://github.com/acme/widgets/tree/feature"
    rows = await status_rows(db)
    assert set(rows) == set(bound) and unbound not in rows
    assert {r["git_branch"] for r in rows.values()} == {"feature"}

    # The same state again changes nothing and tells nobody.
    async with db.write() as conn:
        again = await record_git_state(conn, db.now(), workspace_id, SUMMARY)
    assert again.watch == []

    # A workspace without chats: nothing to write.
    lonely = await add_workspace(db, member)
    async with db.write() as conn:
        alone = await record_git_state(conn, db.now(), lonely, SUMMARY)
    assert alone.watch == []


async def test_a_pull_request_keeps_its_counts_until_the_branch_changes(
    db: Database, member: ApiUser
) -> None:
    workspace_id = await add_workspace(db, member)
    [chat_id] = await bound_chats(db, member, workspace_id, await seed_model_config(db), 1)
    first = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    async with db.write() as conn:
        await record_git_state(conn, first, workspace_id, SUMMARY)
        await conn.execute(
            chat_diff_statuses.update()
            .where(chat_diff_statuses.c.chat_id == chat_id)
            .values(
                pr_number=7,
                url="https://github.com/acme/widgets/pull/7",
                pull_request_state="open",
                additions=40,
                deletions=4,
                changed_files=5,
                stale_at=first + dt.timedelta(minutes=2),
            )
        )

    # More work on the same branch: the pull request's numbers stay, nobody is told.
    async with db.write() as conn:
        quiet = await record_git_state(
            conn, first, workspace_id, dataclasses.replace(SUMMARY, additions=9)
        )
    assert quiet.watch == []
    row = (await status_rows(db))[chat_id]
    assert (row["pr_number"], row["additions"], row["deletions"]) == (7, 40, 4)

    # Another branch: that pull request is forgotten, the workspace's counts show, and the
    # refresher looks for the new branch's pull request at once.
    later = first + dt.timedelta(minutes=1)
    moved = dataclasses.replace(SUMMARY, branch="other", additions=9)
    async with db.write() as conn:
        outbox = await record_git_state(conn, later, workspace_id, moved)
    [(_, event)] = outbox.watch
    status = event.chat.diff_status
    assert status is not None
    assert (status.pr_number, status.pull_request_state, status.additions) == (None, None, 9)
    assert status.url == "https://github.com/acme/widgets/tree/other"
    row = (await status_rows(db))[chat_id]
    assert (row["git_branch"], row["url"], row["stale_at"]) == ("other", None, later)
