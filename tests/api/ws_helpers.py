"""In-process WebSocket clients for the stream and watch routes (httpx2's ASGI transport)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import httpx2
from httpx2.websockets import ASGIWebSocketTransport, AsyncWebSocketSession
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatd.store import messages as mq
from chatd.store.db import Database
from chatd.store.tables import chats
from tests.helpers import ApiUser

CHATS = "/api/experimental/chats"
WAIT = 10.0


def with_denial_extension(app: ASGIApp) -> ASGIApp:
    """Advertise the WebSocket Denial Response extension, as uvicorn does.

    httpx2's test transport understands denial responses but does not say so in the scope.
    """

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            scope = {
                **scope,
                "extensions": {**scope.get("extensions", {}), "websocket.http.response": {}},
            }
        await app(scope, receive, send)

    return wrapped


def backpressure(app: ASGIApp, gate: anyio.Event, after_frames: int) -> ASGIApp:
    """A client whose network stalls: sends block after ``after_frames`` until ``gate`` is set."""

    async def wrapped(scope: Scope, receive: Receive, send: Send) -> None:
        sent = 0

        async def slow_send(message: Message) -> None:
            nonlocal sent
            if message["type"] == "websocket.send":
                sent += 1
                if sent > after_frames:
                    await gate.wait()
            await send(message)

        await app(scope, receive, slow_send)

    return wrapped


# A frame holds up to 256 events; a client takes whatever size a chat's messages make.
MAX_FRAME_BYTES = 64 * 1024 * 1024


@asynccontextmanager
async def ws_client(app: ASGIApp) -> AsyncIterator[httpx2.AsyncClient]:
    transport = ASGIWebSocketTransport(app=with_denial_extension(app), initial_receive_timeout=WAIT)
    async with httpx2.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


@asynccontextmanager
async def connect(
    http: httpx2.AsyncClient, path: str, user: ApiUser | None, **params: Any
) -> AsyncIterator[AsyncWebSocketSession]:
    headers = user.headers if user is not None else {}
    async with http.websocket(
        path,
        headers=headers,
        params=params,
        keepalive_ping_interval_seconds=None,
        max_message_size_bytes=MAX_FRAME_BYTES,
    ) as ws:
        yield ws


def stream_path(chat_id: uuid.UUID | str) -> str:
    return f"{CHATS}/{chat_id}/stream"


async def frame(ws: AsyncWebSocketSession) -> Any:
    with anyio.fail_after(WAIT):
        return await ws.receive_json()


async def frames_until(
    ws: AsyncWebSocketSession, done: Callable[[list[dict[str, Any]]], bool]
) -> list[list[dict[str, Any]]]:
    """Frames until the events received so far satisfy ``done``."""
    received: list[list[dict[str, Any]]] = []
    while not done([e for f in received for e in f]):
        received.append(await frame(ws))
    return received


def types(events: list[dict[str, Any]]) -> list[str]:
    return [e["type"] for e in events]


async def add_messages(
    db: Database, chat_id: uuid.UUID, count: int, role: str = "assistant"
) -> list[int]:
    ids = []
    async with db.write() as conn:
        for i in range(count):
            message = await mq.insert_message(
                conn,
                now=db.now(),
                chat_id=chat_id,
                role=role,
                content=[{"type": "text", "text": f"{role} {i}"}],
            )
            ids.append(message.id)
    return ids


async def set_status(db: Database, chat_id: uuid.UUID, status: str) -> None:
    async with db.write() as conn:
        await conn.execute(chats.update().where(chats.c.id == chat_id).values(status=status))


async def has_unread(http: httpx2.AsyncClient, user: ApiUser, chat_id: uuid.UUID) -> bool:
    r = await http.get(CHATS, headers=user.headers)
    assert r.status_code == 200, r.text
    (chat,) = [c for c in r.json() if c["id"] == str(chat_id)]
    return bool(chat["has_unread"])
