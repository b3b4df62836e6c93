"""Manual titles: ``POST /chats/{chat}/title/regenerate`` and ``/title/propose``.

api-behaviour §6.18 and §7 (V1): ``update`` on the chat (else 404), then owner only (403);
a busy chat is a 409. Regenerate saves the title and answers the Chat; propose only answers
``{title}``. Tests replace model clients by setting ``app.state.client_factory``.
"""

from __future__ import annotations

import structlog
from fastapi import APIRouter, Request

from chatd.api import transitions
from chatd.api.chat_param import ChatPath, load_chat
from chatd.api.deps import DB, CurrentActor, Hub
from chatd.api.errors import ERROR_RESPONSES, ApiError, not_found
from chatd.authz import Actor
from chatd.engine.quickgen import GenerationFailed, QuickGen
from chatd.engine.title_regen import propose_title, regenerate_title
from chatd.sdk.chats import Chat, ProposeChatTitleResponse
from chatd.store.db import Database
from chatd.store.errors import StoreError
from chatd.store.sql import RowDict
from chatd.store.titles import TitleRegenerationBusy, check_regeneration
from chatd.store.transition_steps import ChatNotFound

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/api/experimental", tags=["Chats"], responses=ERROR_RESPONSES)

BUSY = "Title regeneration already in progress for this chat."
OWNER_ONLY = "Only the chat owner may regenerate the title."


async def _owned_chat(db: Database, actor: Actor, raw: str) -> RowDict:
    row = await load_chat(db, actor, raw)
    if not transitions.can_update(actor, row):
        raise not_found()
    if row["owner_id"] != actor.user_id:
        raise ApiError(403, OWNER_ONLY)
    return row


def _quick_gen(request: Request, db: Database) -> QuickGen:
    return QuickGen(
        db,
        request.app.state.settings,
        client_factory=getattr(request.app.state, "client_factory", None),
    )


@router.post(
    "/chats/{chat}/title/regenerate",
    response_model=Chat,
    summary="Regenerate chat title",
)
async def regenerate(
    chat: ChatPath, request: Request, db: DB, actor: CurrentActor, hub: Hub
) -> Chat:
    row = await _owned_chat(db, actor, chat)
    try:
        result, outbox = await regenerate_title(_quick_gen(request, db), row["id"], actor.user_id)
    except TitleRegenerationBusy:
        raise ApiError(409, BUSY) from None
    except ChatNotFound:
        raise not_found() from None
    except (GenerationFailed, StoreError):
        log.warning("title regeneration failed", chat_id=str(row["id"]), exc_info=True)
        raise ApiError(500, "Failed to regenerate chat title.") from None
    hub.publish(outbox)
    return result


@router.post(
    "/chats/{chat}/title/propose",
    response_model=ProposeChatTitleResponse,
    summary="Propose a chat title without saving it",
)
async def propose(
    chat: ChatPath, request: Request, db: DB, actor: CurrentActor
) -> ProposeChatTitleResponse:
    row = await _owned_chat(db, actor, chat)
    try:
        async with db.read() as conn:
            current = await check_regeneration(conn, db.now(), row["id"])
        title = await propose_title(_quick_gen(request, db), row["id"])
    except TitleRegenerationBusy:
        raise ApiError(409, BUSY) from None
    except ChatNotFound:
        raise not_found() from None
    except (GenerationFailed, StoreError):
        log.warning("title proposal failed", chat_id=str(row["id"]), exc_info=True)
        raise ApiError(500, "Failed to generate chat title.") from None
    return ProposeChatTitleResponse(title=title or current.title)
