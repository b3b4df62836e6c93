"""POST /chats/{chat}/title/regenerate and /title/propose, and PATCH title during a regeneration.

api-behaviour §5.7, §6.8 step 2, §6.18 and §7; the model is a fake installed as the app's
``client_factory``.
"""

from __future__ import annotations

import uuid
from typing import Any

import anyio
import httpx2
import pytest
from fastapi import FastAPI

from chatd.sdk.chats import ChatMessagePart, ChatMessagePartType, parts_json
from chatd.store.db import Database
from chatd.store.messages import insert_message
from chatd.store.titles import REGENERATION_WORKER_ID
from tests.api.chat_helpers import StepClock, make_org_admin, set_chat_columns, stored_chat
from tests.api.chat_requests import NOT_FOUND, URL, get, patch
from tests.engine.quickgen_fakes import Factory, FakeModel, failure
from tests.helpers import Api, ApiUser, envelope, make_chat

pytestmark = pytest.mark.anyio

BUSY = "Title regeneration already in progress for this chat."


@pytest.fixture
def cheap(app: FastAPI) -> FakeModel:
    model = FakeModel("openai", '"Regenerated title"')
    app.state.client_factory = Factory(gpt_4o_mini=model)
    return model


async def waiting_chat(db: Database, owner: ApiUser, model_id: uuid.UUID) -> uuid.UUID:
    chat_id = await make_chat(db, owner, model_id, "Fix the flaky login test")
    await set_chat_columns(db, chat_id, status="waiting")
    async with db.write() as conn:
        await insert_message(
            conn,
            now=db.now(),
            chat_id=chat_id,
            role="assistant",
            content=parts_json([ChatMessagePart(type=ChatMessagePartType.text, text="Done.")]),
        )
    return chat_id


async def post(api: Api, user: ApiUser, chat_id: uuid.UUID | str, action: str) -> httpx2.Response:
    return await api.request("POST", f"{URL}/{chat_id}/title/{action}", user)


async def expect(r: httpx2.Response, status: int, message: str) -> None:
    assert r.status_code == status, r.text
    assert envelope(r)["message"] == message


async def test_regenerate_saves_the_title(
    api: Api,
    app: FastAPI,
    member: ApiUser,
    model_id: uuid.UUID,
    db: Database,
    cheap: FakeModel,
    clock: StepClock,
) -> None:
    chat_id = await waiting_chat(db, member, model_id)
    before = await get(api, member, chat_id)
    clock.advance()
    with app.state.hub.owner(member.id) as sub:
        r = await post(api, member, chat_id, "regenerate")
        events = sub.drain()
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["title"] == "Regenerated title"
    assert body["children"] == [] and "diff_status" not in body and "files" not in body
    assert body["updated_at"] == before["updated_at"]
    assert [(e.kind.value, e.chat.title) for e in events] == [("title_change", body["title"])]
    row = await stored_chat(db, chat_id)
    assert row["title"] == "Regenerated title"
    assert row["worker_id"] is None and row["heartbeat_at"] is None  # the mark is released
    [request] = cheap.requests
    prompt = str(request.messages[1])
    assert "Primary objective" in prompt and "Fix the flaky login test" in prompt
    assert "Agent: Done." in prompt

    # The same title again: no event.
    with app.state.hub.owner(member.id) as sub:
        r = await post(api, member, chat_id, "regenerate")
        assert r.status_code == 200 and sub.drain() == []


@pytest.mark.parametrize("action", ["regenerate", "propose"])
async def test_who_may_ask(
    api: Api,
    admin: ApiUser,
    member: ApiUser,
    model_id: uuid.UUID,
    db: Database,
    cheap: FakeModel,
    action: str,
) -> None:
    chat_id = await waiting_chat(db, member, model_id)
    stranger = await api.create_user("stranger")
    await expect(await post(api, stranger, chat_id, action), 404, NOT_FOUND)
    org_admin = await api.create_user("orgadmin")
    await make_org_admin(db, org_admin)
    await expect(await post(api, org_admin, chat_id, action), 404, NOT_FOUND)
    await expect(
        await post(api, admin, chat_id, action),
        403,
        "Only the chat owner may regenerate the title.",
    )
    await expect(await post(api, member, uuid.uuid4(), action), 404, NOT_FOUND)
    r = await post(api, member, "not-a-uuid", action)
    assert r.status_code == 400
    assert cheap.requests == []


@pytest.mark.parametrize("action", ["regenerate", "propose"])
@pytest.mark.parametrize(
    "state",
    [
        {"status": "pending"},
        {"status": "running"},
        {"status": "running", "worker_id": REGENERATION_WORKER_ID},
    ],
)
async def test_busy_chats_are_refused(
    api: Api,
    member: ApiUser,
    model_id: uuid.UUID,
    db: Database,
    cheap: FakeModel,
    action: str,
    state: dict[str, Any],
) -> None:
    chat_id = await waiting_chat(db, member, model_id)
    await set_chat_columns(db, chat_id, heartbeat_at=db.now(), **state)
    await expect(await post(api, member, chat_id, action), 409, BUSY)
    assert cheap.requests == []


