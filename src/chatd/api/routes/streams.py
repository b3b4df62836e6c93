"""The WebSocket routes: ``/chats/{chat}/stream`` and ``/chats/watch`` (engine-behaviour §10).

The stream subscribes to the hub before anything else, then sends the snapshot
(:mod:`chatd.events.snapshot`) and afterwards whatever the hub delivers, batched: wait for one
event, take what else is queued, send one JSON array of at most 256 events. The watch socket
sends each of the owner's events as its own JSON object, without a snapshot.

The OpenAPI document describes each WebSocket as a GET operation returning its event schema, as
the reference's document does, so clients generated from it know the event shapes.
"""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import structlog
from fastapi import APIRouter, WebSocket

from chatd.api.chat_param import load_chat
from chatd.api.deps import authenticate_connection
from chatd.api.errors import ApiError
from chatd.api.openapi import websocket_route
from chatd.api.params import INT64_MAX
from chatd.api.websockets import close_lagged, deny, serve
from chatd.events.cursor import MessageCursor
from chatd.events.delivery import Delivery, Subscription
from chatd.events.hub import EventHub
from chatd.events.snapshot import FRAME_LIMIT, frame_json, frames, load_snapshot, turn_events
from chatd.sdk.events import ChatStreamEvent, ChatWatchEvent
from chatd.sdk.git import WorkspaceAgentGitServerMessage
from chatd.store.db import Database
from chatd.store.errors import StoreError
from chatd.store.read_cursor import mark_read

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/api/experimental")

# Bounds the read-cursor write made while a socket is torn down.
CURSOR_WRITE_TIMEOUT = 5.0


def parse_after_id(raw: str | None) -> int:
    """``after_id`` as int64; empty or absent is 0 (api-behaviour §6.15)."""
    if not raw:
        return 0
    try:
        value = int(raw, 10)
    except ValueError:
        detail = f'strconv.ParseInt: parsing "{raw}": invalid syntax'
        raise ApiError(400, "Invalid after_id parameter.", detail) from None
    if not -INT64_MAX - 1 <= value <= INT64_MAX:
        detail = f'strconv.ParseInt: parsing "{raw}": value out of range'
        raise ApiError(400, "Invalid after_id parameter.", detail)
    return value


async def _mark_read(db: Database, chat_id: uuid.UUID) -> None:
    try:
        async with db.write_one() as conn:
            await mark_read(conn, chat_id)
    except StoreError:
        log.exception("read cursor update failed", chat_id=str(chat_id))


@router.websocket("/chats/watch")
async def watch(websocket: WebSocket) -> None:
    hub: EventHub = websocket.app.state.hub
    try:
        actor = await authenticate_connection(websocket)
    except ApiError as error:
        await deny(websocket, error)
        return
    with hub.owner(actor.user_id) as sub:
        await websocket.accept()

        async def write() -> None:
            while (batch := await sub.batch(FRAME_LIMIT)) is not None:
                for delivery in batch:
                    await websocket.send_text(delivery.json + "\n")
            await close_lagged(websocket)

        await serve(websocket, write)


@router.websocket("/chats/{chat}/stream")
async def stream(websocket: WebSocket, chat: str) -> None:
    db: Database = websocket.app.state.db
    hub: EventHub = websocket.app.state.hub
    try:
        actor = await authenticate_connection(websocket)
        row = await load_chat(db, actor, chat)
        after_id = parse_after_id(websocket.query_params.get("after_id"))
    except ApiError as error:
        await deny(websocket, error)
        return
    chat_id: uuid.UUID = row["id"]
    is_owner = row["owner_id"] == actor.user_id
    with hub.chat(chat_id) as sub:
        turn = turn_events(hub, chat_id)  # no await since subscribing: nothing falls between
        await websocket.accept()
        if is_owner:
            await _mark_read(db, chat_id)

        async def write() -> None:
            await _send_stream(websocket, db, sub, chat_id, after_id, turn)

        try:
            await serve(websocket, write)
        finally:
            if is_owner:
                with anyio.CancelScope(shield=True), anyio.move_on_after(CURSOR_WRITE_TIMEOUT):
                    await _mark_read(db, chat_id)


async def _send_stream(
    websocket: WebSocket,
    db: Database,
    sub: Subscription[ChatStreamEvent],
    chat_id: uuid.UUID,
    after_id: int,
    turn: list[Delivery[ChatStreamEvent]],
) -> None:
    snapshot = await load_snapshot(db, chat_id, after_id, turn)
    for frame in frames(snapshot.events):
        await websocket.send_text(frame_json(frame))
    cursor = MessageCursor(snapshot.last_message_id)
    while (batch := await sub.batch(FRAME_LIMIT)) is not None:
        events = [d for d in batch if cursor.admit(d)]
        if events:
            await websocket.send_text(frame_json(events))
    await close_lagged(websocket)


def _chat_param() -> dict[str, Any]:
    return {
        "name": "chat",
        "in": "path",
        "required": True,
        "description": "Chat ID",
        "schema": {"type": "string", "format": "uuid"},
    }


def document() -> None:
    """Add the WebSocket routes to the OpenAPI document."""
    websocket_route(
        "/api/experimental/chats/watch",
        summary="Watch chat events for a user via WebSockets",
        tag="Chats",
        model=ChatWatchEvent,
        parameters=[],
    )
    websocket_route(
        "/api/experimental/chats/{chat}/stream",
        summary="Stream chat events via WebSockets",
        tag="Chats",
        model=ChatStreamEvent,
        parameters=[
            _chat_param(),
            {
                "name": "after_id",
                "in": "query",
                "required": False,
                "description": "Only replay messages with a greater id",
                "schema": {"type": "integer", "format": "int64"},
            },
        ],
    )
    websocket_route(
        "/api/experimental/chats/{chat}/stream/desktop",
        summary="Connect to chat workspace desktop via WebSockets",
        tag="Chats",
        model=None,
        parameters=[_chat_param()],
        status="101",
    )
    websocket_route(
        "/api/experimental/chats/{chat}/stream/git",
        summary="Watch chat workspace git state via WebSockets",
        tag="Chats",
        model=WorkspaceAgentGitServerMessage,
        parameters=[_chat_param()],
    )
