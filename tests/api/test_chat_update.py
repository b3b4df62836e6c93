"""PATCH /api/experimental/chats/{chat}: title, labels, plan mode, pins and workspace."""

from __future__ import annotations

import uuid

import pytest
from fastapi import FastAPI

from chatd.store.db import Database
from tests.api.chat_helpers import (
    StepClock,
    add_to_org,
    insert_org,
    insert_workspace,
    make_child,
    set_chat_columns,
    stored_chat,
)
from tests.api.chat_requests import (
    URL,
    get,
    patch_400,
    patch_ok,
)
from tests.helpers import JSON_HEADERS, Api, ApiUser, envelope, make_chat

pytestmark = pytest.mark.anyio


# --- PATCH: title, labels, plan mode ------------------------------------------------------


async def test_rename(
    api: Api, app: FastAPI, member: ApiUser, model_id: uuid.UUID, db: Database, clock: StepClock
) -> None:
    chat_id = await make_chat(db, member, model_id)
    before = await get(api, member, chat_id)
    clock.advance()
    with app.state.hub.owner(member.id) as sub:
        await patch_ok(api, member, chat_id, {"title": "  Better title  "})
        events = sub.drain()
    after = await get(api, member, chat_id)
    assert after["title"] == "Better title"
    assert after["updated_at"] == before["updated_at"]
    assert [(e.kind.value, e.chat.title) for e in events] == [("title_change", "Better title")]

    # The same title again changes nothing and publishes nothing.
    with app.state.hub.owner(member.id) as sub:
        await patch_ok(api, member, chat_id, {"title": "Better title"})
        assert sub.drain() == []

    await patch_400(api, member, chat_id, {"title": "   "}, "Title cannot be empty.")
    await patch_400(
        api, member, chat_id, {"title": "é" * 201}, "Title must be at most 200 characters."
    )
    await patch_ok(api, member, chat_id, {"title": "é" * 200})
    assert (await get(api, member, chat_id))["title"] == "é" * 200


async def test_labels(
    api: Api, member: ApiUser, model_id: uuid.UUID, db: Database, clock: StepClock
) -> None:
    chat_id = await make_chat(db, member, model_id)
    await patch_ok(api, member, chat_id, {"labels": {"a": "1", "b": "2"}})
    await patch_ok(api, member, chat_id, {"labels": {"c": "3"}})
    chat = await get(api, member, chat_id)
    assert chat["labels"] == {"c": "3"}

    bumped = clock.advance()
    await patch_ok(api, member, chat_id, {"labels": {}})
    chat = await get(api, member, chat_id)
    assert chat["labels"] == {}
    assert chat["updated_at"] == bumped.isoformat().replace("+00:00", "Z")

    err = await patch_400(api, member, chat_id, {"labels": {"-x": ""}}, "Invalid labels.")
    assert [v["field"] for v in err["validations"]] == ["labels", "labels"]
    # A null map means "no change".
    await patch_ok(api, member, chat_id, {"labels": None})
    assert (await get(api, member, chat_id))["labels"] == {}


async def test_plan_mode(
    api: Api, member: ApiUser, model_id: uuid.UUID, db: Database, clock: StepClock
) -> None:
    chat_id = await make_chat(db, member, model_id)
    before = await get(api, member, chat_id)
    clock.advance()
    # plan_mode is validated before anything is written.
    await patch_400(
        api, member, chat_id, {"title": "renamed", "plan_mode": "build"}, "Invalid plan_mode value."
    )
    assert (await get(api, member, chat_id))["title"] == before["title"]

    await patch_ok(api, member, chat_id, {"plan_mode": "plan"})
    chat = await get(api, member, chat_id)
    assert chat["plan_mode"] == "plan"
    assert chat["updated_at"] == before["updated_at"]
    await patch_ok(api, member, chat_id, {"plan_mode": ""})
    assert "plan_mode" not in await get(api, member, chat_id)
    assert (await stored_chat(db, chat_id))["plan_mode"] is None


async def test_earlier_steps_stick_when_a_later_one_fails(
    api: Api, member: ApiUser, model_id: uuid.UUID, db: Database
) -> None:
    chat_id = await make_chat(db, member, model_id)
    await patch_400(api, member, chat_id, {"title": "kept", "labels": {"": "x"}}, "Invalid labels.")
    assert (await get(api, member, chat_id))["title"] == "kept"
    await patch_400(
        api,
        member,
        chat_id,
        {"labels": {"k": "v"}, "pin_order": -1},
        "Pin order must be non-negative.",
    )
    assert (await get(api, member, chat_id))["labels"] == {"k": "v"}


async def test_malformed_patch_bodies(
    api: Api, member: ApiUser, model_id: uuid.UUID, db: Database
) -> None:
    chat_id = await make_chat(db, member, model_id)
    for payload in (b"{", b'{"archived": "maybe"}', b'{"pin_order": 2147483648}'):
        r = await api.request(
            "PATCH", f"{URL}/{chat_id}", member, content=payload, headers=JSON_HEADERS
        )
        assert r.status_code == 400, payload
        assert envelope(r)["message"] == "Request body must be valid JSON."
    await patch_ok(api, member, chat_id, {"unknown": 1})


