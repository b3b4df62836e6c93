"""``/chats/{chat}/stream``: refusals, the snapshot, live batches, dedupe, lag, read cursor."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import anyio
import pytest
from fastapi import FastAPI
from httpx2.websockets import WebSocketDisconnect, WebSocketUpgradeError

from chatd.events.hub import EventHub
from chatd.sdk.chats import ChatMessagePart, ChatMessagePartType, ChatMessageRole
from chatd.sdk.events import ChatStreamRetry
from chatd.store import stream_log
from chatd.store.db import Database
from chatd.store.messages import visible_messages
from chatd.store.outbox import Outbox
from chatd.store.transition_steps import message_event
from tests.api.ws_helpers import (
    CHATS,
    add_messages,
    backpressure,
    connect,
    frame,
    frames_until,
    has_unread,
    set_status,
    stream_path,
    types,
    ws_client,
)
from tests.helpers import Api, ApiUser, envelope, make_chat, seed_model_config

pytestmark = pytest.mark.anyio


@pytest.fixture
async def model(db: Database) -> uuid.UUID:
    return await seed_model_config(db)


def text(value: str) -> ChatMessagePart:
    return ChatMessagePart(type=ChatMessagePartType.text, text=value)


def send_body(value: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": value}]}


async def expect_refusal(app: FastAPI, path: str, user: ApiUser | None, **params: Any) -> Any:
    async with ws_client(app) as http:
        with pytest.raises(WebSocketUpgradeError) as refused:
            async with connect(http, path, user, **params):
                pass
    return refused.value.response


async def test_refusals_are_http_envelopes(
    app: FastAPI, api: Api, db: Database, member: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, member, model)
    other = await api.create_user("other")

    r = await expect_refusal(app, stream_path(chat_id), None)
    assert r.status_code == 401 and r.headers["x-content-type-options"] == "nosniff"
    assert envelope(r)["message"].startswith("You are signed out")

    r = await expect_refusal(app, stream_path("not-a-uuid"), member)
    assert r.status_code == 400 and envelope(r)["message"] == 'Invalid UUID "not-a-uuid".'

    for path, user in ((stream_path(uuid.uuid4()), member), (stream_path(chat_id), other)):
        r = await expect_refusal(app, path, user)
        assert r.status_code == 404
        assert envelope(r) == {
            "message": "Resource not found or you do not have access to this resource"
        }

    for bad in ("abc", "1.5", "99999999999999999999"):
        r = await expect_refusal(app, stream_path(chat_id), member, after_id=bad)
        assert r.status_code == 400
        err = envelope(r)
        assert err["message"] == "Invalid after_id parameter."
        assert f'parsing "{bad}"' in err["detail"]


async def test_snapshot_status_parts_messages_queue(
    app: FastAPI, api: Api, db: Database, hub: EventHub, member: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, member, model)  # pending, one user message
    r = await api.request("POST", f"{CHATS}/{chat_id}/messages", member, json=send_body("later"))
    assert r.status_code == 200 and r.json()["queued"] is True
    hub.start_turn(chat_id)
    hub.publish_part(chat_id, ChatMessageRole.assistant, text("Hel"))
    hub.publish_part(chat_id, ChatMessageRole.assistant, text("lo"))

    async with ws_client(app) as http, connect(http, stream_path(chat_id), member) as ws:
        snapshot = await frame(ws)
    assert types(snapshot) == ["status", "message_part", "message_part", "message", "queue_update"]
    assert all(e["chat_id"] == str(chat_id) for e in snapshot)
    assert snapshot[0]["status"] == {"status": "pending"}
    assert [e["message_part"]["part"]["text"] for e in snapshot[1:3]] == ["Hel", "lo"]
    assert snapshot[1]["message_part"]["role"] == "assistant"
    assert snapshot[3]["message"]["role"] == "user"
    assert snapshot[3]["message"]["content"] == [{"type": "text", "text": "hello there"}]
    (queued,) = snapshot[4]["queued_messages"]
    assert queued["content"] == [{"type": "text", "text": "later"}]


async def test_snapshot_pending_retry_replaces_parts(
    app: FastAPI, db: Database, hub: EventHub, member: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, member, model)
    hub.start_turn(chat_id)
    hub.publish_part(chat_id, ChatMessageRole.assistant, text("partial"))
    retrying_at = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    hub.publish_retry(
        chat_id,
        ChatStreamRetry(attempt=1, delay_ms=1000, error="overloaded", retrying_at=retrying_at),
    )
    async with ws_client(app) as http, connect(http, stream_path(chat_id), member) as ws:
        snapshot = await frame(ws)
    assert types(snapshot) == ["status", "retry", "message"]
    assert snapshot[1]["retry"]["attempt"] == 1 and snapshot[1]["retry"]["delay_ms"] == 1000


async def test_after_id_and_256_event_frames(
    app: FastAPI, db: Database, member: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, member, model)
    ids = await add_messages(db, chat_id, 600)
    async with ws_client(app) as http:
        async with connect(http, stream_path(chat_id), member) as ws:
            snapshot = [await frame(ws) for _ in range(3)]
        # status + the user message + 600 = 602 events: 256, 256, 90.
        assert [len(f) for f in snapshot] == [256, 256, 90]
        events = [e for f in snapshot for e in f]
        message_ids = [e["message"]["id"] for e in events if e["type"] == "message"]
        assert message_ids == sorted(message_ids) and message_ids[-600:] == ids

        async with connect(http, stream_path(chat_id), member, after_id=ids[-3]) as ws:
            tail = await frame(ws)
        assert types(tail) == ["status", "message", "message"]
        assert [e["message"]["id"] for e in tail[1:]] == ids[-2:]


async def test_live_events_are_batched(
    app: FastAPI, db: Database, hub: EventHub, member: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, member, model)
    hub.start_turn(chat_id)
    async with ws_client(app) as http, connect(http, stream_path(chat_id), member) as ws:
        await frame(ws)
        for i in range(300):  # published without yielding: all queued at once
            hub.publish_part(chat_id, ChatMessageRole.assistant, text(str(i)))
        first, second = await frame(ws), await frame(ws)
    assert (len(first), len(second)) == (256, 44)
    assert [e["message_part"]["part"]["text"] for e in first + second] == [
        str(i) for i in range(300)
    ]


async def test_live_messages_from_routes_and_dedupe(
    app: FastAPI, api: Api, db: Database, hub: EventHub, member: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, member, model)
    await set_status(db, chat_id, "waiting")
    async with ws_client(app) as http, connect(http, stream_path(chat_id), member) as ws:
        snapshot = await frame(ws)
        (first,) = [e["message"] for e in snapshot if e["type"] == "message"]
        # A copy of a message the snapshot already had is not sent again.
        async with db.read() as conn:
            (stored,) = await visible_messages(conn, chat_id)
        async with db.write() as conn:
            copy = await stream_log.seal(conn, Outbox(stream=[message_event(stored)]), db.now())
        hub.publish(copy)

        r = await http.post(
            f"{CHATS}/{chat_id}/messages", headers=member.headers, json=send_body("again")
        )
        assert r.status_code == 200 and r.json()["queued"] is False
        live = await frame(ws)
        assert types(live) == ["message", "status"]
        assert live[0]["message"]["id"] > first["id"]
        assert live[1]["status"] == {"status": "pending"}

        # Busy: the message is queued.
        r = await http.post(
            f"{CHATS}/{chat_id}/messages", headers=member.headers, json=send_body("queued")
        )
        assert r.json()["queued"] is True
        queue = await frame(ws)
        assert types(queue) == ["queue_update"] and len(queue[0]["queued_messages"]) == 1


async def test_edit_refresh_resends_history(
    app: FastAPI, db: Database, member: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, member, model)
    (answer,) = await add_messages(db, chat_id, 1)
    (question,) = await add_messages(db, chat_id, 1, role="user")
    await set_status(db, chat_id, "waiting")
    async with ws_client(app) as http, connect(http, stream_path(chat_id), member) as ws:
        snapshot = await frame(ws)
        sent = [e["message"]["id"] for e in snapshot if e["type"] == "message"]
        assert sent[-2:] == [answer, question]
        r = await http.patch(
            f"{CHATS}/{chat_id}/messages/{question}",
            headers=member.headers,
            json=send_body("better question"),
        )
        assert r.status_code == 200, r.text
        replacement = r.json()["message"]["id"]
        refresh = await frame(ws)
    # The history up to the replacement, although the client had those ids already.
    assert types(refresh) == ["message", "message", "message", "queue_update", "status"]
    assert [e["message"]["id"] for e in refresh[:3]] == [sent[0], answer, replacement]


async def test_lagging_client_is_closed_others_keep_receiving(
    app: FastAPI, db: Database, member: ApiUser, model: uuid.UUID
) -> None:
    app.state.hub = hub = EventHub(queue_size=16)
    chat_id = await make_chat(db, member, model)
    hub.start_turn(chat_id)
    gate = anyio.Event()
    async with (
        ws_client(app) as fast_http,
        ws_client(backpressure(app, gate, after_frames=1)) as slow_http,
        connect(fast_http, stream_path(chat_id), member) as fast,
        connect(slow_http, stream_path(chat_id), member) as slow,
    ):
        await frame(fast)
        await frame(slow)  # the snapshot; the slow client's next send stalls
        received: list[str] = []
        for i in range(40):  # one at a time: the fast client keeps up, the slow one cannot
            hub.publish_part(chat_id, ChatMessageRole.assistant, text(str(i)))
            received += [e["message_part"]["part"]["text"] for e in await frame(fast)]
        assert received == [str(i) for i in range(40)]
        gate.set()
        with pytest.raises(WebSocketDisconnect) as closed:
            await frames_until(slow, lambda _: False)
        assert closed.value.code == 1013
        assert closed.value.reason == "client fell behind; reconnect"
        hub.publish_part(chat_id, ChatMessageRole.assistant, text("still here"))
        assert (await frame(fast))[0]["message_part"]["part"]["text"] == "still here"


async def test_read_cursor_moves_on_connect_and_disconnect(
    app: FastAPI, api: Api, db: Database, member: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, member, model)
    await add_messages(db, chat_id, 1)
    async with ws_client(app) as http:
        assert await has_unread(http, member, chat_id) is True
        # A site admin watching does not move the owner's cursor.
        async with connect(http, stream_path(chat_id), api.admin) as ws:
            await frame(ws)
            assert await has_unread(http, member, chat_id) is True
        # The transport's exit waits for the server side of the socket to finish.
        async with ws_client(app) as owner, connect(owner, stream_path(chat_id), member) as ws:
            await frame(ws)
            assert await has_unread(http, member, chat_id) is False
            await add_messages(db, chat_id, 1)  # arrives while the owner watches
            assert await has_unread(http, member, chat_id) is True
        assert await has_unread(http, member, chat_id) is False
