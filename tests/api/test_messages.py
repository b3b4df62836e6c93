"""History pagination, visibility and prompt history (api-behaviour §6.11, §6.14)."""

from __future__ import annotations

import uuid

import httpx2
import pytest
import sqlalchemy as sa

from chatd.sdk.chats import ChatMessagePart, ChatMessagePartType, parts_json
from chatd.store.db import Database
from chatd.store.messages import insert_message
from chatd.store.tables import chat_messages
from tests.helpers import Api, ApiUser, envelope, make_chat, seed_model_config

pytestmark = pytest.mark.anyio


def text(value: str) -> list[dict[str, object]]:
    return parts_json([ChatMessagePart(type=ChatMessagePartType.text, text=value)])


async def add(db: Database, chat_id: uuid.UUID, role: str, value: str, **kw: object) -> int:
    async with db.write() as conn:
        message = await insert_message(
            conn, now=db.now(), chat_id=chat_id, role=role, content=text(value), **kw
        )
    return message.id


@pytest.fixture
async def chat_with_history(db: Database, member: ApiUser) -> tuple[uuid.UUID, list[int]]:
    """A chat whose visible history is the first user message plus 6 more, ids ascending."""
    model = await seed_model_config(db)
    chat_id = await make_chat(db, member, model, "first")
    async with db.read() as conn:
        first = (
            await conn.execute(
                sa.select(chat_messages.c.id).where(
                    chat_messages.c.chat_id == chat_id, chat_messages.c.role == "user"
                )
            )
        ).scalar_one()
    ids = [first]
    for i in range(6):
        ids.append(await add(db, chat_id, "assistant" if i % 2 == 0 else "user", f"m{i}"))
    return chat_id, ids


def url(chat_id: uuid.UUID) -> str:
    return f"/api/experimental/chats/{chat_id}/messages"


async def test_default_page_is_newest_first_and_hides_system_rows(
    client: httpx2.AsyncClient, member: ApiUser, chat_with_history: tuple[uuid.UUID, list[int]]
) -> None:
    chat_id, ids = chat_with_history
    r = await client.get(url(chat_id), headers=member.headers)
    assert r.status_code == 200
    body = r.json()
    assert [m["id"] for m in body["messages"]] == ids[::-1]
    assert all(m["role"] != "system" for m in body["messages"])
    assert body["has_more"] is False
    assert body["queued_messages"] == []
    assert body["messages"][-1]["content"] == [{"type": "text", "text": "first"}]


async def test_model_only_and_deleted_rows_are_never_shown(
    client: httpx2.AsyncClient,
    db: Database,
    member: ApiUser,
    chat_with_history: tuple[uuid.UUID, list[int]],
) -> None:
    chat_id, ids = chat_with_history
    hidden = await add(db, chat_id, "user", "hidden", visibility="model")
    user_only = await add(db, chat_id, "assistant", "ui note", visibility="user")
    async with db.write() as conn:
        await conn.execute(
            chat_messages.update().where(chat_messages.c.id == ids[1]).values(deleted=True)
        )
    r = await client.get(url(chat_id), headers=member.headers)
    shown = [m["id"] for m in r.json()["messages"]]
    assert hidden not in shown and ids[1] not in shown
    assert user_only in shown


async def test_cursors_and_has_more(
    client: httpx2.AsyncClient, member: ApiUser, chat_with_history: tuple[uuid.UUID, list[int]]
) -> None:
    chat_id, ids = chat_with_history
    r = await client.get(url(chat_id), params={"limit": "3"}, headers=member.headers)
    body = r.json()
    assert [m["id"] for m in body["messages"]] == ids[:3:-1][:3]
    assert body["has_more"] is True

    r = await client.get(
        url(chat_id), params={"limit": "3", "before_id": str(ids[4])}, headers=member.headers
    )
    body = r.json()
    assert [m["id"] for m in body["messages"]] == [ids[3], ids[2], ids[1]]
    assert body["has_more"] is True

    r = await client.get(url(chat_id), params={"after_id": str(ids[1])}, headers=member.headers)
    body = r.json()
    assert [m["id"] for m in body["messages"]] == ids[2:]
    assert body["has_more"] is False

    r = await client.get(
        url(chat_id), params={"after_id": str(ids[0]), "limit": "2"}, headers=member.headers
    )
    body = r.json()
    assert [m["id"] for m in body["messages"]] == ids[1:3]
    assert body["has_more"] is True

    r = await client.get(
        url(chat_id),
        params={"after_id": str(ids[0]), "before_id": str(ids[4])},
        headers=member.headers,
    )
    assert [m["id"] for m in r.json()["messages"]] == [ids[3], ids[2], ids[1]]


async def test_queue_only_without_cursors(
    client: httpx2.AsyncClient, db: Database, member: ApiUser
) -> None:
    model = await seed_model_config(db)
    chat_id = await make_chat(db, member, model)  # pending, so a send is queued
    r = await client.post(
        url(chat_id), json={"content": [{"type": "text", "text": "later"}]}, headers=member.headers
    )
    assert r.json()["queued"] is True
    r = await client.get(url(chat_id), headers=member.headers)
    queued = r.json()["queued_messages"]
    assert [q["content"] for q in queued] == [[{"type": "text", "text": "later"}]]
    r = await client.get(url(chat_id), params={"after_id": "1"}, headers=member.headers)
    assert r.json()["queued_messages"] == []
    r = await client.get(url(chat_id), params={"before_id": "999"}, headers=member.headers)
    assert r.json()["queued_messages"] == []


