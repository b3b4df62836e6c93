"""Create, read and update one chat, and its diff (api-behaviour §6.2, §6.7–6.9)."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Request, Response

from chatd.api import chat_rules as rules
from chatd.api.chat_diff import GITHUB, diff_contents
from chatd.api.chat_input import check_labels, convert_content, sanitize_prompt
from chatd.api.chat_param import ChatPath, load_chat
from chatd.api.deps import DB, AppSettings, CurrentActor, GitHub, Hub
from chatd.api.errors import ERROR_RESPONSES, ApiError, not_found
from chatd.api.openapi import json_body
from chatd.api.params import read_json
from chatd.api.workspace_diff import with_workspace
from chatd.authz import Actor
from chatd.engine.titles import title_from_text
from chatd.events.hub import EventHub
from chatd.gitsync.diff import pull_request_diff
from chatd.prompts import DEFAULT_SYSTEM_PROMPT, NO_WORKSPACE, WORKSPACE_ATTACHED
from chatd.sdk.chats import Chat, ChatDiffContents, CreateChatRequest, UpdateChatRequest
from chatd.store import chat_updates as updates
from chatd.store import chats as chat_store
from chatd.store import stream_log
from chatd.store.chat_create import NewChat, create_chat
from chatd.store.chat_diff import get_diff_status_row
from chatd.store.db import Database
from chatd.store.errors import StoreError
from chatd.store.files import link_files
from chatd.store.usage_limits import check_spend
from chatd.workspace.service import Workspaces

router = APIRouter(prefix="/api/experimental", tags=["Chats"], responses=ERROR_RESPONSES)

CREATE_BODY_LIMIT = 262_144
MAX_TITLE_RUNES = 200
TITLE_REGENERATING = "Title regeneration already in progress for this chat."
REJECTIONS = {
    updates.Rejection.already_archived: "Chat is already archived.",
    updates.Rejection.already_unarchived: "Chat is already not archived.",
    updates.Rejection.parent_archived: (
        "Cannot unarchive a child chat while its parent is archived. "
        "Unarchive the parent chat to cascade."
    ),
    updates.Rejection.pin_archived: "Cannot pin an archived chat.",
    updates.Rejection.pin_child: "Cannot pin a child chat.",
}


@router.post(
    "/chats",
    status_code=201,
    response_model=Chat,
    summary="Create chat",
    openapi_extra=json_body(CreateChatRequest),
)
async def create(request: Request, db: DB, actor: CurrentActor, hub: Hub) -> Chat:
    body = await read_json(request, CreateChatRequest, limit=CREATE_BODY_LIMIT)
    org_id = body.organization_id
    if org_id is None or org_id == rules.NIL_UUID:
        raise ApiError(400, "organization_id is required.")
    if not actor.is_member(org_id):
        raise ApiError(403, "You are not a member of the specified organization.")
    rules.check_system_prompt(body.system_prompt or "")
    content = await convert_content(db, actor, body.content)
    async with db.read() as conn:
        if body.workspace_id is not None:
            await rules.check_workspace(
                conn,
                actor,
                body.workspace_id,
                org_id,
                "Workspace does not belong to the specified organization.",
            )
        model_config_id = await rules.resolve_model_config(conn, body.model_config_id)
    plan_mode = rules.check_plan_mode(body.plan_mode or "")
    mcp_server_ids = body.mcp_server_ids or []
    if mcp_server_ids:
        async with db.read() as conn:
            await rules.check_mcp_server_ids(conn, mcp_server_ids)
    check_labels(body.labels)
    dynamic_tools = rules.check_dynamic_tools(body.unsafe_dynamic_tools or [])
    client_type = rules.check_client_type(body.client_type or "")

    system_prompts = [DEFAULT_SYSTEM_PROMPT]
    if request_prompt := sanitize_prompt(body.system_prompt or ""):
        system_prompts.append(request_prompt)
    system_prompts.append(WORKSPACE_ATTACHED if body.workspace_id else NO_WORKSPACE)
    new = NewChat(
        owner_id=actor.user_id,
        organization_id=org_id,
        title=title_from_text(content.title_source),
        model_config_id=model_config_id,
        content=content.parts,
        system_prompts=system_prompts,
        workspace_id=body.workspace_id,
        labels=body.labels or {},
        dynamic_tools=dynamic_tools,
        plan_mode=plan_mode,
        client_type=client_type,
        mcp_server_ids=mcp_server_ids,
    )
    async with db.write() as conn:
        await check_spend(conn, actor.user_id, db.now())
        chat, outbox = await create_chat(conn, db.now(), new)
        await stream_log.seal(conn, outbox, db.now())
    hub.publish(outbox)
    if body.workspace_id is not None:
        workspaces: Workspaces = request.app.state.workspaces
        await workspaces.chat_bound(body.workspace_id)
    warnings = await _link_files(db, chat.id, content.file_ids)
    async with db.read() as conn:
        created = await chat_store.get_chat(conn, chat.id)
        files = await chat_store.linked_files(conn, chat.id)
    if created is None:
        raise not_found()
    created.files = files or None
    created.warnings = warnings or None
    return created


async def _link_files(db: Database, chat_id: uuid.UUID, file_ids: list[uuid.UUID]) -> list[str]:
    """Link the message's files; a failure becomes a warning, never a failed create."""
    if not file_ids:
        return []
    try:
        async with db.write() as conn:
            if await chat_store.lock_chat(conn, chat_id) is None:
                return []
            return await link_files(conn, chat_id, file_ids)
    except StoreError:
        return [f"{len(file_ids)} file(s) could not be linked due to a server error"]


