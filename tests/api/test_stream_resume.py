"""``/chats/{chat}/stream?after_seq=N``: exactly the events after N, or a reset and the snapshot.

The events come from the chat event log (both databases) and, for a turn's parts, from the
ring of the turn this process runs; the turn here is played by hand on the hub, as a worker
would (its ``running`` status logged by a claim).
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from fastapi import FastAPI

from chatd.events.delivery import Delta
from chatd.events.hub import EventHub
from chatd.sdk.chats import ChatMessagePartType, ChatMessageRole
from chatd.store import stream_log
from chatd.store import worker_state as ws
from chatd.store.db import Database
from chatd.store.seqs import durable_seq
from tests.api.ws_helpers import CHATS, connect, frame, stream_path, ws_client
from tests.helpers import Api, ApiUser, make_chat, seed_model_config

pytestmark = pytest.mark.anyio
WORKER = uuid.UUID(int=42)


@pytest.fixture
async def model(db: Database) -> uuid.UUID:
    return await seed_model_config(db)


def send_body(value: str) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": value}]}


async def received(app: FastAPI, user: ApiUser, chat_id: uuid.UUID, **params: Any) -> list[Any]:
    """The frames' events until none comes for a moment."""
    events: list[Any] = []
    async with ws_client(app) as http, connect(http, stream_path(chat_id), user, **params) as s:
        while True:
            try:
                events.extend(await s.receive_json(timeout=0.3))
            except TimeoutError:
                return events


async def claim(db: Database, hub: EventHub, chat_id: uuid.UUID) -> int:
    """Claim the chat as a worker would, start its turn on the hub and publish ``running``;
    returns the running status's logged number."""
    async with db.write() as conn:
        rows = await ws.acquire_chats(conn, db.now(), WORKER, 1)
        running = await ws.announce_claims(conn, db.now(), rows)
    assert [r["id"] for r in rows] == [chat_id]
    seq = running.logged[0].seq
    hub.start_turn(chat_id, seq)
    hub.publish(running)
    return seq


def delta(text: str) -> Delta:
    return Delta(ChatMessagePartType.text, text)


async def test_a_client_resumes_after_any_number_it_received(
    app: FastAPI, api: Api, db: Database, hub: EventHub, member: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, member, model)  # pending, its first message logged
    async with ws_client(app) as http, connect(http, stream_path(chat_id), member) as whole:
        snapshot = await frame(whole)
        await claim(db, hub, chat_id)
        for piece in ("one ", "two ", "three"):
            hub.publish_part(chat_id, ChatMessageRole.assistant, delta(piece))
        r = await api.request("POST", f"{CHATS}/{chat_id}/messages", member, json=send_body("q"))
        assert r.status_code == 200 and r.json()["queued"] is True
        hub.publish_part(chat_id, ChatMessageRole.assistant, delta(" four"))
        live: list[Any] = []
        while len(live) < 6:
            live.extend(await frame(whole))
    assert [e["type"] for e in live] == ["status", *["message_part"] * 3, "queue_update"] + [
        "message_part"
    ]
    seqs = [e["seq"] for e in live]
    assert seqs == sorted(set(seqs)) and all(s > snapshot[0]["seq"] for s in seqs)
    # From every point: exactly the rest, nothing before, nothing twice.
    for i, event in enumerate(live):
        assert await received(app, member, chat_id, after_seq=event["seq"]) == live[i + 1 :]
    assert await received(app, member, chat_id, after_seq=snapshot[0]["seq"]) == live
    assert await received(app, member, chat_id, after_seq=seqs[-1] + 10**9) == []


async def test_without_the_turns_parts_the_client_is_told_to_rebuild(
    app: FastAPI, api: Api, db: Database, hub: EventHub, member: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, member, model)
    running = await claim(db, hub, chat_id)
    hub.publish_part(chat_id, ChatMessageRole.assistant, delta("lost"))
    hub.end_turn(chat_id)
    hub._lines[chat_id].ring_start = None  # as once the ring is released
    events = await received(app, member, chat_id, after_seq=durable_seq(running))
    assert events[0]["type"] == "history_reset"
    assert [e["type"] for e in events[1:]] == ["status", "message"]
    assert {e["seq"] for e in events} == {events[0]["seq"]}


async def test_the_log_alone_serves_a_stretch_without_a_turn(
    app: FastAPI, api: Api, db: Database, member: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, member, model)
    async with db.read() as conn:
        first = await stream_log.position(conn, chat_id)
    async with ws_client(app) as http, connect(http, stream_path(chat_id), member) as whole:
        await frame(whole)
        r = await api.request("PATCH", f"{CHATS}/{chat_id}", member, json={"title": "Renamed"})
        assert r.status_code < 300, r.text
        r = await api.request("POST", f"{CHATS}/{chat_id}/messages", member, json=send_body("q"))
        assert r.status_code == 200, r.text
        live = await frame(whole)
    assert live and all(e["type"] != "message_part" for e in live)
    # The rename is a watch event only; the send's events come from the log.
    assert await received(app, member, chat_id, after_seq=durable_seq(first)) == live
    # Once the log no longer has them, the client gets a reset and the snapshot.
    async with db.write() as conn:
        assert await stream_log.trim(conn, db.now() + dt.timedelta(seconds=1)) > 0
    events = await received(app, member, chat_id, after_seq=durable_seq(first))
    assert events[0]["type"] == "history_reset"
    assert [e["type"] for e in events[1:3]] == ["status", "message"]


async def test_after_seq_must_be_a_non_negative_integer(
    app: FastAPI, db: Database, member: ApiUser, model: uuid.UUID
) -> None:
    from httpx2.websockets import WebSocketUpgradeError

    chat_id = await make_chat(db, member, model)
    for bad in ("x", "-1", "1.5", str(2**63)):
        async with ws_client(app) as http:
            with pytest.raises(WebSocketUpgradeError) as refused:
                async with connect(http, stream_path(chat_id), member, after_seq=bad):
                    pass
        assert refused.value.response.status_code == 400
        assert refused.value.response.json()["message"] == "Invalid after_seq parameter."
