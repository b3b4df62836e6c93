"""The WebSocket routes: ``/chats/{chat}/stream`` and ``/chats/watch`` (engine-behaviour §10).

The stream subscribes to the hub before anything else and notes the number of the newest event
delivered here (``start``), then sends the snapshot (:mod:`chatd.events.snapshot`) and
afterwards whatever the hub delivers above ``start``, batched: wait for one event, take what
else is queued, send one JSON array of at most 256 events. With ``after_seq`` the snapshot is
replaced by exactly the events after that number (:mod:`chatd.events.resume`), or, when they
are no longer all kept, by a ``history_reset`` event and the snapshot. The watch socket sends
each of the owner's events as its own JSON object, without a snapshot.

The OpenAPI document describes each WebSocket as a GET operation returning its event schema, as
the reference's document does, so clients generated from it know the event shapes.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
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
from chatd.events.hub import EventHub, Ring
from chatd.events.resume import resume_events
from chatd.events.snapshot import FRAME_LIMIT, frame_json, frames, load_snapshot, turn_events
from chatd.sdk.events import ChatStreamEvent, ChatStreamEventType, ChatWatchEvent
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


def parse_after_seq(raw: str | None) -> int | None:
    """``after_seq`` as a non-negative int64 (None when absent)."""
    if raw is None:
        return None
    try:
        value = int(raw, 10)
    except ValueError:
        raise ApiError(400, "Invalid after_seq parameter.", "It must be an integer.") from None
    if not 0 <= value <= INT64_MAX:
        raise ApiError(400, "Invalid after_seq parameter.", "It must be 0 or more.")
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
        after_seq = parse_after_seq(websocket.query_params.get("after_seq"))
    except ApiError as error:
        await deny(websocket, error)
        return
    chat_id: uuid.UUID = row["id"]
    is_owner = row["owner_id"] == actor.user_id
    with hub.chat(chat_id) as sub:
        try:
            await hub.prepare(chat_id)
        except StoreError:
            log.exception("stream subscription failed", chat_id=str(chat_id))
            await deny(websocket, ApiError(500, "Chat streaming is unavailable."))
            return
        # No await from here until the copies are taken: every event is either in them (or
        # numbered at most ``start``) or still to come through the subscription.
        start = hub.seq(chat_id)
        turn = turn_events(hub, chat_id)
        ring = hub.ring(chat_id) if after_seq is not None else None
        await websocket.accept()
        if is_owner:
            await _mark_read(db, chat_id)
        position = _Position(start, after_id, after_seq, turn, ring)

        async def write() -> None:
            await _send_stream(websocket, db, sub, chat_id, position)

        try:
            await serve(websocket, write)
        finally:
            if is_owner:
                with anyio.CancelScope(shield=True), anyio.move_on_after(CURSOR_WRITE_TIMEOUT):
                    await _mark_read(db, chat_id)


@dataclass
class _Position:
    """Where a stream client starts: the subscription's ``start``, and what it asked for."""

    start: int
    after_id: int
    after_seq: int | None
    turn: list[Delivery[ChatStreamEvent]]
    ring: Ring | None


async def _send_stream(
    websocket: WebSocket,
    db: Database,
    sub: Subscription[ChatStreamEvent],
    chat_id: uuid.UUID,
    at: _Position,
) -> None:
    resumed = None
    if at.after_seq is not None:
        try:
            turns = websocket.app.state.turn_source
            resumed = await resume_events(db, chat_id, at.after_seq, at.start, at.ring, turns=turns)
        except StoreError:
            log.exception("stream resume failed", chat_id=str(chat_id))
    cursor: MessageCursor | None = None
    if resumed is not None:
        assert at.after_seq is not None
        for frame in frames(resumed):
            await websocket.send_text(frame_json(frame))
        after = max(at.start, at.after_seq)
    else:
        snapshot = await load_snapshot(db, chat_id, at.after_id, at.turn, at.start)
        events = snapshot.events
        if at.after_seq is not None:
            events = [_history_reset(chat_id, at.start), *events]
        for frame in frames(events):
            await websocket.send_text(frame_json(frame))
        cursor = MessageCursor(snapshot.last_message_id)
        after = at.start
    while (batch := await sub.batch(FRAME_LIMIT)) is not None:
        live = [d for d in batch if d.seq > after and (cursor is None or cursor.admit(d))]
        if live:
            await websocket.send_text(frame_json(live))
    await close_lagged(websocket)


def _history_reset(chat_id: uuid.UUID, seq: int) -> Delivery[ChatStreamEvent]:
    event = ChatStreamEvent(type=ChatStreamEventType.history_reset, chat_id=chat_id, seq=seq)
    return Delivery(event, seq=seq)


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
            {
                "name": "after_seq",
                "in": "query",
                "required": False,
                "description": "Resume: send exactly the events numbered (seq) above this one",
                "schema": {"type": "integer", "format": "int64", "minimum": 0},
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
