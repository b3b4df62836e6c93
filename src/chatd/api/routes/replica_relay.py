"""The internal relay endpoint: another replica follows a turn running here
(:mod:`chatd.events.relay`).

``GET /api/internal/chats/{chat}/relay?after_seq=N`` (a WebSocket), with ``Authorization:
Bearer <token>`` signed with the replicas' shared secret; anything else is refused. It sends the
chat's events after N, from the turn's ring and the log as a resuming client gets them
(:mod:`chatd.events.resume`), then what the hub delivers, and closes once the turn no longer
runs here. A chat claimed here whose turn has not started yet is waited for a moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid

import structlog
from fastapi import APIRouter, WebSocket

from chatd.api.errors import ApiError
from chatd.api.routes.streams import parse_after_seq
from chatd.api.websockets import close_lagged, deny, serve
from chatd.engine.replica import ReplicaRegistry
from chatd.events.delivery import Subscription
from chatd.events.hub import EventHub, Ring
from chatd.events.relay import encode
from chatd.events.resume import resume_events
from chatd.events.snapshot import FRAME_LIMIT
from chatd.sdk.chats import ChatStatus
from chatd.sdk.events import ChatStreamEvent
from chatd.store import stream_log
from chatd.store.db import Database

log = structlog.get_logger(__name__)
router = APIRouter(prefix="/api/internal", include_in_schema=False)

# How long a turn claimed here may take to start before the relay gives up on it.
TURN_START_WAIT = 2.0
# How often an idle relay looks whether the turn is still running here.
IDLE_CHECK = 0.5


def _caller(websocket: WebSocket) -> uuid.UUID | None:
    registry: ReplicaRegistry | None = websocket.app.state.replicas
    header = websocket.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if registry is None or scheme.lower() != "bearer" or not token:
        return None
    return registry.caller(token.strip())


@router.websocket("/chats/{chat}/relay")
async def relay(websocket: WebSocket, chat: str) -> None:
    db: Database = websocket.app.state.db
    hub: EventHub = websocket.app.state.hub
    try:
        if _caller(websocket) is None:
            raise ApiError(401, "Replica authentication required.")
        try:
            chat_id = uuid.UUID(chat)
        except ValueError:
            raise ApiError(400, "Invalid chat id.") from None
        after = parse_after_seq(websocket.query_params.get("after_seq")) or 0
    except ApiError as error:
        await deny(websocket, error)
        return
    await _turn_started(db, hub, chat_id)
    with hub.chat(chat_id, relay=True) as sub:
        await hub.prepare(chat_id)
        start = hub.seq(chat_id)
        ring = hub.ring(chat_id)
        await websocket.accept()

        async def write() -> None:
            await _send(websocket, db, hub, sub, chat_id, after, start, ring)

        await serve(websocket, write)


async def _turn_started(db: Database, hub: EventHub, chat_id: uuid.UUID) -> None:
    """Wait a moment for a turn claimed here to start."""
    if hub.running_here(chat_id):
        return
    state = await db.run_read(stream_log.follow, chat_id)
    if state.status != ChatStatus.running or state.worker_id != db.origin:
        return
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(TURN_START_WAIT):
            await hub.wait_turn(chat_id)


async def _send(
    websocket: WebSocket,
    db: Database,
    hub: EventHub,
    sub: Subscription[ChatStreamEvent],
    chat_id: uuid.UUID,
    after: int,
    start: int,
    ring: Ring | None,
) -> None:
    # Parts this replica no longer has are skipped; the logged events still all go.
    events = await resume_events(db, chat_id, after, start, ring, parts_kept=False)
    if events is None:
        log.warning("relay could not send every event asked for", chat_id=str(chat_id))
    elif events:
        await websocket.send_text(encode(events))
    sent = max(after, start)
    while hub.running_here(chat_id):
        try:
            batch = await asyncio.wait_for(sub.batch(FRAME_LIMIT), IDLE_CHECK)
        except TimeoutError:
            continue
        if batch is None:
            await close_lagged(websocket)
            return
        live = [d for d in batch if d.seq > sent]
        if live:
            sent = live[-1].seq
            await websocket.send_text(encode(live))
    # The turn ended here: what it delivered last is sent; the follower reads on from the log.
    rest = [d for d in sub.take_queued() if d.seq > sent]
    if rest:
        await websocket.send_text(encode(rest))
    await websocket.close()
