"""Chat history, sending and editing messages, and prompt history (api-behaviour §6.11-6.14).

The routes that act on a running chat (interrupt, the queue, tool results) live in
:mod:`chatd.api.routes.chat_actions` and are mounted on this router.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Annotated

from fastapi import APIRouter, Query, Request

from chatd.api import chat_rules as rules
from chatd.api import transitions
from chatd.api.chat_input import convert_content
from chatd.api.chat_param import ChatPath, load_chat
from chatd.api.deps import DB, CurrentActor, Hub
from chatd.api.errors import ERROR_RESPONSES, ApiError
from chatd.api.openapi import int64_path, json_body
from chatd.api.params import QueryParams, read_json
from chatd.api.routes import chat_actions
from chatd.sdk.chats import (
    ChatMessagesResponse,
    ChatPromptsResponse,
    CreateChatMessageRequest,
    CreateChatMessageResponse,
    EditChatMessageRequest,
    EditChatMessageResponse,
)
from chatd.store import chat_state, stream_log
from chatd.store import messages as mq
from chatd.store.outbox import Outbox
from chatd.store.sql import Connection
from chatd.store.usage_limits import check_spend

router = APIRouter(prefix="/api/experimental", tags=["Chats"], responses=ERROR_RESPONSES)
router.include_router(chat_actions.router)

DEFAULT_PAGE = 50
MAX_PAGE = 200
DEFAULT_PROMPTS = 500
MAX_PROMPTS = 2000
PLAN_MODES = ("", "plan")
BUSY_BEHAVIORS = ("", "queue", "interrupt")
MessagePath = Annotated[str, int64_path("Message ID.", minimum=1)]


@router.get(
    "/chats/{chat}/messages",
    status_code=200,
    response_model=ChatMessagesResponse,
    summary="List chat messages",
)
async def list_messages(
    chat: ChatPath,
    request: Request,
    db: DB,
    actor: CurrentActor,
    before_id: str | None = Query(None, description="Return messages with id < before_id"),
    after_id: str | None = Query(None, description="Return messages with id > after_id"),
    limit: str | None = Query(None, description="Page size, 1 to 200. Defaults to 50."),
) -> ChatMessagesResponse:
    row = await load_chat(db, actor, chat)
    params = QueryParams(request)
    before = params.int64("before_id", 0)
    after = params.int64("after_id", 0)
    page = params.positive_int32("limit", DEFAULT_PAGE)
    params.finish()
    if page < 1 or page > MAX_PAGE:
        raise ApiError(400, "Invalid limit parameter (1-200).")
    if before > 0 and after > 0 and after >= before:
        raise ApiError(400, "after_id must be less than before_id.")
    async with db.read() as conn:
        messages, has_more = await mq.list_messages(
            conn, row["id"], before_id=before, after_id=after, limit=page
        )
        queued = await mq.queued_messages(conn, row["id"]) if before <= 0 and after <= 0 else []
    return ChatMessagesResponse(messages=messages, queued_messages=queued, has_more=has_more)


@router.post(
    "/chats/{chat}/messages",
    status_code=200,
    response_model=CreateChatMessageResponse,
    summary="Send a chat message",
    openapi_extra=json_body(CreateChatMessageRequest),
)
async def send_message(
    chat: ChatPath, request: Request, db: DB, actor: CurrentActor, hub: Hub
) -> CreateChatMessageResponse:
    row = await load_chat(db, actor, chat)
    transitions.require_owner(actor, row, "Only the chat owner may send messages.", update=True)
    if row["archived"]:
        raise ApiError(400, transitions.ARCHIVED_SEND)
    body = await read_json(request, CreateChatMessageRequest)
    converted = await convert_content(db, actor, body.content)
    if body.mcp_server_ids:
        async with db.read() as conn:
            await rules.check_mcp_server_ids(conn, body.mcp_server_ids)
    if body.plan_mode is not None and body.plan_mode not in PLAN_MODES:
        raise ApiError(400, "Invalid plan_mode value.")
    busy_behavior = body.busy_behavior or ""
    if busy_behavior not in BUSY_BEHAVIORS:
        raise ApiError(400, "Invalid busy_behavior value.", 'Must be "queue" or "interrupt".')
    new = chat_state.NewUserMessage(
        author_id=actor.user_id,
        content=converted.parts,
        file_ids=converted.file_ids,
        model_config_id=body.model_config_id,
    )
    options = chat_state.SendOptions(
        mcp_server_ids=body.mcp_server_ids,
        plan_mode=body.plan_mode,
        interrupt=busy_behavior == "interrupt",
    )
    with transitions.refusals(
        archived=transitions.ARCHIVED_SEND, failed="Failed to create chat message."
    ):
        result, outbox = await db.run_write(_send, db.now(), actor.user_id, row["id"], new, options)
    hub.publish(outbox)
    return CreateChatMessageResponse(
        message=result.message,
        queued_message=result.queued_message,
        queued=result.queued_message is not None,
        warnings=result.warnings or None,
    )


async def _send(
    conn: Connection,
    now: dt.datetime,
    user_id: uuid.UUID,
    chat_id: uuid.UUID,
    new: chat_state.NewUserMessage,
    options: chat_state.SendOptions,
) -> tuple[chat_state.SendResult, Outbox]:
    await check_spend(conn, user_id, now)
    result, outbox = await chat_state.send_message(conn, now, chat_id, new, options)
    return result, await stream_log.seal(conn, outbox, now)


@router.patch(
    "/chats/{chat}/messages/{message}",
    status_code=200,
    response_model=EditChatMessageResponse,
    summary="Edit a chat message",
    openapi_extra=json_body(EditChatMessageRequest),
)
async def edit_message(
    chat: ChatPath, message: MessagePath, request: Request, db: DB, actor: CurrentActor, hub: Hub
) -> EditChatMessageResponse:
    row = await load_chat(db, actor, chat)
    transitions.require_owner(actor, row, "Only the chat owner may edit messages.")
    if row["archived"]:
        raise ApiError(400, transitions.ARCHIVED_EDIT)
    message_id = transitions.parse_message_id(message)
    body = await read_json(request, EditChatMessageRequest)
    converted = await convert_content(db, actor, body.content)
    new = chat_state.NewUserMessage(
        author_id=actor.user_id,
        content=converted.parts,
        file_ids=converted.file_ids,
        model_config_id=body.model_config_id,
    )
    with transitions.refusals(
        archived=transitions.ARCHIVED_EDIT, failed="Failed to edit chat message."
    ):
        async with db.write() as conn:
            await check_spend(conn, actor.user_id, db.now())
            edited, warnings, outbox = await chat_state.edit_message(
                conn, db.now(), row["id"], message_id, new
            )
            await stream_log.seal(conn, outbox, db.now())
    hub.publish(outbox)
    return EditChatMessageResponse(message=edited, warnings=warnings or None)


@router.get(
    "/chats/{chat}/prompts",
    status_code=200,
    response_model=ChatPromptsResponse,
    summary="List chat user prompts",
)
async def list_prompts(
    chat: ChatPath,
    request: Request,
    db: DB,
    actor: CurrentActor,
    limit: str | None = Query(
        None,
        description="Page size, 0 to 2000. 0 (the default) means the server-side default of 500.",
    ),
) -> ChatPromptsResponse:
    row = await load_chat(db, actor, chat)
    params = QueryParams(request)
    count = params.positive_int32("limit", 0)
    params.finish()
    if count > MAX_PROMPTS:
        raise ApiError(400, "Invalid limit parameter (0-2000).")
    async with db.read() as conn:
        prompts = await mq.user_prompts(conn, row["id"], count or DEFAULT_PROMPTS)
    return ChatPromptsResponse(prompts=prompts)
