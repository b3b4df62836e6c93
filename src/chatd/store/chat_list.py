"""Listing an owner's root chats (api-behaviour §6.1): filters, pins-first order, keyset pages.

The order is pinned chats first (``pin_order`` ascending), then ``updated_at`` and ``id``
descending. It is read as two index walks, pinned then unpinned, so a page never sorts the
owner's whole history: ``ix_chats_owner_list`` serves both (``pin_order > 0`` as a short range,
``pin_order = 0`` walked backwards by ``updated_at, id``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

from chatd.github_site import GITHUB_COM, GitHubSite
from chatd.sdk.chats import Chat, ChatDiffStatus
from chatd.store import convert
from chatd.store.chats import CHAT_WITH_OWNER, children, has_unread_expr
from chatd.store.sql import Connection, Row, RowDict
from chatd.store.tables import chat_diff_statuses, chats

PR_STATUSES = ("draft", "open", "merged", "closed")
DEFAULT_LIMIT = 50
# Aliases for filter subqueries (built once: aliasing a table is not free). Distinct from the
# tables the list query itself joins, so the subqueries never correlate to those by accident.
_MEMBER = chats.alias("family_member")
_FILTER_DS = chat_diff_statuses.alias("filter_diff")


@dataclass(frozen=True)
class ChatFilter:
    """What a list request asks for; ``None`` and empty mean "no filter"."""

    archived: bool = False
    has_unread: bool | None = None
    pr_statuses: tuple[str, ...] = ()
    diff_url: str | None = None
    title: str | None = None
    pr_title: str | None = None
    repo: str | None = None
    pr_number: int | None = None
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Page:
    after_id: uuid.UUID | None = None
    offset: int = 0
    limit: int = 0  # 0 means DEFAULT_LIMIT


def _own_diff_status(flt: ChatFilter) -> sa.ColumnElement[bool] | None:
    """Filters on the chat's own diff status (a chat without one never matches them)."""
    ds = _FILTER_DS
    conds: list[sa.ColumnElement[bool]] = []
    if flt.pr_statuses:
        derived = sa.case(
            (sa.and_(ds.c.pull_request_state == "open", ds.c.pull_request_draft), "draft"),
            else_=ds.c.pull_request_state,
        )
        conds.append(derived.in_(flt.pr_statuses))
    if flt.pr_title is not None:
        conds.append(ds.c.pull_request_title.ilike(f"%{flt.pr_title}%"))
    if flt.repo is not None:
        pattern = f"%{flt.repo}%"
        conds.append(sa.or_(ds.c.git_remote_origin.ilike(pattern), ds.c.url.ilike(pattern)))
    if flt.pr_number is not None:
        conds.append(ds.c.pr_number == flt.pr_number)
    if not conds:
        return None
    return sa.exists(sa.select(sa.literal(1)).where(ds.c.chat_id == chats.c.id, *conds))


def _diff_url(url: str) -> sa.ColumnElement[bool]:
    """The chat or one of its descendants has a diff status at ``url`` (any case)."""
    ds = _FILTER_DS
    member = _MEMBER
    family_root = sa.func.coalesce(member.c.root_chat_id, member.c.parent_chat_id, member.c.id)
    return chats.c.id.in_(
        sa.select(family_root)
        .select_from(ds.join(member, member.c.id == ds.c.chat_id))
        .where(ds.c.url != "", sa.func.lower(ds.c.url) == sa.func.lower(url))
    )


def _labels(labels: Mapping[str, str], dialect: str) -> list[sa.ColumnElement[bool]]:
    """JSON containment of every pair: ``@>`` on PostgreSQL, one ``json_each`` per pair else."""
    if dialect == "postgresql":
        return [sa.type_coerce(chats.c.labels, JSONB).contains(dict(labels))]
    conds: list[sa.ColumnElement[bool]] = []
    for key, value in labels.items():
        each = sa.func.json_each(chats.c.labels).table_valued("key", "value", "type")
        conds.append(
            sa.exists(
                sa.select(sa.literal(1))
                .select_from(each)
                .where(each.c.key == key, each.c.type == "text", each.c.value == value)
            )
        )
    return conds


def conditions(owner_id: uuid.UUID, flt: ChatFilter, dialect: str) -> list[sa.ColumnElement[bool]]:
    """The WHERE clause of a list request, before pin split and cursor."""
    conds: list[sa.ColumnElement[bool]] = [
        chats.c.owner_id == owner_id,
        chats.c.parent_chat_id.is_(None),
        chats.c.archived == flt.archived,
    ]
    if flt.title is not None:
        conds.append(chats.c.title.ilike(f"%{flt.title}%"))
    if flt.has_unread is not None:
        conds.append(has_unread_expr() if flt.has_unread else ~has_unread_expr())
    own = _own_diff_status(flt)
    if own is not None:
        conds.append(own)
    if flt.diff_url is not None:
        conds.append(_diff_url(flt.diff_url))
    if flt.labels:
        conds += _labels(flt.labels, dialect)
    return conds


