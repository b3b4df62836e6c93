"""Editing messages, interrupting, and client tool results (api-behaviour §6.10, §6.13, §7)."""

from __future__ import annotations

import uuid
from typing import Any

import httpx2
import pytest
import sqlalchemy as sa

from chatd.events.hub import EventHub
from chatd.sdk.chats import ChatMessagePart, ChatMessagePartType, parts_json
from chatd.store.db import Database
from chatd.store.messages import insert_message
from chatd.store.tables import chat_messages
from tests.api.chat_helpers import set_chat_columns, stored_chat
from tests.helpers import ApiUser, envelope, make_chat, seed_model_config

pytestmark = pytest.mark.anyio


@pytest.fixture
async def model(db: Database) -> uuid.UUID:
    return await seed_model_config(db)


async def add(db: Database, chat_id: uuid.UUID, role: str, parts: list[ChatMessagePart]) -> int:
    async with db.write() as conn:
        message = await insert_message(
            conn, now=db.now(), chat_id=chat_id, role=role, content=parts_json(parts)
        )
    return message.id


def text(value: str) -> list[ChatMessagePart]:
    return [ChatMessagePart(type=ChatMessagePartType.text, text=value)]


def call(call_id: str, name: str) -> ChatMessagePart:
    return ChatMessagePart(
        type=ChatMessagePartType.tool_call, tool_call_id=call_id, tool_name=name, args={"q": 1}
    )


def result(call_id: str, name: str) -> ChatMessagePart:
    return ChatMessagePart(
        type=ChatMessagePartType.tool_result, tool_call_id=call_id, tool_name=name, result="ok"
    )


async def history(client: httpx2.AsyncClient, user: ApiUser, chat_id: uuid.UUID) -> dict[str, Any]:
    r = await client.get(
        f"/api/experimental/chats/{chat_id}/messages",
        params={"limit": "200"},
        headers=user.headers,
    )
    assert r.status_code == 200
    page: dict[str, Any] = r.json()
    page["messages"].reverse()  # oldest first
    return page


async def first_user_message(db: Database, chat_id: uuid.UUID) -> int:
    async with db.read() as conn:
        return int(
            (
                await conn.execute(
                    sa.select(chat_messages.c.id).where(
                        chat_messages.c.chat_id == chat_id, chat_messages.c.role == "user"
                    )
                )
            ).scalar_one()
        )


# ---- edit --------------------------------------------------------------------------------------


def edit_url(chat_id: uuid.UUID, message_id: int | str) -> str:
    return f"/api/experimental/chats/{chat_id}/messages/{message_id}"


async def test_edit_truncates_history_clears_queue_and_restarts(
    client: httpx2.AsyncClient, db: Database, hub: EventHub, member: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, member, model, "original")
    first = await first_user_message(db, chat_id)
    await add(db, chat_id, "assistant", text("answer"))
    second = await add(db, chat_id, "user", text("follow up"))
    await add(db, chat_id, "assistant", text("answer 2"))
    r = await client.post(
        f"/api/experimental/chats/{chat_id}/messages",
        json={"content": [{"type": "text", "text": "queued"}]},
        headers=member.headers,
    )
    assert r.json()["queued"] is True
    await set_chat_columns(
        db, chat_id, status="running", worker_id=uuid.uuid4(), last_error={"message": "x"}
    )

    with hub.chat(chat_id) as sub, hub.owner(member.id) as watch:
        r = await client.patch(
            edit_url(chat_id, second),
            json={"content": [{"type": "text", "text": "edited"}]},
            headers=member.headers,
        )
        events = sub.drain()
        watched = watch.drain()
    assert r.status_code == 200
    edited = r.json()["message"]
    assert edited["id"] > second
    assert edited["content"] == [{"type": "text", "text": "edited"}]
    assert edited["created_by"] == str(member.id)
    assert edited["model_config_id"] == str(model)

    page = await history(client, member, chat_id)
    assert [m["id"] for m in page["messages"]][0] == first
    assert [m["content"][0]["text"] for m in page["messages"]] == ["original", "answer", "edited"]
    assert page["queued_messages"] == []
    row = await stored_chat(db, chat_id)
    assert row["status"] == "pending"
    assert row["worker_id"] is None and row["last_error"] is None

    assert [e.type for e in events] == ["message", "message", "message", "queue_update", "status"]
    assert [e.message.id for e in events[:3] if e.message] == [m["id"] for m in page["messages"]]
    assert events[3].queued_messages == []
    assert [(w.kind, w.chat.status) for w in watched] == [("status_change", "pending")]