@router.get("/chats/{chat}", response_model=Chat, summary="Get chat by ID")
async def get(chat: ChatPath, db: DB, actor: CurrentActor, settings: AppSettings) -> Chat:
    row = await load_chat(db, actor, chat)
    github = settings.github_site()
    async with db.read() as conn:
        result = await chat_store.get_chat(conn, row["id"])
        if result is None:
            raise not_found()
        statuses = await chat_store.diff_statuses(conn, [result.id], github)
        files = await chat_store.linked_files(conn, result.id)
        if result.parent_chat_id is None:
            family = await chat_store.children(
                conn, [result.id], archived=result.archived, github=github
            )
            result.children = family.get(result.id, [])
    result.diff_status = statuses.get(result.id)
    result.files = files or None
    return result


@router.patch(
    "/chats/{chat}",
    status_code=204,
    response_model=None,
    response_class=Response,
    summary="Update chat",
    openapi_extra=json_body(UpdateChatRequest),
)
async def update(
    chat: ChatPath, request: Request, db: DB, actor: CurrentActor, hub: Hub
) -> Response:
    row = await load_chat(db, actor, chat)
    if not actor.can_update_chat(row["owner_id"]):
        raise not_found()
    body = await read_json(request, UpdateChatRequest)
    chat_id: uuid.UUID = row["id"]
    try:
        await _apply_update(db, hub, actor, chat_id, row["organization_id"], body)
        if body.workspace_id is not None and body.workspace_id != rules.NIL_UUID:
            workspaces: Workspaces = request.app.state.workspaces
            await workspaces.chat_bound(body.workspace_id)
    except updates.ChatUpdateRejected as exc:
        if exc.reason is updates.Rejection.not_found:
            raise not_found() from None
        if exc.reason is updates.Rejection.title_regenerating:
            raise ApiError(409, TITLE_REGENERATING) from None
        raise ApiError(400, REJECTIONS[exc.reason]) from None
    return Response(status_code=204)


async def _apply_update(
    db: Database,
    hub: EventHub,
    actor: Actor,
    chat_id: uuid.UUID,
    org_id: uuid.UUID,
    body: UpdateChatRequest,
) -> None:
    """The steps of §6.8 in order; each commits on its own, so earlier ones stick."""
    plan_mode = rules.check_plan_mode(body.plan_mode) if body.plan_mode is not None else None
    if body.title is not None:
        title = body.title.strip()
        if not title:
            raise ApiError(400, "Title cannot be empty.")
        if len(title) > MAX_TITLE_RUNES:
            raise ApiError(400, f"Title must be at most {MAX_TITLE_RUNES} characters.")
        async with db.write() as conn:
            outbox = await updates.rename_chat(conn, db.now(), chat_id, title)
            await stream_log.seal(conn, outbox, db.now())
        hub.publish(outbox)
    if body.labels is not None:
        check_labels(body.labels)
        async with db.write() as conn:
            await updates.set_labels(conn, db.now(), chat_id, body.labels)
    if body.archived is not None:
        async with db.write() as conn:
            outbox = await updates.set_archived(conn, db.now(), chat_id, body.archived)
            await stream_log.seal(conn, outbox, db.now())
        hub.publish(outbox)
    if body.pin_order is not None:
        if body.pin_order < 0:
            raise ApiError(400, "Pin order must be non-negative.")
        async with db.write() as conn:
            await updates.set_pin_order(conn, chat_id, body.pin_order)
    if body.workspace_id is not None:
        workspace_id = None if body.workspace_id == rules.NIL_UUID else body.workspace_id
        if workspace_id is not None:
            async with db.read() as conn:
                await rules.check_workspace(
                    conn,
                    actor,
                    workspace_id,
                    org_id,
                    "Workspace does not belong to this chat's organization.",
                )
        async with db.write() as conn:
            await updates.set_workspace(conn, db.now(), chat_id, workspace_id)
    if body.plan_mode is not None:
        async with db.write() as conn:
            await updates.set_plan_mode(conn, chat_id, plan_mode)


@router.get("/chats/{chat}/diff", response_model=ChatDiffContents, summary="Get chat diff contents")
async def diff(
    request: Request,
    chat: ChatPath,
    db: DB,
    actor: CurrentActor,
    settings: AppSettings,
    github: GitHub,
) -> ChatDiffContents:
    row = await load_chat(db, actor, chat)
    async with db.read() as conn:
        status_row = await get_diff_status_row(conn, row["id"])
    site = settings.github_site()
    contents = diff_contents(row["id"], status_row, site)
    # The diffs (the owner's GitHub token, the workspace's files) are for the chat's owner
    # and site owners; an organization admin who reads the chat sees the stored status.
    if row["owner_id"] != actor.user_id and not actor.is_owner:
        return contents
    pull = await pull_request_diff(db, github, site, owner_id=row["owner_id"], row=status_row)
    if pull is not None:
        contents.provider = contents.provider or GITHUB
        contents.pull_request_url, contents.diff = pull.url, pull.diff
    if row["workspace_id"] is not None:
        workspaces: Workspaces = request.app.state.workspaces
        contents = with_workspace(contents, workspaces.git.main_repository(row["workspace_id"]))
    return contents
