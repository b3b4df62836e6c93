"""The workspace's git state on the diff status of the chats bound to it.

:func:`record_git_state` is the one write: the branch, remote origin and change counts of
the workspace's main repository, copied to every chat bound to the workspace. The counts are
left alone on a row that has a pull request (its numbers come from the hosting provider),
until the branch or the origin changes: then the pull request is forgotten (the refresher
looks for the new branch's). A chat whose visible status changed gets a watch
``diff_status_change``.
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass

from chatd.github_site import GITHUB_COM, GitHubSite
from chatd.sdk.events import ChatWatchEvent, ChatWatchEventKind
from chatd.store import convert, stream_log
from chatd.store.chat_diff import NO_PULL_REQUEST, get_diff_status_row
from chatd.store.chats import CHAT_WITH_OWNER, lock_chat
from chatd.store.outbox import Outbox
from chatd.store.sql import Connection, RowDict
from chatd.store.tables import chat_diff_statuses, chats


@dataclass(frozen=True)
class GitSummary:
    """What a diff status shows of a workspace's repository."""

    branch: str = ""
    remote_origin: str = ""
    additions: int = 0
    deletions: int = 0
    changed_files: int = 0


_COUNTS = ("additions", "deletions", "changed_files")


async def record_git_state(
    conn: Connection,
    now: dt.datetime,
    workspace_id: uuid.UUID,
    summary: GitSummary,
    github: GitHubSite = GITHUB_COM,
) -> Outbox:
    """Write ``summary`` to the diff status of each chat bound to the workspace (their rows
    locked in id order); the watch events come back sealed."""
    outbox = Outbox()
    bound = (
        await conn.execute(
            CHAT_WITH_OWNER.where(chats.c.workspace_id == workspace_id)
            .order_by(chats.c.id)
            .with_for_update(of=chats)
        )
    ).all()
    for chat in bound:
        event = await _write(conn, now, chat.as_dict(), summary, github)
        if event is not None:
            outbox.watch.append((chat.owner_id, event))
    return await stream_log.seal(conn, outbox, now)


async def record_chat_git_state(
    conn: Connection,
    now: dt.datetime,
    chat_id: uuid.UUID,
    summary: GitSummary,
    github: GitHubSite = GITHUB_COM,
) -> Outbox:
    """:func:`record_git_state` for one chat."""
    outbox = Outbox()
    chat = await lock_chat(conn, chat_id)
    if chat is not None:
        event = await _write(conn, now, chat, summary, github)
        if event is not None:
            outbox.watch.append((chat["owner_id"], event))
    return await stream_log.seal(conn, outbox, now)


async def _write(
    conn: Connection,
    now: dt.datetime,
    chat: RowDict,
    summary: GitSummary,
    github: GitHubSite,
) -> ChatWatchEvent | None:
    """Write one chat's row (locked by the caller); the watch event when it changed."""
    wanted = {
        "git_branch": summary.branch,
        "git_remote_origin": summary.remote_origin,
        "additions": summary.additions,
        "deletions": summary.deletions,
        "changed_files": summary.changed_files,
    }
    chat_id = chat["id"]
    row = await get_diff_status_row(conn, chat_id)
    if row is None:
        # A new branch or origin: the pull-request refresher looks at it at once.
        values = {"chat_id": chat_id, **wanted, "stale_at": now}
        await conn.execute(
            chat_diff_statuses.insert().values(**values, created_at=now, updated_at=now)
        )
    else:
        moved = (row["git_branch"], row["git_remote_origin"]) != (
            summary.branch,
            summary.remote_origin,
        )
        keep_counts = row["pr_number"] is not None and not moved
        changes = {
            name: value
            for name, value in wanted.items()
            if row[name] != value and not (name in _COUNTS and keep_counts)
        }
        if not changes:
            return None
        if moved:
            # Another branch or repository: its pull request is looked up afresh.
            changes.update(NO_PULL_REQUEST, refreshed_at=None, stale_at=now)
        await conn.execute(
            chat_diff_statuses.update()
            .where(chat_diff_statuses.c.chat_id == chat_id)
            .values(**changes, updated_at=now)
        )
    status_row = await get_diff_status_row(conn, chat_id)
    assert status_row is not None
    view = convert.chat(chat)
    view.diff_status = convert.diff_status(status_row, github)
    return ChatWatchEvent(kind=ChatWatchEventKind.diff_status_change, chat=view)
