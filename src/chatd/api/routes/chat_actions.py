"""Acting on a chat's turn: interrupt, the message queue, client tool results.

api-behaviour §6.10 and §7 (V1 column). Mounted by :mod:`chatd.api.routes.messages`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Request, Response

from chatd.api import transitions
from chatd.api.chat_param import ChatPath, load_chat
from chatd.api.deps import DB, CurrentActor, Hub
from chatd.api.errors import ERROR_RESPONSES, ApiError, forbidden
from chatd.api.openapi import int64_path, json_body
from chatd.api.params import read_json
from chatd.sdk.chats import Chat, ChatMessage, SubmitToolResultsRequest
from chatd.store import chat_state, convert, stream_log, tool_calls
from chatd.store.usage_limits import check_spend

router = APIRouter(tags=["Chats"], responses=ERROR_RESPONSES)

TOOL_RESULTS_LIMIT = 256 * 1024
QueuedPath = Annotated[str, int64_path("Queued message ID.")]


@router.post(
    "/chats/{chat}/interrupt", status_code=200, response_model=Chat, summary="Interrupt a chat"
)
async def interrupt_chat(chat: ChatPath, db: DB, actor: CurrentActor, hub: Hub) -> Chat:
    row = await load_chat(db, actor, chat)
    if not transitions.can_update(actor, row):
        # V1 checks only read access; the write is refused and the chat comes back unchanged.
        return convert.chat(row)
    with transitions.refusals(archived="", failed="Failed to interrupt chat."):
        async with db.write() as conn:
            updated, outbox = await chat_state.interrupt(conn, db.now(), row["id"])
            await stream_log.seal(conn, outbox, db.now())
    hub.publish(outbox)
    return updated


@router.delete(
    "/chats/{chat}/queue/{queuedMessage}",
    status_code=204,
    response_class=Response,
    response_model=None,
    summary="Delete a queued chat message",
)
async def delete_queued_message(
    chat: ChatPath, queuedMessage: QueuedPath, db: DB, actor: CurrentActor, hub: Hub
) -> Response:
    row = await load_chat(db, actor, chat)
    queued_id = transitions.parse_queued_id(queuedMessage)
    if not transitions.can_update(actor, row):
        raise forbidden()
    with transitions.refusals(archived="", failed="Failed to delete queued message."):
        async with db.write() as conn:
            outbox = await chat_state.delete_queued(conn, row["id"], queued_id)
            await stream_log.seal(conn, outbox, db.now())
    hub.publish(outbox)
    return Response(status_code=204)


@router.post(
    "/chats/{chat}/queue/{queuedMessage}/promote",
    status_code=200,
    response_model=ChatMessage,
    summary="Promote a queued chat message",
)
async def promote_queued_message(
    chat: ChatPath, queuedMessage: QueuedPath, db: DB, actor: CurrentActor, hub: Hub
) -> ChatMessage:
    row = await load_chat(db, actor, chat)
    transitions.require_owner(
        actor, row, "Only the chat owner may promote queued messages.", update=True
    )
    if row["archived"]:
        raise ApiError(400, transitions.ARCHIVED_PROMOTE)
    queued_id = transitions.parse_queued_id(queuedMessage)
    with transitions.refusals(
        archived=transitions.ARCHIVED_PROMOTE, failed="Failed to promote queued message."
    ):
        async with db.write() as conn:
            await check_spend(conn, actor.user_id, db.now())
            message, outbox = await chat_state.promote_queued(
                conn, db.now(), row["id"], queued_id, actor.user_id
            )
            await stream_log.seal(conn, outbox, db.now())
    hub.publish(outbox)
    return message


@router.post(
    "/chats/{chat}/tool-results",
    status_code=204,
    response_class=Response,
    response_model=None,
    summary="Submit client tool results",
    openapi_extra=json_body(SubmitToolResultsRequest),
)
async def submit_tool_results(
    chat: ChatPath, request: Request, db: DB, actor: CurrentActor, hub: Hub
) -> Response:
    row = await load_chat(db, actor, chat)
    transitions.require_owner(actor, row, "Only the chat owner may submit tool results.")
    if row["archived"]:
        raise ApiError(400, transitions.ARCHIVED_TOOL_RESULTS)
    body = await read_json(request, SubmitToolResultsRequest, limit=TOOL_RESULTS_LIMIT)
    if not body.results:
        raise ApiError(400, "At least one tool result is required.")
    with transitions.refusals(
        archived=transitions.ARCHIVED_TOOL_RESULTS, failed="Failed to submit tool results."
    ):
        async with db.write() as conn:
            outbox = await tool_calls.submit_tool_results(
                conn, db.now(), row["id"], actor.user_id, body.results
            )
            await stream_log.seal(conn, outbox, db.now())
    hub.publish(outbox)
    return Response(status_code=204)
