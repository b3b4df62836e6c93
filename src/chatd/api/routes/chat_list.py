"""``GET /api/experimental/chats``: the caller's root chats, searched and paged (§6.1)."""

from __future__ import annotations

import dataclasses

from fastapi import APIRouter, Query, Request

from chatd.api.deps import DB, AppSettings, CurrentActor
from chatd.api.errors import ERROR_RESPONSES, ApiError
from chatd.api.params import QueryParams
from chatd.api.search import LabelError, SearchError, parse_labels, parse_query
from chatd.sdk.chats import Chat
from chatd.store.chat_list import Page, list_chats

router = APIRouter(prefix="/api/experimental", tags=["Chats"], responses=ERROR_RESPONSES)

Q_DESCRIPTION = (
    "Space-separated key:value filters, all of which must hold. Keys: title, pr_title and repo "
    "(case-insensitive substrings), archived and has_unread (booleans; archived defaults to "
    "false), pr_status (draft, open, merged or closed; repeat the key or separate values with "
    "commas), diff_url (an http(s) URL; quote it because it holds colons) and pr (a PR number). "
    'Quote values with spaces: title:"two words". Words without a key are rejected.'
)


@router.get("/chats", status_code=200, response_model=list[Chat])
async def list_chats_route(
    request: Request,
    db: DB,
    actor: CurrentActor,
    settings: AppSettings,
    q: str | None = Query(None, description=Q_DESCRIPTION),
    label: list[str] | None = Query(
        None, description="A key:value label the chat must carry; repeat to require several."
    ),
    after_id: str | None = Query(None, description="Return chats after this chat."),
    offset: str | None = Query(None, description="Skip this many chats (int32, >= 0)."),
    limit: str | None = Query(None, description="Page size (int32, >= 0; 0 means 50)."),
) -> list[Chat]:
    params = QueryParams(request)
    page = Page(
        after_id=params.uuid("after_id"),
        offset=params.positive_int32("offset", 0),
        limit=params.positive_int32("limit", 0),
    )
    params.finish()
    try:
        flt = parse_query(q or "")
    except SearchError as exc:
        raise ApiError(400, "Invalid chat search query.", validations=exc.validations) from None
    try:
        labels = parse_labels(label or [])
    except LabelError as exc:
        raise ApiError(400, exc.message) from None
    flt = dataclasses.replace(flt, labels=labels)
    # A search can scan all of the owner's chats: off the event loop's thread on SQLite.
    async with db.read(offload=True) as conn:
        return await list_chats(conn, actor.user_id, flt, page, settings.github_site())
