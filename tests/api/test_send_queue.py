"""Sending, queueing, busy_behavior, queue delete and promote (api-behaviour §5.6, §6.12, §7)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import httpx2
import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from chatd.events.hub import EventHub
from chatd.sdk.chats import ChatMessagePart, ChatMessagePartType, parts_json
from chatd.store.db import Database
from chatd.store.messages import insert_message
from chatd.store.tables import chat_messages, chat_model_configs, chat_queued_messages
from tests.api.chat_helpers import set_chat_columns, stored_chat
from tests.helpers import JSON_HEADERS, Api, ApiUser, envelope, make_chat, seed_model_config

pytestmark = pytest.mark.anyio


def body(text: str = "hi", **extra: Any) -> dict[str, Any]:
    return {"content": [{"type": "text", "text": text}], **extra}


def msgs(chat_id: uuid.UUID) -> str:
    return f"/api/experimental/chats/{chat_id}/messages"


async def history(client: httpx2.AsyncClient, user: ApiUser, chat_id: uuid.UUID) -> dict[str, Any]:
    r = await client.get(msgs(chat_id), headers=user.headers)
    assert r.status_code == 200
    result: dict[str, Any] = r.json()
    return result


@pytest.fixture
async def model(db: Database) -> uuid.UUID:
    return await seed_model_config(db)


async def test_send_to_idle_chat_starts_a_turn(
    client: httpx2.AsyncClient, db: Database, hub: EventHub, member: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, member, model)
    await set_chat_columns(db, chat_id, status="error", last_error={"message": "boom"})
    hub.worker_wakeup.clear()
    with hub.chat(chat_id) as sub, hub.owner(member.id) as watch:
        r = await client.post(msgs(chat_id), json=body("  again  "), headers=member.headers)
        events = sub.drain()
        watched = watch.drain()
    assert r.status_code == 200
    out = r.json()
    assert out["queued"] is False and "queued_message" not in out
    assert out["message"]["role"] == "user"
    assert out["message"]["content"] == [{"type": "text", "text": "again"}]
    assert out["message"]["created_by"] == str(member.id)
    assert out["message"]["model_config_id"] == str(model)
    row = await stored_chat(db, chat_id)
    assert row["status"] == "pending" and row["last_error"] is None
    assert (await history(client, member, chat_id))["messages"][0]["id"] == out["message"]["id"]
    assert [e.type for e in events] == ["message", "status"]
    assert events[0].message is not None and events[0].message.id == out["message"]["id"]
    assert events[1].status is not None and events[1].status.status == "pending"
    assert [(w.kind, w.chat.status) for w in watched] == [("status_change", "pending")]
    assert hub.worker_wakeup.is_set()


@pytest.mark.parametrize("deleted", [False, True])
async def test_send_keeps_the_chats_model_unless_it_was_deleted(
    client: httpx2.AsyncClient, db: Database, member: ApiUser, model: uuid.UUID, deleted: bool
) -> None:
    """No model named: the chat's last config, or the default once that one is deleted. The
    liveness comes with the row lock: the send reads no model config on its own."""
    other = await seed_model_config(db, model="gpt-4o-mini", is_default=False)
    chat_id = await make_chat(db, member, other)
    await set_chat_columns(db, chat_id, status="waiting")
    if deleted:
        async with db.write() as conn:
            await conn.execute(
                chat_model_configs.update()
                .where(chat_model_configs.c.id == other)
                .values(deleted=True)
            )
    sent: list[str] = []

    def record(statement: str) -> None:
        sent.append(" ".join(statement.split()))

    with db.observe(record):
        r = await client.post(msgs(chat_id), json=body(), headers=member.headers)
    assert r.status_code == 200
    assert r.json()["message"]["model_config_id"] == str(model if deleted else other)
    assert (await stored_chat(db, chat_id))["last_model_config_id"] == (model if deleted else other)
    config_reads = [s for s in sent if s.startswith("SELECT chat_model_configs.")]
    assert len(config_reads) == (1 if deleted else 0)  # the default config's read


@pytest.mark.parametrize("status", ["pending", "running", "requires_action"])
async def test_send_to_busy_chat_is_queued(
    client: httpx2.AsyncClient,
    db: Database,
    hub: EventHub,
    member: ApiUser,
    model: uuid.UUID,
    status: str,
) -> None:
    chat_id = await make_chat(db, member, model)
    await set_chat_columns(db, chat_id, status=status)
    before = await history(client, member, chat_id)
    with hub.chat(chat_id) as sub:
        r = await client.post(msgs(chat_id), json=body("later"), headers=member.headers)
        events = sub.drain()
    assert r.status_code == 200
    out = r.json()
    assert out["queued"] is True and "message" not in out
    assert out["queued_message"]["content"] == [{"type": "text", "text": "later"}]
    after = await history(client, member, chat_id)
    assert after["messages"] == before["messages"]
    assert [q["id"] for q in after["queued_messages"]] == [out["queued_message"]["id"]]
    assert (await stored_chat(db, chat_id))["status"] == status
    assert [e.type for e in events] == ["queue_update"]
    assert [q.id for q in events[0].queued_messages or []] == [out["queued_message"]["id"]]


async def test_non_empty_queue_keeps_queueing_and_21st_is_refused(
    client: httpx2.AsyncClient, db: Database, member: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, member, model)
    for i in range(20):
        r = await client.post(msgs(chat_id), json=body(f"q{i}"), headers=member.headers)
        assert r.json()["queued"] is True
    await set_chat_columns(db, chat_id, status="waiting")  # idle, but the queue is not empty
    r = await client.post(
        msgs(chat_id), json=body("overflow", plan_mode="plan"), headers=member.headers
    )
    assert r.status_code == 429
    assert envelope(r) == {
        "message": "Message queue is full.",
        "detail": "Maximum 20 messages can be queued.",
    }
    queue = (await history(client, member, chat_id))["queued_messages"]
    assert len(queue) == 20
    assert [q["content"][0]["text"] for q in queue] == [f"q{i}" for i in range(20)]
    assert (await stored_chat(db, chat_id))["plan_mode"] is None  # rolled back with the refusal


async def test_busy_behavior_interrupt_stops_a_running_chat(
    client: httpx2.AsyncClient, db: Database, hub: EventHub, member: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, member, model)
    await set_chat_columns(
        db, chat_id, status="running", worker_id=uuid.uuid4(), started_at=db.now()
    )
    with hub.chat(chat_id) as sub, hub.owner(member.id) as watch:
        r = await client.post(
            msgs(chat_id), json=body("stop", busy_behavior="interrupt"), headers=member.headers
        )
        events = sub.drain()
        watched = watch.drain()
    assert r.status_code == 200 and r.json()["queued"] is True
    row = await stored_chat(db, chat_id)
    assert row["status"] == "waiting"
    assert row["worker_id"] is None and row["started_at"] is None
    assert [e.type for e in events] == ["queue_update", "status"]
    assert [(w.kind, w.chat.status) for w in watched] == [("status_change", "waiting")]


async def test_busy_behavior_interrupt_leaves_pending_alone(
    client: httpx2.AsyncClient, db: Database, hub: EventHub, member: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, member, model)
    with hub.chat(chat_id) as sub:
        r = await client.post(
            msgs(chat_id), json=body("x", busy_behavior="interrupt"), headers=member.headers
        )
        events = sub.drain()
    assert r.json()["queued"] is True
    assert (await stored_chat(db, chat_id))["status"] == "pending"
    assert [e.type for e in events] == ["queue_update"]


@pytest.mark.parametrize(
    ("extra", "message", "detail"),
    [
        (
            {"busy_behavior": "steer"},
            "Invalid busy_behavior value.",
            'Must be "queue" or "interrupt".',
        ),
        ({"plan_mode": "build"}, "Invalid plan_mode value.", None),
        ({"model_config_id": str(uuid.uuid4())}, "Invalid model config ID.", None),
        (
            {
                "mcp_server_ids": [
                    "11111111-1111-1111-1111-111111111111",
                    "22222222-2222-2222-2222-222222222222",
                ]
            },
            "One or more MCP server IDs are invalid.",
            "Invalid IDs: 11111111-1111-1111-1111-111111111111, "
            "22222222-2222-2222-2222-222222222222",
        ),
    ],
)
async def test_send_validation(
    client: httpx2.AsyncClient,
    db: Database,
    member: ApiUser,
    model: uuid.UUID,
    extra: dict[str, Any],
    message: str,
    detail: str | None,
) -> None:
    chat_id = await make_chat(db, member, model)
    await set_chat_columns(db, chat_id, status="waiting")
    r = await client.post(msgs(chat_id), json=body(**extra), headers=member.headers)
    assert r.status_code == 400
    expected = {"message": message} | ({"detail": detail} if detail else {})
    assert envelope(r) == expected
    assert len((await history(client, member, chat_id))["messages"]) == 1
    assert (await stored_chat(db, chat_id))["status"] == "waiting"


async def test_send_content_and_json_errors(
    client: httpx2.AsyncClient, db: Database, member: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, member, model)
    r = await client.post(msgs(chat_id), json={"content": []}, headers=member.headers)
    assert envelope(r) == {"message": "Content is required.", "detail": "Content cannot be empty."}
    r = await client.post(msgs(chat_id), json=body("  "), headers=member.headers)
    assert envelope(r) == {
        "message": "Invalid input part.",
        "detail": "content[0].text cannot be empty.",
    }
    r = await client.post(msgs(chat_id), content=b"{", headers={**member.headers, **JSON_HEADERS})
    assert r.status_code == 400
    assert envelope(r)["message"] == "Request body must be valid JSON."


async def test_plan_mode_and_mcp_server_ids_are_written(
    client: httpx2.AsyncClient, db: Database, member: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, member, model)
    await set_chat_columns(db, chat_id, status="waiting", mcp_server_ids=[str(uuid.uuid4())])
    start = (await stored_chat(db, chat_id))["updated_at"]
    db.clock = lambda: start + dt.timedelta(hours=1)
    r = await client.post(msgs(chat_id), json=body(plan_mode="plan"), headers=member.headers)
    assert r.status_code == 200
    row = await stored_chat(db, chat_id)
    assert row["plan_mode"] == "plan"
    await set_chat_columns(db, chat_id, status="waiting", updated_at=start)
    r = await client.post(msgs(chat_id), json=body(plan_mode=""), headers=member.headers)
    assert r.json()["queued"] is False
    assert (await stored_chat(db, chat_id))["plan_mode"] is None

    # Queued sends still write plan_mode (no updated_at bump) and mcp_server_ids (bump).
    await set_chat_columns(db, chat_id, status="running", updated_at=start)
    r = await client.post(msgs(chat_id), json=body(plan_mode="plan"), headers=member.headers)
    assert r.json()["queued"] is True
    row = await stored_chat(db, chat_id)
    assert row["plan_mode"] == "plan" and row["updated_at"] == start
    r = await client.post(msgs(chat_id), json=body(mcp_server_ids=[]), headers=member.headers)
    row = await stored_chat(db, chat_id)
    assert row["mcp_server_ids"] == [] and row["updated_at"] == start + dt.timedelta(hours=1)


async def test_send_falls_back_to_default_model(
    client: httpx2.AsyncClient, db: Database, member: ApiUser, model: uuid.UUID
) -> None:
    other = await seed_model_config(db, model="gpt-4o-mini", is_default=False)
    chat_id = await make_chat(db, member, other)
    await set_chat_columns(db, chat_id, status="waiting")
    r = await client.post(
        msgs(chat_id), json=body(model_config_id=str(model)), headers=member.headers
    )
    assert r.json()["message"]["model_config_id"] == str(model)
    assert (await stored_chat(db, chat_id))["last_model_config_id"] == model
    await set_chat_columns(db, chat_id, status="waiting")
    r = await client.post(msgs(chat_id), json=body(), headers=member.headers)
    assert r.json()["message"]["model_config_id"] == str(model)  # the chat's last model


async def test_owner_only_archived_and_unreadable(
    client: httpx2.AsyncClient,
    db: Database,
    api: Api,
    admin: ApiUser,
    member: ApiUser,
    model: uuid.UUID,
) -> None:
    chat_id = await make_chat(db, member, model)
    r = await client.post(msgs(chat_id), json=body(), headers=admin.headers)
    assert r.status_code == 403
    assert envelope(r) == {"message": "Only the chat owner may send messages."}
    stranger = await api.create_user("stranger")
    r = await client.post(msgs(chat_id), json=body(), headers=stranger.headers)
    assert r.status_code == 404
    await set_chat_columns(db, chat_id, status="waiting", archived=True)
    r = await client.post(msgs(chat_id), json=body(), headers=member.headers)
    assert r.status_code == 400
    assert envelope(r) == {"message": "Cannot send messages to an archived chat."}


async def test_send_links_file_parts(
    client: httpx2.AsyncClient, db: Database, member: ApiUser, model: uuid.UUID
) -> None:
    from chatd.store.tables import chat_file_links, chat_files

    file_id = uuid.uuid4()
    async with db.write() as conn:
        await conn.execute(
            chat_files.insert().values(
                id=file_id,
                owner_id=member.id,
                organization_id=member.org_id,
                created_at=db.now(),
                name="a.png",
                mimetype="image/png",
                data=b"\x89PNG",
            )
        )
    chat_id = await make_chat(db, member, model)
    r = await client.post(
        msgs(chat_id),
        json={"content": [{"type": "file", "file_id": str(file_id)}]},
        headers=member.headers,
    )
    assert r.status_code == 200 and "warnings" not in r.json()
    part = r.json()["queued_message"]["content"][0]
    assert part == {
        "type": "file",
        "file_id": str(file_id),
        "media_type": "image/png",
        "name": "a.png",
    }
    async with db.read() as conn:
        links = (await conn.execute(sa.select(chat_file_links.c.file_id))).scalars().all()
    assert links == [file_id]


# ---- queue delete ------------------------------------------------------------------------------


async def queue_two(client: httpx2.AsyncClient, member: ApiUser, chat_id: uuid.UUID) -> list[int]:
    ids = []
    for text in ("first", "second"):
        r = await client.post(msgs(chat_id), json=body(text), headers=member.headers)
        ids.append(r.json()["queued_message"]["id"])
    return ids


async def test_delete_queued(
    client: httpx2.AsyncClient, db: Database, hub: EventHub, member: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, member, model)
    first, second = await queue_two(client, member, chat_id)
    url = f"/api/experimental/chats/{chat_id}/queue"
    with hub.chat(chat_id) as sub:
        r = await client.delete(f"{url}/{first}", headers=member.headers)
        events = sub.drain()
    assert r.status_code == 204 and r.content == b""
    assert [q["id"] for q in (await history(client, member, chat_id))["queued_messages"]] == [
        second
    ]
    assert [e.type for e in events] == ["queue_update"]
    assert [q.id for q in events[0].queued_messages or []] == [second]

    r = await client.delete(f"{url}/987654", headers=member.headers)
    assert r.status_code == 204
    assert len((await history(client, member, chat_id))["queued_messages"]) == 1

    r = await client.delete(f"{url}/abc", headers=member.headers)
    assert envelope(r) == {
        "message": "Invalid queued message ID.",
        "detail": 'strconv.ParseInt: parsing "abc": invalid syntax',
    }


async def test_delete_queued_of_another_chat_is_a_no_op(
    client: httpx2.AsyncClient, db: Database, member: ApiUser, model: uuid.UUID
) -> None:
    chat_a = await make_chat(db, member, model)
    chat_b = await make_chat(db, member, model)
    (queued_a, _) = await queue_two(client, member, chat_a)
    r = await client.delete(
        f"/api/experimental/chats/{chat_b}/queue/{queued_a}", headers=member.headers
    )
    assert r.status_code == 204
    assert len((await history(client, member, chat_a))["queued_messages"]) == 2


# ---- promote -----------------------------------------------------------------------------------


def promote_url(chat_id: uuid.UUID, queued_id: int | str) -> str:
    return f"/api/experimental/chats/{chat_id}/queue/{queued_id}/promote"


async def test_promote_idle_chat_inserts_the_message(
    client: httpx2.AsyncClient, db: Database, hub: EventHub, member: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, member, model)
    first, second = await queue_two(client, member, chat_id)
    await set_chat_columns(db, chat_id, status="waiting")
    with hub.chat(chat_id) as sub, hub.owner(member.id) as watch:
        r = await client.post(promote_url(chat_id, second), headers=member.headers)
        events = sub.drain()
        watched = watch.drain()
    assert r.status_code == 200
    promoted = r.json()
    assert promoted["role"] == "user" and promoted["id"] > 0
    assert promoted["content"] == [{"type": "text", "text": "second"}]
    page = await history(client, member, chat_id)
    assert page["messages"][0]["id"] == promoted["id"]
    assert [q["id"] for q in page["queued_messages"]] == [first]
    assert (await stored_chat(db, chat_id))["status"] == "pending"
    assert [e.type for e in events] == ["queue_update", "message", "status"]
    assert [(w.kind, w.chat.status) for w in watched] == [("status_change", "pending")]


async def test_promote_running_chat_moves_to_front_and_stops_the_turn(
    client: httpx2.AsyncClient, db: Database, hub: EventHub, member: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, member, model)
    first, second = await queue_two(client, member, chat_id)
    await set_chat_columns(
        db, chat_id, status="running", worker_id=uuid.uuid4(), heartbeat_at=db.now()
    )
    before = await history(client, member, chat_id)
    with hub.chat(chat_id) as sub:
        r = await client.post(promote_url(chat_id, second), headers=member.headers)
        events = sub.drain()
    assert r.status_code == 200
    assert r.json()["id"] == 0
    assert r.json()["content"] == [{"type": "text", "text": "second"}]
    after = await history(client, member, chat_id)
    assert after["messages"] == before["messages"]
    assert [q["id"] for q in after["queued_messages"]] == [second, first]
    row = await stored_chat(db, chat_id)
    assert row["status"] == "waiting" and row["worker_id"] is None
    assert [e.type for e in events] == ["queue_update", "status"]
    async with db.read() as conn:
        times = dict(
            (
                await conn.execute(
                    sa.select(chat_queued_messages.c.id, chat_queued_messages.c.created_at)
                )
            ).all()
        )
    assert times[first] - times[second] == dt.timedelta(microseconds=1)


async def test_promote_requires_action_answers_pending_calls(
    client: httpx2.AsyncClient, db: Database, member: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, member, model)
    (queued, _) = await queue_two(client, member, chat_id)
    await set_chat_columns(
        db, chat_id, status="requires_action", dynamic_tools=[{"name": "ask", "input_schema": {}}]
    )
    async with db.write() as conn:
        await insert_message(
            conn,
            now=db.now(),
            chat_id=chat_id,
            role="assistant",
            content=parts_json(
                [
                    ChatMessagePart(
                        type=ChatMessagePartType.tool_call,
                        tool_call_id="c1",
                        tool_name="ask",
                        args={},
                    )
                ]
            ),
        )
    r = await client.post(promote_url(chat_id, queued), headers=member.headers)
    assert r.status_code == 200
    roles = [m["role"] for m in (await history(client, member, chat_id))["messages"]]
    assert roles[:3] == ["user", "tool", "assistant"]
    tool = (await history(client, member, chat_id))["messages"][1]["content"][0]
    assert tool["tool_call_id"] == "c1" and tool["is_error"] is True
    assert tool["result"] == {"error": "Tool execution interrupted by queued message promotion"}
    assert (await stored_chat(db, chat_id))["status"] == "pending"


async def test_promote_errors(
    client: httpx2.AsyncClient, db: Database, admin: ApiUser, member: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, member, model)
    (queued, _) = await queue_two(client, member, chat_id)
    r = await client.post(promote_url(chat_id, queued), headers=admin.headers)
    assert r.status_code == 403
    assert envelope(r) == {"message": "Only the chat owner may promote queued messages."}
    r = await client.post(promote_url(chat_id, "x"), headers=member.headers)
    assert r.status_code == 400
    assert envelope(r)["message"] == "Invalid queued message ID."
    r = await client.post(promote_url(chat_id, 424242), headers=member.headers)
    assert r.status_code == 404
    assert envelope(r) == {"message": "Queued message not found."}
    await set_chat_columns(db, chat_id, status="waiting", archived=True)
    r = await client.post(promote_url(chat_id, queued), headers=member.headers)
    assert r.status_code == 400
    assert envelope(r) == {"message": "Cannot promote queued messages in an archived chat."}
    assert len((await history(client, member, chat_id))["queued_messages"]) == 2


async def message_count(db: Database, chat_id: uuid.UUID) -> int:
    query = sa.select(sa.func.count()).where(chat_messages.c.chat_id == chat_id)
    async with db.read() as conn:
        return int((await conn.execute(query)).scalar_one())


async def test_a_client_that_hangs_up_while_sending_gets_a_400_and_changes_nothing(
    app: FastAPI, db: Database, member: ApiUser, model: uuid.UUID
) -> None:
    """Over the raw ASGI interface: the body never comes, the connection is gone."""
    chat_id = await make_chat(db, member, model)
    before = dict(await stored_chat(db, chat_id))
    messages_before = await message_count(db, chat_id)
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    path = msgs(chat_id)
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [
            (b"coder-session-token", member.token.encode()),
            (b"content-type", b"application/json"),
            (b"content-length", b"64"),
        ],
        "client": ("127.0.0.1", 40000),
        "server": ("127.0.0.1", 80),
    }
    await app(scope, receive, send)
    (start,) = [m for m in sent if m["type"] == "http.response.start"]
    assert start["status"] == 400
    assert dict(await stored_chat(db, chat_id)) == before
    assert await message_count(db, chat_id) == messages_before
