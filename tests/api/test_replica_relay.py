"""The replicas' internal relay socket takes only a token signed with their shared secret:
no user credential opens it, and a replica without workers (no registry) opens it to nobody."""

from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI
from httpx2.websockets import WebSocketUpgradeError

from chatd.store.db import Database
from tests.api.ws_helpers import ws_client
from tests.helpers import ApiUser, envelope, make_chat, seed_model_config

pytestmark = pytest.mark.anyio


async def refused(app: FastAPI, path: str, headers: dict[str, str]) -> int:
    async with ws_client(app) as http:
        with pytest.raises(WebSocketUpgradeError) as refusal:
            async with http.websocket(path, headers=headers, keepalive_ping_interval_seconds=None):
                pass
    response = refusal.value.response
    assert envelope(response)["message"] == "Replica authentication required."
    return response.status_code


async def test_only_a_replica_token_opens_the_relay(
    app: FastAPI, db: Database, admin: ApiUser
) -> None:
    chat_id = await make_chat(db, admin, await seed_model_config(db))
    path = f"/api/internal/chats/{chat_id}/relay?after_seq=0"
    for headers in (
        {},
        admin.headers,  # a user's session token
        {"Authorization": f"Bearer {admin.token}"},
        {"Authorization": "Bearer " + f"{uuid.uuid4().hex}.9999999999.{'0' * 64}"},
        {"Authorization": "Basic abc"},
    ):
        assert await refused(app, path, headers) == 401
