"""What chats cost: a user's summary and the per-user roll-up for site owners (§9.5).

Both take ``start_date`` and ``end_date`` (RFC 3339) and count assistant messages created in
``[start_date, end_date)``. ``end_date`` defaults to now and ``start_date`` to 30 days before
``end_date``; an end before the start is a 400. Sub-agent chats count under their root chat.
"""

from __future__ import annotations

import datetime as dt

from fastapi import APIRouter, Query, Request

from chatd.api.deps import DB, CurrentActor
from chatd.api.errors import ERROR_RESPONSES, forbidden
from chatd.api.params import INT32_MAX, QueryParams
from chatd.api.routes.usage_limits import limit_status
from chatd.api.user_param import UserPath, resolve_user
from chatd.sdk.chat_costs import ChatCostSummary, ChatCostUsersResponse
from chatd.sdk.errors import ValidationError
from chatd.store import chat_costs as q

router = APIRouter(prefix="/api/experimental", tags=["Chats"], responses=ERROR_RESPONSES)

BAD_QUERY = "Invalid query parameters."
DEFAULT_WINDOW = dt.timedelta(days=30)
DEFAULT_LIMIT = 10
START_DOC = "Count messages created at or after this RFC 3339 time (default: end_date - 30 days)."
END_DOC = "Count messages created before this RFC 3339 time (default: now)."


def _window(params: QueryParams, now: dt.datetime) -> tuple[dt.datetime, dt.datetime]:
    """The ``[start, end)`` the request asks for (errors are collected in ``params``)."""
    errors = len(params.errors)
    start = params.time("start_date")
    end = params.time("end_date")
    end = end or now
    start = start or end - DEFAULT_WINDOW
    if len(params.errors) == errors and end < start:
        params.errors.append(
            ValidationError(field="end_date", detail="Must not be before start_date.")
        )
    return start, end


@router.get("/chats/cost/{user}/summary", response_model=ChatCostSummary)
async def cost_summary(
    user: UserPath,
    request: Request,
    db: DB,
    actor: CurrentActor,
    start_date: str | None = Query(None, description=START_DOC),
    end_date: str | None = Query(None, description=END_DOC),
) -> ChatCostSummary:
    """The user's spend by model and by root chat; for the user themself or a site owner."""
    target = await resolve_user(db, actor, user)
    params = QueryParams(request)
    now = db.now()
    start, end = _window(params, now)
    params.reject_unknown({"start_date", "end_date"})
    params.finish(BAD_QUERY)
    async with db.read(offload=True) as conn:
        totals = await q.user_totals(conn, target.id, start, end)
        models = await q.by_model(conn, target.id, start, end)
        roots = await q.by_root_chat(conn, target.id, start, end)
        status = await limit_status(conn, target.id, now)
    return ChatCostSummary(
        start_date=start,
        end_date=end,
        total_cost_micros=totals.total_cost_micros,
        priced_message_count=totals.priced_message_count,
        unpriced_message_count=totals.unpriced_message_count,
        total_input_tokens=totals.total_input_tokens,
        total_output_tokens=totals.total_output_tokens,
        total_cache_read_tokens=totals.total_cache_read_tokens,
        total_cache_creation_tokens=totals.total_cache_creation_tokens,
        by_model=models,
        by_chat=roots,
        usage_limit=status,
    )


@router.get("/chats/cost/users", response_model=ChatCostUsersResponse)
async def cost_users(
    request: Request,
    db: DB,
    actor: CurrentActor,
    start_date: str | None = Query(None, description=START_DOC),
    end_date: str | None = Query(None, description=END_DOC),
    username: str | None = Query(
        None, description="Only users whose username or name holds this (case-insensitive)."
    ),
    limit: str | None = Query(None, description="Page size (default 10; 0 or less means 10)."),
    offset: str | None = Query(None, description="Skip this many users (>= 0)."),
) -> ChatCostUsersResponse:
    """Spend per user, most expensive first; site owners only."""
    if not actor.is_owner:
        raise forbidden()
    params = QueryParams(request)
    start, end = _window(params, db.now())
    search = params.string("username").strip()
    page_limit = params.int64("limit", DEFAULT_LIMIT)
    page_offset = params.int64("offset", 0)
    params.reject_unknown({"start_date", "end_date", "username", "limit", "offset"})
    if page_offset < 0:
        params.errors.append(
            ValidationError(field="offset", detail="Must be greater than or equal to 0.")
        )
    for name, value in (("offset", page_offset), ("limit", page_limit)):
        if value > INT32_MAX:
            params.errors.append(
                ValidationError(field=name, detail=f"Must be less than or equal to {INT32_MAX}.")
            )
    params.finish(BAD_QUERY)
    if page_limit <= 0:
        page_limit = DEFAULT_LIMIT
    async with db.read(offload=True) as conn:
        rollups, count = await q.by_user(
            conn, start, end, search=search, limit=page_limit, offset=page_offset
        )
    return ChatCostUsersResponse(start_date=start, end_date=end, count=count, users=rollups)
