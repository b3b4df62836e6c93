"""``/chats/watch``: the owner's chat events from the real routes, one JSON object per frame."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from fastapi import FastAPI
from httpx2.websockets import AsyncWebSocketSession, WebSocketUpgradeError

from chatd.store.db import Database
from tests.api.ws_helpers import CHATS, connect, frame, set_status, ws_client
from tests.helpers import Api, ApiUser, envelope, seed_model_config

pytestmark = pytest.mark.anyio
WATCH = f"{CHATS}/watch"


@pytest.fixture
async def model(db: Database) -> uuid.UUID:
    return await seed_model_config(db)


def content(text: str) -> list[dict[str, Any]]:
    return [{"type": "text", "text": text}]


async def watched(ws: AsyncWebSocketSession) -> tuple[str, dict[str, Any]]:
    event = await frame(ws)
    assert isinstance(event, dict) and set(event) <= {"kind", "chat", "tool_calls"}
    return event["kind"], event["chat"]


async def test_unauthenticated_is_refused_with_401(app: FastAPI) -> None:
    async with ws_client(app) as http:
        with pytest.raises(WebSocketUpgradeError) as refused:
            async with connect(http, WATCH, None):
                pass
    assert refused.value.response.status_code == 401
    assert envelope(refused.value.response)["message"].startswith("You are signed out")


async def test_created_status_title_archive(
    app: FastAPI, api: Api, db: Database, member: ApiUser, model: uuid.UUID
) -> None:
    other = await api.create_user("other")
    async with (
        ws_client(app) as http,
        connect(http, WATCH, member) as ws,
        connect(http, WATCH, other) as other_ws,
    ):
        r = await http.post(
            CHATS,
            headers=member.headers,
            json={"organization_id": str(member.org_id), "content": content("Fix the build")},
        )
        assert r.status_code == 201, r.text
        chat_id = r.json()["id"]
        kind, chat = await watched(ws)
        assert (kind, chat["id"], chat["status"]) == ("created", chat_id, "pending")

        await set_status(db, uuid.UUID(chat_id), "waiting")
        r = await http.post(
            f"{CHATS}/{chat_id}/messages", headers=member.headers, json={"content": content("hi")}
        )
        assert r.status_code == 200, r.text
        kind, chat = await watched(ws)
        assert (kind, chat["id"], chat["status"]) == ("status_change", chat_id, "pending")

        r = await http.patch(f"{CHATS}/{chat_id}", headers=member.headers, json={"title": "New"})
        assert r.status_code == 204, r.text
        kind, chat = await watched(ws)
        assert (kind, chat["title"]) == ("title_change", "New")

        r = await http.patch(f"{CHATS}/{chat_id}", headers=member.headers, json={"archived": True})
        assert r.status_code == 204, r.text
        archive = [await watched(ws), await watched(ws)]
        assert [kind for kind, _ in archive] == ["status_change", "deleted"]
        assert all(chat["id"] == chat_id and chat["archived"] for _, chat in archive)

        # Another user's socket saw none of it: its next event is its own chat.
        r = await http.post(
            CHATS,
            headers=other.headers,
            json={"organization_id": str(other.org_id), "content": content("mine")},
        )
        kind, chat = await watched(other_ws)
        assert (kind, chat["owner_id"]) == ("created", str(other.id))


async def test_frames_are_newline_terminated_objects(
    app: FastAPI, member: ApiUser, model: uuid.UUID
) -> None:
    async with ws_client(app) as http, connect(http, WATCH, member) as ws:
        r = await http.post(
            CHATS,
            headers=member.headers,
            json={"organization_id": str(member.org_id), "content": content("x")},
        )
        assert r.status_code == 201
        raw = await ws.receive_text(timeout=10)
    assert raw.startswith("{") and raw.endswith("}\n")