async def test_a_running_chat_with_a_worker_proceeds_without_a_mark(
    api: Api, member: ApiUser, model_id: uuid.UUID, db: Database, cheap: FakeModel
) -> None:
    chat_id = await waiting_chat(db, member, model_id)
    worker = uuid.uuid4()
    await set_chat_columns(db, chat_id, status="running", worker_id=worker, heartbeat_at=db.now())
    r = await post(api, member, chat_id, "regenerate")
    assert r.status_code == 200 and r.json()["title"] == "Regenerated title"
    row = await stored_chat(db, chat_id)
    assert (row["status"], row["worker_id"]) == ("running", worker)


async def test_the_mark_blocks_for_one_minute(
    api: Api,
    member: ApiUser,
    model_id: uuid.UUID,
    db: Database,
    cheap: FakeModel,
    clock: StepClock,
) -> None:
    """A second regeneration and a rename are refused while the first holds the chat."""
    chat_id = await waiting_chat(db, member, model_id)
    original = (await stored_chat(db, chat_id))["title"]
    refusals: list[httpx2.Response] = []

    async def meanwhile() -> str:
        refusals.append(await post(api, member, chat_id, "regenerate"))
        refusals.append(await post(api, member, chat_id, "propose"))
        refusals.append(await patch(api, member, chat_id, {"title": "Renamed meanwhile"}))
        return "Regenerated title"

    cheap.answers = [meanwhile]
    with anyio.fail_after(10):
        r = await post(api, member, chat_id, "regenerate")
    assert r.status_code == 200, r.text
    for refused in refusals:
        await expect(refused, 409, BUSY)
    assert (await stored_chat(db, chat_id))["title"] == "Regenerated title" != original

    # A mark left behind by a crashed regeneration goes stale after a minute.
    await set_chat_columns(db, chat_id, worker_id=REGENERATION_WORKER_ID, heartbeat_at=db.now())
    clock.advance(59)
    await expect(await patch(api, member, chat_id, {"title": "Too early"}), 409, BUSY)
    await expect(await post(api, member, chat_id, "regenerate"), 409, BUSY)
    clock.advance(2)
    r = await patch(api, member, chat_id, {"title": "Renamed later"})
    assert r.status_code == 204, r.text
    # An unchanged title is a no-op even while marked.
    await set_chat_columns(db, chat_id, heartbeat_at=db.now())
    assert (await patch(api, member, chat_id, {"title": "Renamed later"})).status_code == 204
    clock.advance(61)
    cheap.answers = ["After the stale mark"]
    r = await post(api, member, chat_id, "regenerate")
    assert r.status_code == 200 and r.json()["title"] == "After the stale mark"
    assert (await stored_chat(db, chat_id))["worker_id"] is None


async def test_failed_generation_releases_the_mark(
    api: Api, app: FastAPI, member: ApiUser, model_id: uuid.UUID, db: Database
) -> None:
    chat_id = await waiting_chat(db, member, model_id)
    app.state.client_factory = Factory(
        gpt_4o_mini=FakeModel("openai", failure()), gpt_4o=FakeModel("openai", failure())
    )
    await expect(
        await post(api, member, chat_id, "regenerate"), 500, "Failed to regenerate chat title."
    )
    await expect(await post(api, member, chat_id, "propose"), 500, "Failed to generate chat title.")
    row = await stored_chat(db, chat_id)
    assert row["worker_id"] is None and row["title"] == "Fix the flaky login test"


async def test_propose_does_not_save(
    api: Api, app: FastAPI, member: ApiUser, model_id: uuid.UUID, db: Database, cheap: FakeModel
) -> None:
    chat_id = await waiting_chat(db, member, model_id)
    with app.state.hub.owner(member.id) as sub:
        r = await post(api, member, chat_id, "propose")
        assert sub.drain() == []
    assert r.status_code == 200, r.text
    assert r.json() == {"title": "Regenerated title"}
    row = await stored_chat(db, chat_id)
    assert row["title"] == "Fix the flaky login test" and row["worker_id"] is None


async def test_a_chat_without_text_keeps_its_title(
    api: Api, member: ApiUser, model_id: uuid.UUID, db: Database, cheap: FakeModel
) -> None:
    chat_id = await make_chat(db, member, model_id, "")
    await set_chat_columns(db, chat_id, status="waiting", title="New Chat")
    r = await post(api, member, chat_id, "regenerate")
    assert r.status_code == 200 and r.json()["title"] == "New Chat"
    r = await post(api, member, chat_id, "propose")
    assert r.status_code == 200 and r.json() == {"title": "New Chat"}
    assert cheap.requests == []