def _after(updated_at: dt.datetime, chat_id: uuid.UUID) -> sa.ColumnElement[bool]:
    """``(updated_at, id)`` strictly after the cursor's in descending order."""
    return sa.tuple_(chats.c.updated_at, chats.c.id) < sa.tuple_(
        sa.literal(updated_at, chats.c.updated_at.type), sa.literal(chat_id, chats.c.id.type)
    )


# Each item's own diff status comes in the same row (prefixed), saving a round trip per page.
_DIFF_COLUMNS = [c.label(f"diff_{c.name}") for c in chat_diff_statuses.c]
_ITEM = CHAT_WITH_OWNER.add_columns(
    has_unread_expr().label("has_unread"), *_DIFF_COLUMNS
).outerjoin(chat_diff_statuses, chat_diff_statuses.c.chat_id == chats.c.id)
_NEWEST_FIRST = (chats.c.updated_at.desc(), chats.c.id.desc())


async def _cursor_bounds(
    conn: Connection, owner_id: uuid.UUID, after_id: uuid.UUID
) -> tuple[sa.ColumnElement[bool] | None, sa.ColumnElement[bool]] | None:
    """Rows after the cursor chat: (pinned bound or None when no pinned row follows,
    unpinned bound); None when the cursor is not one of the owner's chats."""
    cursor = (
        await conn.execute(
            sa.select(chats.c.pin_order, chats.c.updated_at, chats.c.id).where(
                chats.c.id == after_id, chats.c.owner_id == owner_id
            )
        )
    ).first()
    if cursor is None:
        return None
    after = _after(cursor.updated_at, cursor.id)
    if cursor.pin_order == 0:
        return None, after
    pinned = sa.or_(
        chats.c.pin_order > cursor.pin_order,
        sa.and_(chats.c.pin_order == cursor.pin_order, after),
    )
    return pinned, sa.true()


async def _rows(
    conn: Connection, owner_id: uuid.UUID, flt: ChatFilter, page: Page
) -> list[Row]:
    """The page's rows: pinned chats (a short index range), then unpinned ones (an index walk)."""
    limit = page.limit or DEFAULT_LIMIT
    where = conditions(owner_id, flt, conn.dialect_name)
    pinned_bound: sa.ColumnElement[bool] | None = sa.true()
    unpinned_bound: sa.ColumnElement[bool] = sa.true()
    if page.after_id is not None:
        bounds = await _cursor_bounds(conn, owner_id, page.after_id)
        if bounds is None:
            return []
        pinned_bound, unpinned_bound = bounds
    rows: list[Row] = []
    skip = page.offset
    if pinned_bound is not None:
        pinned_where = [*where, chats.c.pin_order > 0, pinned_bound]
        rows += await conn.execute(
            _ITEM.where(*pinned_where)
            .order_by(chats.c.pin_order.asc(), *_NEWEST_FIRST)
            .offset(skip)
            .limit(limit)
        )
        if rows:
            skip = 0
        elif skip:
            skipped = (
                await conn.execute(sa.select(sa.func.count()).where(*pinned_where))
            ).scalar()
            skip = max(0, skip - (skipped or 0))
    if len(rows) < limit:
        rows += await conn.execute(
            _ITEM.where(*where, chats.c.pin_order == 0, unpinned_bound)
            .order_by(*_NEWEST_FIRST)
            .offset(skip)
            .limit(limit - len(rows))
        )
    return rows


def _diff_status(chat_id: uuid.UUID, row: RowDict, github: GitHubSite) -> ChatDiffStatus:
    if row["diff_chat_id"] is None:
        return convert.empty_diff_status(chat_id)
    values = {c.name: row[f"diff_{c.name}"] for c in chat_diff_statuses.c}
    return convert.diff_status(values, github)


async def list_chats(
    conn: Connection,
    owner_id: uuid.UUID,
    flt: ChatFilter,
    page: Page,
    github: GitHubSite = GITHUB_COM,
) -> list[Chat]:
    """One page of the owner's root chats, each with has_unread, diff_status and children
    (branch URLs on ``github``)."""
    rows = [r.as_dict() for r in await _rows(conn, owner_id, flt, page)]
    kids = await children(conn, [r["id"] for r in rows], archived=flt.archived, github=github)
    result: list[Chat] = []
    for row in rows:
        chat = convert.chat(row, has_unread=bool(row["has_unread"]))
        chat.diff_status = _diff_status(chat.id, row, github)
        chat.children = kids.get(chat.id, [])
        result.append(chat)
    return result