@pytest.mark.parametrize(
    ("params", "field", "detail"),
    [
        ({"limit": "x"}, "limit", 'Query param "limit" must be a valid 32-bit positive integer'),
        ({"limit": "-1"}, "limit", 'Query param "limit" must be a valid 32-bit positive integer'),
        ({"before_id": "x"}, "before_id", 'Query param "before_id" must be a valid 64-bit'),
        ({"after_id": "1.5"}, "after_id", 'Query param "after_id" must be a valid 64-bit'),
    ],
)
async def test_query_param_errors(
    client: httpx2.AsyncClient,
    db: Database,
    member: ApiUser,
    params: dict[str, str],
    field: str,
    detail: str,
) -> None:
    chat_id = await make_chat(db, member, await seed_model_config(db))
    r = await client.get(url(chat_id), params=params, headers=member.headers)
    assert r.status_code == 400
    body = envelope(r)
    assert body["message"] == "Query parameters have invalid values."
    assert body["validations"][0]["field"] == field
    assert body["validations"][0]["detail"].startswith(detail)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"limit": "0"}, "Invalid limit parameter (1-200)."),
        ({"limit": "201"}, "Invalid limit parameter (1-200)."),
        ({"after_id": "5", "before_id": "5"}, "after_id must be less than before_id."),
        ({"after_id": "6", "before_id": "5"}, "after_id must be less than before_id."),
    ],
)
async def test_range_errors(
    client: httpx2.AsyncClient,
    db: Database,
    member: ApiUser,
    params: dict[str, str],
    message: str,
) -> None:
    chat_id = await make_chat(db, member, await seed_model_config(db))
    r = await client.get(url(chat_id), params=params, headers=member.headers)
    assert r.status_code == 400
    assert envelope(r) == {"message": message}


async def test_limit_bounds_and_empty_means_default(
    client: httpx2.AsyncClient, member: ApiUser, chat_with_history: tuple[uuid.UUID, list[int]]
) -> None:
    chat_id, ids = chat_with_history
    for limit in ("1", "200", ""):
        r = await client.get(url(chat_id), params={"limit": limit}, headers=member.headers)
        assert r.status_code == 200
    r = await client.get(url(chat_id), params={"limit": "1"}, headers=member.headers)
    assert [m["id"] for m in r.json()["messages"]] == [ids[-1]]


async def test_readers_may_list_others_get_404(
    client: httpx2.AsyncClient,
    api: Api,
    admin: ApiUser,
    member: ApiUser,
    chat_with_history: tuple[uuid.UUID, list[int]],
) -> None:
    chat_id, _ = chat_with_history
    r = await client.get(url(chat_id), headers=admin.headers)
    assert r.status_code == 200
    stranger = await api.create_user("stranger")
    r = await client.get(url(chat_id), headers=stranger.headers)
    assert r.status_code == 404
    r = await client.get("/api/experimental/chats/not-a-uuid/messages", headers=member.headers)
    assert r.status_code == 400
    assert envelope(r)["message"] == 'Invalid UUID "not-a-uuid".'


async def test_prompts_newest_first_text_only(
    client: httpx2.AsyncClient, db: Database, member: ApiUser
) -> None:
    chat_id = await make_chat(db, member, await seed_model_config(db), "one")
    two = await add(db, chat_id, "user", "two")
    await add(db, chat_id, "assistant", "not a prompt")
    await add(db, chat_id, "user", "hidden", visibility="model")
    async with db.write() as conn:
        blank = await insert_message(
            conn,
            now=db.now(),
            chat_id=chat_id,
            role="user",
            content=parts_json(
                [ChatMessagePart(type=ChatMessagePartType.file_reference, file_name="a.py")]
            ),
        )
        joined = await insert_message(
            conn,
            now=db.now(),
            chat_id=chat_id,
            role="user",
            content=text("three ") + text("and more"),
        )
    r = await client.get(f"/api/experimental/chats/{chat_id}/prompts", headers=member.headers)
    assert r.status_code == 200
    prompts = r.json()["prompts"]
    assert [p["text"] for p in prompts] == ["three and more", "two", "one"]
    assert prompts[0]["id"] == joined.id and prompts[1]["id"] == two
    assert blank.id not in [p["id"] for p in prompts]

    r = await client.get(
        f"/api/experimental/chats/{chat_id}/prompts", params={"limit": "2"}, headers=member.headers
    )
    assert [p["text"] for p in r.json()["prompts"]] == ["three and more", "two"]


@pytest.mark.parametrize(
    ("limit", "message"),
    [
        ("2001", "Invalid limit parameter (0-2000)."),
        ("-1", "Query parameters have invalid values."),
        ("abc", "Query parameters have invalid values."),
    ],
)
async def test_prompts_limit_errors(
    client: httpx2.AsyncClient, db: Database, member: ApiUser, limit: str, message: str
) -> None:
    chat_id = await make_chat(db, member, await seed_model_config(db))
    r = await client.get(
        f"/api/experimental/chats/{chat_id}/prompts",
        params={"limit": limit},
        headers=member.headers,
    )
    assert r.status_code == 400
    assert envelope(r)["message"] == message
    r = await client.get(
        f"/api/experimental/chats/{chat_id}/prompts",
        params={"limit": "2000"},
        headers=member.headers,
    )
    assert r.status_code == 200