# --- PATCH: pins -------------------------------------------------------------------------


async def pins(api: Api, user: ApiUser, *chat_ids: uuid.UUID) -> list[int]:
    return [(await get(api, user, c))["pin_order"] for c in chat_ids]


async def test_pin_numbering(
    api: Api, member: ApiUser, model_id: uuid.UUID, db: Database, clock: StepClock
) -> None:
    a, b, c, d = [await make_chat(db, member, model_id, t) for t in "abcd"]
    other = await api.create_user("other")
    theirs = await make_chat(db, other, model_id, "theirs")
    await patch_ok(api, other, theirs, {"pin_order": 1})
    before = await get(api, member, a)
    clock.advance()

    # Pinning appends; the requested value is ignored.
    await patch_ok(api, member, a, {"pin_order": 5})
    await patch_ok(api, member, b, {"pin_order": 1})
    await patch_ok(api, member, c, {"pin_order": 1})
    assert await pins(api, member, a, b, c, d) == [1, 2, 3, 0]
    assert (await get(api, member, a))["updated_at"] == before["updated_at"]

    # Moving an already pinned chat shifts its neighbours; the target is clamped to 1..n.
    await patch_ok(api, member, c, {"pin_order": 1})
    assert await pins(api, member, a, b, c) == [2, 3, 1]
    await patch_ok(api, member, c, {"pin_order": 99})
    assert await pins(api, member, a, b, c) == [1, 2, 3]
    await patch_ok(api, member, b, {"pin_order": 2})
    assert await pins(api, member, a, b, c) == [1, 2, 3]

    # Unpinning renumbers the rest densely.
    await patch_ok(api, member, a, {"pin_order": 0})
    assert await pins(api, member, a, b, c) == [0, 1, 2]
    await patch_ok(api, member, d, {"pin_order": 0})
    await patch_ok(api, member, d, {"pin_order": 1})
    assert await pins(api, member, a, b, c, d) == [0, 1, 2, 3]
    # Another owner's numbering is separate.
    assert await pins(api, other, theirs) == [1]

    await patch_400(api, member, a, {"pin_order": -1}, "Pin order must be non-negative.")


async def test_pin_rules(api: Api, member: ApiUser, model_id: uuid.UUID, db: Database) -> None:
    root = await make_chat(db, member, model_id)
    child = await make_child(db, member, model_id, root)
    await patch_400(api, member, child, {"pin_order": 1}, "Cannot pin a child chat.")
    await patch_ok(api, member, child, {"pin_order": 0})

    # Archive runs before the pin step, so the pin sees an archived chat.
    await patch_400(
        api, member, root, {"archived": True, "pin_order": 1}, "Cannot pin an archived chat."
    )
    assert (await stored_chat(db, root))["archived"] is True
    assert (await get(api, member, root))["pin_order"] == 0


# --- PATCH: workspace --------------------------------------------------------------------


async def test_workspace_binding(
    api: Api, member: ApiUser, model_id: uuid.UUID, db: Database, clock: StepClock
) -> None:
    chat_id = await make_chat(db, member, model_id)
    workspace = await insert_workspace(db, member.id, member.org_id)
    await set_chat_columns(db, chat_id, build_id=uuid.uuid4(), agent_id=uuid.uuid4())

    bound_at = clock.advance()
    await patch_ok(api, member, chat_id, {"workspace_id": str(workspace)})
    row = await stored_chat(db, chat_id)
    assert row["workspace_id"] == workspace
    assert row["build_id"] is None
    assert row["agent_id"] is None
    assert row["updated_at"] == bound_at
    assert (await get(api, member, chat_id))["workspace_id"] == str(workspace)

    unbound_at = clock.advance()
    await patch_ok(api, member, chat_id, {"workspace_id": str(uuid.UUID(int=0))})
    row = await stored_chat(db, chat_id)
    assert row["workspace_id"] is None
    assert row["updated_at"] == unbound_at
    assert "workspace_id" not in await get(api, member, chat_id)

    not_found = "Workspace not found or you do not have access to this resource"
    await patch_400(api, member, chat_id, {"workspace_id": str(uuid.uuid4())}, not_found)
    other = await api.create_user("other")
    theirs = await insert_workspace(db, other.id, other.org_id)
    await patch_400(api, member, chat_id, {"workspace_id": str(theirs)}, not_found)
    elsewhere_org = await insert_org(db, "elsewhere")
    await add_to_org(db, member, elsewhere_org)
    elsewhere = await insert_workspace(db, member.id, elsewhere_org)
    await patch_400(
        api,
        member,
        chat_id,
        {"workspace_id": str(elsewhere)},
        "Workspace does not belong to this chat's organization.",
    )
    assert (await stored_chat(db, chat_id))["workspace_id"] is None