async def test_edit_first_message_with_other_model(
    client: httpx2.AsyncClient, db: Database, member: ApiUser, model: uuid.UUID
) -> None:
    other = await seed_model_config(db, model="gpt-4o-mini", is_default=False)
    chat_id = await make_chat(db, member, model)
    first = await first_user_message(db, chat_id)
    r = await client.patch(
        edit_url(chat_id, first),
        json={"content": [{"type": "text", "text": "x"}], "model_config_id": str(other)},
        headers=member.headers,
    )
    assert r.json()["message"]["model_config_id"] == str(other)
    assert (await stored_chat(db, chat_id))["last_model_config_id"] == other
    r = await client.patch(
        edit_url(chat_id, r.json()["message"]["id"]),
        json={"content": [{"type": "text", "text": "y"}], "model_config_id": str(uuid.uuid4())},
        headers=member.headers,
    )
    assert r.status_code == 400
    assert envelope(r) == {"message": "Invalid model config ID."}


async def test_edit_errors(
    client: httpx2.AsyncClient, db: Database, admin: ApiUser, member: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, member, model)
    other_chat = await make_chat(db, member, model)
    first = await first_user_message(db, chat_id)
    reply = await add(db, chat_id, "assistant", text("answer"))
    content = {"content": [{"type": "text", "text": "new"}]}

    r = await client.patch(edit_url(chat_id, first), json=content, headers=admin.headers)
    assert r.status_code == 403
    assert envelope(r) == {"message": "Only the chat owner may edit messages."}
    for bad in ("0", "-3", "abc", "99999999999999999999"):
        r = await client.patch(edit_url(chat_id, bad), json=content, headers=member.headers)
        assert envelope(r) == {
            "message": "Invalid chat message ID.",
            "detail": "Message ID must be a positive integer.",
        }
    r = await client.patch(edit_url(other_chat, first), json=content, headers=member.headers)
    assert r.status_code == 404
    assert envelope(r) == {
        "message": "Chat message not found.",
        "detail": "Message does not belong to this chat.",
    }
    r = await client.patch(edit_url(chat_id, reply), json=content, headers=member.headers)
    assert r.status_code == 400
    assert envelope(r) == {"message": "Only user messages can be edited."}
    r = await client.patch(edit_url(chat_id, first), json={"content": []}, headers=member.headers)
    assert envelope(r)["message"] == "Content is required."

    await set_chat_columns(db, chat_id, status="waiting", archived=True)
    r = await client.patch(edit_url(chat_id, first), json=content, headers=member.headers)
    assert r.status_code == 400
    assert envelope(r) == {"message": "Cannot edit messages in an archived chat."}
    page = await history(client, member, chat_id)
    assert [m["id"] for m in page["messages"]] == [first, reply]


async def test_edit_deleted_message_is_not_found(
    client: httpx2.AsyncClient, db: Database, member: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, member, model)
    first = await first_user_message(db, chat_id)
    content = {"content": [{"type": "text", "text": "new"}]}
    r = await client.patch(edit_url(chat_id, first), json=content, headers=member.headers)
    assert r.status_code == 200
    r = await client.patch(edit_url(chat_id, first), json=content, headers=member.headers)
    assert r.status_code == 404


# ---- interrupt ---------------------------------------------------------------------------------


def interrupt_url(chat_id: uuid.UUID) -> str:
    return f"/api/experimental/chats/{chat_id}/interrupt"


async def test_interrupt_running(
    client: httpx2.AsyncClient, db: Database, hub: EventHub, member: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, member, model)
    await set_chat_columns(
        db,
        chat_id,
        status="running",
        worker_id=uuid.uuid4(),
        started_at=db.now(),
        heartbeat_at=db.now(),
    )
    with hub.chat(chat_id) as sub, hub.owner(member.id) as watch:
        r = await client.post(interrupt_url(chat_id), headers=member.headers)
        events = sub.drain()
        watched = watch.drain()
    assert r.status_code == 200
    chat = r.json()
    assert chat["id"] == str(chat_id) and chat["status"] == "waiting"
    assert chat["children"] == [] and "diff_status" not in chat and "files" not in chat
    row = await stored_chat(db, chat_id)
    assert row["status"] == "waiting"
    assert row["worker_id"] is None and row["started_at"] is None and row["heartbeat_at"] is None
    assert [e.type for e in events] == ["status"]
    assert [(w.kind, w.chat.status) for w in watched] == [("status_change", "waiting")]


