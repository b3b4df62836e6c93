"""The cached diff/PR status row of a chat (api-behaviour §3.7): read, and kept fresh.

The workspace's git state gives a row its branch, origin and counts
(:mod:`chatd.store.chat_git_state`); the GitHub refresher (:mod:`chatd.gitsync`) claims the
rows that are due (:func:`claim_due_statuses`) and writes what it found
(:func:`save_refresh`) or when to try again (:func:`postpone_refresh`); the diff endpoint
records a pull request it found (:func:`set_pull_request_url`).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from chatd.github_site import GITHUB_COM, GitHubSite
from chatd.sdk.events import ChatWatchEvent, ChatWatchEventKind
from chatd.store import convert
from chatd.store.chats import lock_chat
from chatd.store.outbox import Outbox
from chatd.store.sql import Connection, RowDict
from chatd.store.tables import chat_diff_statuses, chats, user_git_tokens

ds = chat_diff_statuses
# What a refresh from the git provider writes: everything about the pull request. A row whose
# branch has none gets NO_PULL_REQUEST (its counts stay the workspace's).
PULL_REQUEST_COLUMNS = frozenset(
    {
        "url",
        "pull_request_state",
        "pull_request_title",
        "pull_request_draft",
        "changes_requested",
        "additions",
        "deletions",
        "changed_files",
        "author_login",
        "author_avatar_url",
        "base_branch",
        "head_branch",
        "pr_number",
        "commits",
        "approved",
        "reviewer_count",
    }
)
NO_PULL_REQUEST: Mapping[str, Any] = {
    "url": None,
    "pull_request_state": None,
    "pull_request_title": "",
    "pull_request_draft": False,
    "changes_requested": False,
    "author_login": None,
    "author_avatar_url": None,
    "base_branch": None,
    "head_branch": None,
    "pr_number": None,
    "commits": None,
    "approved": None,
    "reviewer_count": None,
}
# Rewritten on every refresh, so no part of what a watcher is told changed.
_BOOKKEEPING = {"refreshed_at", "stale_at"}


async def get_diff_status_row(conn: Connection, chat_id: uuid.UUID) -> RowDict | None:
    row = (await conn.execute(sa.select(ds).where(ds.c.chat_id == chat_id))).first()
    return row.as_dict() if row else None


async def claim_due_statuses(
    conn: Connection, now: dt.datetime, *, lease_until: dt.datetime, host: str, limit: int
) -> list[RowDict]:
    """The rows due for a refresh (``stale_at <= now``, oldest first) that may be on ``host``
    (their origin or URL mentions it), of unarchived chats whose owner has a git token; each
    with its chat's ``owner_id``. Their ``stale_at`` moves to ``lease_until``, so that no
    other replica takes them meanwhile (nor this one again, should the refresh never end)."""
    pattern = f"%{host}%"
    query = (
        sa.select(ds.c.chat_id, chats.c.owner_id, ds.c.git_branch, ds.c.git_remote_origin, ds.c.url)
        .select_from(
            ds.join(chats, chats.c.id == ds.c.chat_id).join(
                user_git_tokens, user_git_tokens.c.user_id == chats.c.owner_id
            )
        )
        .where(
            ds.c.stale_at <= now,
            chats.c.archived.is_(False),
            sa.or_(
                sa.and_(ds.c.git_branch != "", ds.c.git_remote_origin.ilike(pattern)),
                ds.c.url.ilike(pattern),
            ),
        )
        .order_by(ds.c.stale_at, ds.c.chat_id)
        .limit(limit)
        .with_for_update(of=ds, skip_locked=True)
    )
    rows = [r.as_dict() for r in await conn.execute(query)]
    if rows:
        ids = [r["chat_id"] for r in rows]
        await conn.execute(ds.update().where(ds.c.chat_id.in_(ids)).values(stale_at=lease_until))
    return rows


async def save_refresh(
    conn: Connection,
    now: dt.datetime,
    claimed: Mapping[str, Any],
    values: Mapping[str, Any],
    stale_at: dt.datetime,
    github: GitHubSite = GITHUB_COM,
) -> Outbox:
    """Write what a refresh of the ``claimed`` row found (``values``: pull-request columns),
    with ``refreshed_at = now``. Nothing is written when the row has since moved to another
    branch, origin or URL (what was found is about the old one). A watch
    ``diff_status_change`` goes out when anything but the refresh times changed."""
    unknown = set(values) - PULL_REQUEST_COLUMNS
    if unknown:
        raise ValueError(f"not pull-request columns: {sorted(unknown)}")
    chat = await lock_chat(conn, claimed["chat_id"])
    row = await get_diff_status_row(conn, claimed["chat_id"])
    outbox = Outbox()
    if chat is None or row is None or not _same_reference(row, claimed):
        return outbox
    await conn.execute(
        ds.update()
        .where(ds.c.chat_id == row["chat_id"])
        .values(**values, refreshed_at=now, stale_at=stale_at, updated_at=now)
    )
    after = await get_diff_status_row(conn, row["chat_id"])
    assert after is not None
    before_status = convert.diff_status(row, github).model_dump(exclude=_BOOKKEEPING)
    after_status = convert.diff_status(after, github)
    if after_status.model_dump(exclude=_BOOKKEEPING) != before_status:
        event_chat = convert.chat(chat)
        event_chat.diff_status = after_status
        event = ChatWatchEvent(kind=ChatWatchEventKind.diff_status_change, chat=event_chat)
        outbox.watch.append((chat["owner_id"], event))
    return outbox


def _same_reference(row: Mapping[str, Any], claimed: Mapping[str, Any]) -> bool:
    return all(row[k] == claimed[k] for k in ("git_branch", "git_remote_origin", "url"))


async def postpone_refresh(
    conn: Connection,
    chat_ids: Sequence[uuid.UUID],
    stale_at: dt.datetime,
    *,
    claimed_until: dt.datetime,
) -> None:
    """Try these rows again at ``stale_at``; what they show stays as it was. A row no longer
    under the claim (``stale_at`` moved off ``claimed_until``, say by a new branch) is left."""
    if chat_ids:
        await conn.execute(
            ds.update()
            .where(ds.c.chat_id.in_(list(chat_ids)), ds.c.stale_at == claimed_until)
            .values(stale_at=stale_at)
        )


async def set_pull_request_url(
    conn: Connection, now: dt.datetime, chat_id: uuid.UUID, url: str
) -> bool:
    """Record the pull request found for the chat's branch (§6.9 step 7) unless the row has it
    already (in any case); it is then due for a refresh (``stale_at`` a second ago). Whether it
    was recorded."""
    await lock_chat(conn, chat_id)
    row = await get_diff_status_row(conn, chat_id)
    if row is None or (row["url"] or "").strip().lower() == url.strip().lower():
        return False
    await conn.execute(
        ds.update()
        .where(ds.c.chat_id == chat_id)
        .values(url=url, stale_at=now - dt.timedelta(seconds=1), updated_at=now)
    )
    return True
