"""Every chat route walked as the owner, another member, the site admin and an org admin.

api-behaviour §2: a chat another user cannot read answers 404 on every route (its existence
is not revealed); readers who are not the owner may read but never act as the owner.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import httpx2
import pytest
import sqlalchemy as sa

from chatd.store.db import Database
from chatd.store.messages import insert_queued
from chatd.store.tables import organization_members
from tests.helpers import Api, ApiUser, envelope, make_chat, seed_model_config

pytestmark = pytest.mark.anyio


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    body: dict[str, object] | None = None


async def _setup(api: Api, db: Database) -> tuple[ApiUser, uuid.UUID, int, int]:
    owner = await api.create_user("owner")
    config_id = await seed_model_config(db)
    chat_id = await make_chat(db, owner, config_id, "private plans")
    r = await api.request("GET", f"/api/experimental/chats/{chat_id}/messages", owner)
    message_id = r.json()["messages"][0]["id"]
    async with db.write() as conn:
        queued = await insert_queued(
            conn,
            now=db.now(),
            chat_id=chat_id,
            content=[{"type": "text", "text": "later"}],
            model_config_id=None,
            created_by=None,
        )
        queued_id = queued.id
    return owner, chat_id, message_id, queued_id


def _routes(chat_id: uuid.UUID, message_id: int, queued_id: int) -> list[Route]:
    base = f"/api/experimental/chats/{chat_id}"
    text = {"content": [{"type": "text", "text": "hi"}]}
    return [
        Route("GET", base),
        Route("PATCH", base, {"title": "renamed"}),
        Route("GET", f"{base}/diff"),
        Route("GET", f"{base}/messages"),
        Route("POST", f"{base}/messages", text),
        Route("PATCH", f"{base}/messages/{message_id}", text),
        Route("GET", f"{base}/prompts"),
        Route("POST", f"{base}/interrupt"),
        Route("DELETE", f"{base}/queue/{queued_id}"),
        Route("POST", f"{base}/queue/{queued_id}/promote"),
        Route("POST", f"{base}/tool-results", {"results": []}),
    ]


async def _call(client: httpx2.AsyncClient, user: ApiUser, route: Route) -> httpx2.Response:
    return await client.request(route.method, route.path, headers=user.headers, json=route.body)


async def test_another_member_gets_404_everywhere(
    api: Api, db: Database, client: httpx2.AsyncClient
) -> None:
    _, chat_id, message_id, queued_id = await _setup(api, db)
    stranger = await api.create_user("stranger")
    for route in _routes(chat_id, message_id, queued_id):
        r = await _call(client, stranger, route)
        assert r.status_code == 404, (route, r.text)
        assert envelope(r)["message"] == (
            "Resource not found or you do not have access to this resource"
        )
    # And the chat never shows in their list.
    r = await client.get("/api/experimental/chats", headers=stranger.headers)
    assert r.json() == []
    # Nothing changed: the owner still sees the original title, message and queue.
    r = await client.get(f"/api/experimental/chats/{chat_id}/messages", headers=api.admin.headers)
    assert [m["id"] for m in r.json()["messages"]] == [message_id]
    assert [q["id"] for q in r.json()["queued_messages"]] == [queued_id]


# What a reader who is not the owner gets: reads succeed, owner-only actions are refused.
READER_EXPECTATIONS = {
    ("GET", ""): 200,
    ("PATCH", ""): 404,
    ("GET", "/diff"): 200,
    ("GET", "/messages"): 200,
    ("POST", "/messages"): 403,
    ("PATCH", "/messages/{m}"): 403,
    ("GET", "/prompts"): 200,
    ("POST", "/tool-results"): 403,
    ("POST", "/queue/{q}/promote"): 403,
    # V1: interrupt needs only read (a reader who may not update leaves the chat unchanged);
    # deleting a queued message needs update, which site admins have.
    ("POST", "/interrupt"): 200,
}
OWNER_ONLY_MESSAGES = {
    ("POST", "/messages"): "Only the chat owner may send messages.",
    ("PATCH", "/messages/{m}"): "Only the chat owner may edit messages.",
    ("POST", "/queue/{q}/promote"): "Only the chat owner may promote queued messages.",
    ("POST", "/tool-results"): "Only the chat owner may submit tool results.",
}


def _key(route: Route, chat_id: uuid.UUID, message_id: int, queued_id: int) -> tuple[str, str]:
    suffix = route.path.removeprefix(f"/api/experimental/chats/{chat_id}")
    suffix = suffix.replace(f"/messages/{message_id}", "/messages/{m}")
    suffix = suffix.replace(f"/queue/{queued_id}", "/queue/{q}")
    return route.method, suffix


async def test_site_admin_reads_but_cannot_act_as_owner(
    api: Api, db: Database, client: httpx2.AsyncClient
) -> None:
    _, chat_id, message_id, queued_id = await _setup(api, db)
    for route in _routes(chat_id, message_id, queued_id):
        key = _key(route, chat_id, message_id, queued_id)
        if key not in READER_EXPECTATIONS:
            continue
        r = await _call(client, api.admin, route)
        assert r.status_code == READER_EXPECTATIONS[key], (route, r.text)
        if key in OWNER_ONLY_MESSAGES:
            assert envelope(r)["message"] == OWNER_ONLY_MESSAGES[key]
    # The admin's list holds only their own chats.
    r = await client.get("/api/experimental/chats", headers=api.admin.headers)
    assert r.json() == []


async def test_org_admin_reads_chats_in_their_org(
    api: Api, db: Database, client: httpx2.AsyncClient
) -> None:
    owner, chat_id, message_id, queued_id = await _setup(api, db)
    org_admin = await api.create_user("orgadmin")
    async with db.write() as conn:
        await conn.execute(
            sa.update(organization_members)
            .where(organization_members.c.user_id == org_admin.id)
            .values(roles=["organization-admin"])
        )
    r = await client.get(f"/api/experimental/chats/{chat_id}", headers=org_admin.headers)
    assert r.status_code == 200
    assert r.json()["owner_username"] == owner.username
    r = await client.get(f"/api/experimental/chats/{chat_id}/messages", headers=org_admin.headers)
    assert r.status_code == 200
    for route in _routes(chat_id, message_id, queued_id):
        if route.method == "GET":
            continue
        r = await _call(client, org_admin, route)
        if route.path.endswith("/interrupt"):
            assert r.status_code == 200
            assert r.json()["status"] == "pending"  # unchanged: only the owner's side acts
            continue
        assert r.status_code in (403, 404), (route, r.text)
        envelope(r)
    # Nothing the org admin tried changed the chat.
    r = await client.get(f"/api/experimental/chats/{chat_id}/messages", headers=owner.headers)
    assert [m["id"] for m in r.json()["messages"]] == [message_id]
    assert [q["id"] for q in r.json()["queued_messages"]] == [queued_id]
    r = await client.get(f"/api/experimental/chats/{chat_id}", headers=owner.headers)
    assert r.json()["title"] == "private plans"
