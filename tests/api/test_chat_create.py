"""POST /api/experimental/chats: the created chat, its stored rows, files and events."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from chatd.prompts import DEFAULT_SYSTEM_PROMPT, NO_WORKSPACE, WORKSPACE_ATTACHED
from chatd.store.db import Database
from chatd.store.tables import chat_file_links, chat_messages, chats
from tests.api.chat_helpers import (
    StepClock,
    insert_file,
    insert_workspace,
)
from tests.api.chat_requests import (
    URL,
    body,
    create,
)
from tests.helpers import Api, ApiUser, seed_model_config

pytestmark = pytest.mark.anyio


async def stored_messages(db: Database, chat_id: str) -> list[dict[str, Any]]:
    async with db.read() as conn:
        rows = await conn.execute(
            sa.select(chat_messages)
            .where(chat_messages.c.chat_id == uuid.UUID(chat_id))
            .order_by(chat_messages.c.id)
        )
        return [r.as_dict() for r in rows]


async def test_created_chat_shape(
    api: Api, member: ApiUser, model_id: uuid.UUID, db: Database
) -> None:
    StepClock(db)
    r = await create(api, member, json=body(member))
    assert r.status_code == 201, r.text
    chat = r.json()
    assert set(chat) == {
        "id",
        "organization_id",
        "owner_id",
        "owner_name",
        "owner_username",
        "root_chat_id",
        "last_model_config_id",
        "title",
        "status",
        "last_turn_summary",
        "created_at",
        "updated_at",
        "archived",
        "pin_order",
        "mcp_server_ids",
        "labels",
        "has_unread",
        "client_type",
        "children",
    }
    assert chat["root_chat_id"] == chat["id"]
    assert chat["organization_id"] == str(member.org_id)
    assert chat["owner_id"] == str(member.id)
    assert chat["owner_username"] == "member"
    assert chat["last_model_config_id"] == str(model_id)
    assert chat["title"] == "Fix the flaky test"
    assert chat["status"] == "pending"
    assert chat["last_turn_summary"] is None
    assert chat["archived"] is False
    assert chat["pin_order"] == 0
    assert chat["mcp_server_ids"] == []
    assert chat["labels"] == {}
    assert chat["has_unread"] is False
    assert chat["client_type"] == "api"
    assert chat["children"] == []
    assert chat["created_at"] == chat["updated_at"]

    r = await api.request("GET", f"{URL}/{chat['id']}", member)
    assert r.status_code == 200
    assert r.json() == chat


@pytest.mark.parametrize(
    ("text", "title"),
    [
        ("  one two three four five six  ", "one two three four five six"),
        ("one two three four five six seven", "one two three four five six…"),
        ("a\n\tb", "a b"),
        ("x" * 100, "x" * 80),
        ("w" * 70 + " b c d e f g", ("w" * 70 + " b c d e f")[:80]),
    ],
    ids=["six-words", "ellipsis", "whitespace", "rune-cap", "cap-after-ellipsis"],
)
async def test_title_from_first_message(
    api: Api, member: ApiUser, model_id: uuid.UUID, text: str, title: str
) -> None:
    r = await create(api, member, json=body(member, text))
    assert r.status_code == 201, r.text
    assert r.json()["title"] == title


async def test_title_from_file_reference(api: Api, member: ApiUser, model_id: uuid.UUID) -> None:
    payload = body(member)
    payload["content"] = [
        {"type": "FILE-REFERENCE ", "file_name": "main.go", "start_line": 3, "end_line": 3}
    ]
    r = await create(api, member, json=payload)
    assert r.status_code == 201, r.text
    assert r.json()["title"] == "[file-reference] main.go:3"


async def test_stored_rows(api: Api, member: ApiUser, model_id: uuid.UUID, db: Database) -> None:
    r = await create(api, member, json=body(member, "  hello  ", system_prompt=" Be\u200b terse. "))
    assert r.status_code == 201, r.text
    chat_id = r.json()["id"]
    rows = await stored_messages(db, chat_id)
    assert [(m["role"], m["visibility"]) for m in rows] == [
        ("system", "model"),
        ("system", "model"),
        ("system", "model"),
        ("user", "both"),
    ]
    texts = [m["content"][0]["text"] for m in rows]
    assert texts == [DEFAULT_SYSTEM_PROMPT, "Be terse.", NO_WORKSPACE, "hello"]
    assert all(m["model_config_id"] == model_id for m in rows)
    assert rows[-1]["created_by"] == member.id
    assert rows[0]["created_by"] is None

    # A prompt that is empty once sanitised adds no row; a workspace changes the note.
    workspace_id = await insert_workspace(db, member.id, member.org_id)
    r = await create(
        api,
        member,
        json=body(member, system_prompt="\u200b ", workspace_id=str(workspace_id)),
    )
    assert r.status_code == 201, r.text
    assert r.json()["workspace_id"] == str(workspace_id)
    rows = await stored_messages(db, r.json()["id"])
    texts = [m["content"][0]["text"] for m in rows]
    assert texts == [DEFAULT_SYSTEM_PROMPT, WORKSPACE_ATTACHED, "Fix the flaky test"]


async def test_options_are_stored(
    api: Api, member: ApiUser, model_id: uuid.UUID, db: Database
) -> None:
    other = await seed_model_config(db, model="gpt-4.1", is_default=False)
    r = await create(
        api,
        member,
        json=body(
            member,
            model_config_id=str(other),
            labels={"team": "infra", "env/x": "prod"},
            plan_mode="plan",
            client_type="ui",
            unsafe_dynamic_tools=[
                {"name": "pick", "description": "Pick one", "input_schema": {"type": "object"}}
            ],
            mcp_server_ids=[],
        ),
    )
    assert r.status_code == 201, r.text
    chat = r.json()
    assert chat["last_model_config_id"] == str(other)
    assert chat["labels"] == {"team": "infra", "env/x": "prod"}
    assert chat["plan_mode"] == "plan"
    assert chat["client_type"] == "ui"
    async with db.read() as conn:
        tools = (
            await conn.execute(
                sa.select(chats.c.dynamic_tools).where(chats.c.id == uuid.UUID(chat["id"]))
            )
        ).scalar_one()
    assert tools == [
        {"name": "pick", "description": "Pick one", "input_schema": {"type": "object"}}
    ]


async def test_created_event_is_published(
    api: Api, app: FastAPI, member: ApiUser, model_id: uuid.UUID
) -> None:
    with app.state.hub.owner(member.id) as sub:
        r = await create(api, member, json=body(member))
        events = sub.drain()
    assert r.status_code == 201
    assert [(e.kind.value, str(e.chat.id)) for e in events] == [("created", r.json()["id"])]
    assert app.state.hub.worker_wakeup.is_set()


async def test_file_parts_link_files(
    api: Api, member: ApiUser, model_id: uuid.UUID, db: Database
) -> None:
    file_id = await insert_file(db, member, name="shot.png")
    payload = body(member)
    payload["content"].append({"type": "file", "file_id": str(file_id)})
    r = await create(api, member, json=payload)
    assert r.status_code == 201, r.text
    chat = r.json()
    assert "warnings" not in chat
    assert [f["id"] for f in chat["files"]] == [str(file_id)]
    assert chat["files"][0]["mime_type"] == "image/png"
    assert chat["files"][0]["name"] == "shot.png"
    user_row = (await stored_messages(db, chat["id"]))[-1]
    assert user_row["content"][1] == {
        "type": "file",
        "file_id": str(file_id),
        "media_type": "image/png",
        "name": "shot.png",
    }
    r = await api.request("GET", f"{URL}/{chat['id']}", member)
    assert r.json()["files"] == chat["files"]


async def test_too_many_files_is_a_warning(
    api: Api, member: ApiUser, model_id: uuid.UUID, db: Database
) -> None:
    payload = body(member)
    for i in range(21):
        file_id = await insert_file(db, member, name=f"{i}.png")
        payload["content"].append({"type": "file", "file_id": str(file_id)})
    r = await create(api, member, json=payload)
    assert r.status_code == 201, r.text
    chat = r.json()
    assert chat["warnings"] == [
        "file linking skipped: batch of 21 file(s) would exceed limit of 20"
    ]
    assert "files" not in chat
    async with db.read() as conn:
        links = await conn.execute(
            sa.select(chat_file_links).where(chat_file_links.c.chat_id == uuid.UUID(chat["id"]))
        )
        assert links.all() == []