@pytest.mark.parametrize("status", ["pending", "waiting", "error"])
async def test_interrupt_leaves_other_statuses(
    client: httpx2.AsyncClient,
    db: Database,
    hub: EventHub,
    member: ApiUser,
    model: uuid.UUID,
    status: str,
) -> None:
    chat_id = await make_chat(db, member, model)
    await set_chat_columns(db, chat_id, status=status)
    with hub.chat(chat_id) as sub:
        r = await client.post(interrupt_url(chat_id), headers=member.headers)
        events = sub.drain()
    assert r.status_code == 200 and r.json()["status"] == status
    assert (await stored_chat(db, chat_id))["status"] == status
    assert events == []


async def test_interrupt_requires_action_answers_pending_calls(
    client: httpx2.AsyncClient, db: Database, hub: EventHub, member: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await requires_action_chat(db, member, model)
    with hub.chat(chat_id) as sub:
        r = await client.post(interrupt_url(chat_id), headers=member.headers)
        events = sub.drain()
    assert r.json()["status"] == "waiting"
    tools = [m for m in (await history(client, member, chat_id))["messages"] if m["role"] == "tool"]
    answered = {m["content"][0]["tool_call_id"]: m["content"][0] for m in tools}
    assert set(answered) == {"old", "done", "ls", "c1", "c2"}
    for call_id in ("c1", "c2"):
        assert answered[call_id]["is_error"] is True
        assert answered[call_id]["result"] == {"error": "Tool execution interrupted by user"}
    assert [e.type for e in events] == ["message", "message", "status"]


async def test_interrupt_by_a_reader_changes_nothing(
    client: httpx2.AsyncClient, db: Database, api: Any, member: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await make_chat(db, member, model)
    await set_chat_columns(db, chat_id, status="running", worker_id=uuid.uuid4())
    org_admin = await api.create_user("orgadmin")
    async with db.write() as conn:
        from chatd.store.tables import organization_members

        await conn.execute(
            organization_members.update()
            .where(organization_members.c.user_id == org_admin.id)
            .values(roles=["organization-admin"])
        )
    r = await client.post(interrupt_url(chat_id), headers=org_admin.headers)
    assert r.status_code == 200 and r.json()["status"] == "running"
    assert (await stored_chat(db, chat_id))["status"] == "running"


# ---- tool results ------------------------------------------------------------------------------


async def requires_action_chat(db: Database, owner: ApiUser, model: uuid.UUID) -> uuid.UUID:
    """A chat waiting on dynamic calls c1 and c2 ("done" is answered, "ls" is built in)."""
    chat_id = await make_chat(db, owner, model)
    tools = [{"name": "ask_user", "input_schema": {}}, {"name": "pick", "input_schema": {}}]
    await set_chat_columns(db, chat_id, status="requires_action", dynamic_tools=tools)
    await add(db, chat_id, "assistant", [call("old", "ask_user")])
    await add(db, chat_id, "tool", [result("old", "ask_user")])
    await add(
        db,
        chat_id,
        "assistant",
        [
            *text("let me ask"),
            call("done", "pick"),
            call("c1", "ask_user"),
            call("ls", "ls"),
            call("c2", "pick"),
        ],
    )
    await add(db, chat_id, "tool", [result("done", "pick")])
    await add(db, chat_id, "tool", [result("ls", "ls")])
    return chat_id


def results_url(chat_id: uuid.UUID) -> str:
    return f"/api/experimental/chats/{chat_id}/tool-results"


async def test_submit_tool_results(
    client: httpx2.AsyncClient, db: Database, hub: EventHub, member: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await requires_action_chat(db, member, model)
    hub.worker_wakeup.clear()
    payload = {
        "results": [
            {"tool_call_id": "c2", "output": {"choice": 2}},
            {"tool_call_id": "c1", "output": "no", "is_error": True},
        ]
    }
    with hub.chat(chat_id) as sub, hub.owner(member.id) as watch:
        r = await client.post(results_url(chat_id), json=payload, headers=member.headers)
        events = sub.drain()
        watched = watch.drain()
    assert r.status_code == 204 and r.content == b""
    messages = (await history(client, member, chat_id))["messages"]
    new = messages[-2:]
    assert [m["role"] for m in new] == ["tool", "tool"]
    assert [m["created_by"] for m in new] == [str(member.id)] * 2
    assert [m["model_config_id"] for m in new] == [str(model)] * 2
    parts = [m["content"][0] for m in new]
    assert parts[0]["type"] == "tool-result"
    assert (parts[0]["tool_call_id"], parts[0]["tool_name"], parts[0]["result"]) == (
        "c1",
        "ask_user",
        "no",
    )
    assert parts[0]["is_error"] is True
    assert (parts[1]["tool_call_id"], parts[1]["result"]) == ("c2", {"choice": 2})
    assert "is_error" not in parts[1]
    assert (await stored_chat(db, chat_id))["status"] == "pending"
    assert [e.type for e in events] == ["message", "message", "status"]
    assert [(w.kind, w.chat.status) for w in watched] == [("status_change", "pending")]
    assert hub.worker_wakeup.is_set()

    r = await client.post(results_url(chat_id), json=payload, headers=member.headers)
    assert r.status_code == 409
    assert envelope(r) == {"message": "Chat is not waiting for tool results."}


@pytest.mark.parametrize(
    ("results", "message", "detail"),
    [
        (
            [{"tool_call_id": "c1", "output": 1}, {"tool_call_id": "c1", "output": 2}],
            "Duplicate tool_call_id in results.",
            'Duplicate tool call ID "c1".',
        ),
        (
            [{"tool_call_id": "c1", "output": 1}],
            "Missing tool result.",
            'Missing result for tool call "c2".',
        ),
        (
            [
                {"tool_call_id": "c1", "output": 1},
                {"tool_call_id": "c2", "output": 2},
                {"tool_call_id": "done", "output": 3},
            ],
            "Unexpected tool result.",
            'No pending tool call with ID "done".',
        ),
        (
            [{"tool_call_id": "c1", "output": 1}, {"tool_call_id": "c2"}],
            "Tool result output must be valid JSON.",
            'Output for tool call "c2" is missing.',
        ),
    ],
)
async def test_tool_results_must_match_pending_calls(
    client: httpx2.AsyncClient,
    db: Database,
    member: ApiUser,
    model: uuid.UUID,
    results: list[dict[str, Any]],
    message: str,
    detail: str,
) -> None:
    chat_id = await requires_action_chat(db, member, model)
    before = await history(client, member, chat_id)
    r = await client.post(results_url(chat_id), json={"results": results}, headers=member.headers)
    assert r.status_code == 400
    assert envelope(r) == {"message": message, "detail": detail}
    assert await history(client, member, chat_id) == before
    assert (await stored_chat(db, chat_id))["status"] == "requires_action"


async def test_null_output_is_valid(
    client: httpx2.AsyncClient, db: Database, member: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await requires_action_chat(db, member, model)
    payload = {
        "results": [{"tool_call_id": "c1", "output": None}, {"tool_call_id": "c2", "output": []}]
    }
    r = await client.post(results_url(chat_id), json=payload, headers=member.headers)
    assert r.status_code == 204


async def test_tool_results_request_errors(
    client: httpx2.AsyncClient, db: Database, admin: ApiUser, member: ApiUser, model: uuid.UUID
) -> None:
    chat_id = await requires_action_chat(db, member, model)
    payload = {
        "results": [{"tool_call_id": "c1", "output": 1}, {"tool_call_id": "c2", "output": 2}]
    }
    r = await client.post(results_url(chat_id), json=payload, headers=admin.headers)
    assert r.status_code == 403
    assert envelope(r) == {"message": "Only the chat owner may submit tool results."}
    for empty in ({}, {"results": []}):
        r = await client.post(results_url(chat_id), json=empty, headers=member.headers)
        assert r.status_code == 400
        assert envelope(r) == {"message": "At least one tool result is required."}
    big = {"results": [{"tool_call_id": "c1", "output": "x" * (256 * 1024)}]}
    r = await client.post(results_url(chat_id), json=big, headers=member.headers)
    assert r.status_code == 400
    assert envelope(r)["message"] == "Request body must be valid JSON."
    await set_chat_columns(db, chat_id, status="requires_action", archived=True)
    r = await client.post(results_url(chat_id), json=payload, headers=member.headers)
    assert r.status_code == 400
    assert envelope(r) == {"message": "Cannot submit tool results to an archived chat."}
