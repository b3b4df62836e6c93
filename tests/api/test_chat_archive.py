"""PATCH /api/experimental/chats/{chat} with archived: the family cascade and its events."""

from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI

from chatd.store.db import Database
from tests.api.chat_helpers import (
    StepClock,
    make_child,
    set_chat_columns,
    stored_chat,
)
from tests.api.chat_requests import (
    get,
    patch_400,
    patch_ok,
)
from tests.helpers import Api, ApiUser, make_chat

pytestmark = pytest.mark.anyio


async def test_archive_cascades_over_the_family(
    api: Api, app: FastAPI, member: ApiUser, model_id: uuid.UUID, db: Database, clock: StepClock
) -> None:
    root = await make_chat(db, member, model_id, "root")
    clock.advance()
    running = await make_child(db, member, model_id, root, title="running")
    clock.advance()
    idle = await make_child(db, member, model_id, root, title="idle")
    await set_chat_columns(
        db,
        running,
        status="running",
        worker_id=uuid.uuid4(),
        started_at=clock.now(),
        heartbeat_at=clock.now(),
        last_error={"message": "old"},
    )
    await set_chat_columns(db, idle, status="error", last_error={"message": "boom"})
    await patch_ok(api, member, root, {"pin_order": 1})
    unrelated = await make_chat(db, member, model_id, "unrelated")

    archived_at = clock.advance()
    hub = app.state.hub
    with (
        hub.owner(member.id) as watch,
        hub.chat(root) as root_stream,
        hub.chat(running) as child_stream,
        hub.chat(idle) as idle_stream,
    ):
        await patch_ok(api, member, root, {"archived": True})
        events = watch.drain()
        streams = (root_stream.drain(), child_stream.drain(), idle_stream.drain())

    for chat_id, status in [(root, "waiting"), (running, "waiting"), (idle, "error")]:
        row = await stored_chat(db, chat_id)
        assert row["archived"] is True
        assert row["status"] == status
        assert row["pin_order"] == 0
        assert row["updated_at"] == archived_at
    running_row = await stored_chat(db, running)
    assert running_row["worker_id"] is None
    assert running_row["started_at"] is None
    assert running_row["heartbeat_at"] is None
    assert running_row["last_error"] is None
    assert (await stored_chat(db, idle))["last_error"] == {"message": "boom"}
    assert (await stored_chat(db, unrelated))["archived"] is False

    kinds = [(e.kind.value, e.chat.id) for e in events]
    assert kinds == [
        ("status_change", root),
        ("status_change", running),
        ("deleted", root),
        ("deleted", running),
        ("deleted", idle),
    ]
    assert all(e.chat.archived for e in events)
    assert [(e.type.value, e.status.status.value) for e in streams[0] if e.status] == [
        ("status", "waiting")
    ]
    assert [e.type.value for e in streams[1]] == ["status"]
    assert streams[2] == []

    await patch_400(api, member, root, {"archived": True}, "Chat is already archived.")
    await patch_400(
        api,
        member,
        running,
        {"archived": False},
        "Cannot unarchive a child chat while its parent is archived. "
        "Unarchive the parent chat to cascade.",
    )

    unarchived_at = clock.advance()
    with hub.owner(member.id) as watch:
        await patch_ok(api, member, root, {"archived": False})
        events = watch.drain()
    assert [(e.kind.value, e.chat.id) for e in events] == [
        ("created", root),
        ("created", running),
        ("created", idle),
    ]
    for chat_id in (root, running, idle):
        row = await stored_chat(db, chat_id)
        assert row["archived"] is False
        assert row["updated_at"] == unarchived_at
    assert (await get(api, member, root))["pin_order"] == 0
    await patch_400(api, member, root, {"archived": False}, "Chat is already not archived.")


async def test_a_child_alone(
    api: Api, app: FastAPI, member: ApiUser, model_id: uuid.UUID, db: Database
) -> None:
    root = await make_chat(db, member, model_id, "root")
    child = await make_child(db, member, model_id, root)
    sibling = await make_child(db, member, model_id, root)
    with app.state.hub.owner(member.id) as watch:
        await patch_ok(api, member, child, {"archived": True})
        events = watch.drain()
    # The child is pending (as created), so it stops too; its sibling and parent are untouched.
    assert [(e.kind.value, e.chat.id) for e in events] == [
        ("status_change", child),
        ("deleted", child),
    ]
    assert (await stored_chat(db, child))["archived"] is True
    assert (await stored_chat(db, sibling))["archived"] is False
    assert (await stored_chat(db, root))["archived"] is False
    assert (await stored_chat(db, root))["status"] == "pending"
    await patch_ok(api, member, child, {"archived": False})
    assert (await stored_chat(db, child))["archived"] is False
