"""Request wrappers for the chat create/get/update tests."""

from __future__ import annotations

import uuid
from typing import Any

import httpx2
import sqlalchemy as sa

from chatd.store.db import Database
from chatd.store.tables import chats
from tests.helpers import Api, ApiUser, envelope

URL = "/api/experimental/chats"
NIL = "00000000-0000-0000-0000-000000000000"
NOT_FOUND = "Resource not found or you do not have access to this resource"


def body(user: ApiUser, text: str = "Fix the flaky test", **extra: Any) -> dict[str, Any]:
    """A create-chat body in the user's organization."""
    return {
        "organization_id": str(user.org_id),
        "content": [{"type": "text", "text": text}],
    } | extra


async def create(api: Api, user: ApiUser, **kwargs: Any) -> httpx2.Response:
    return await api.request("POST", URL, user, **kwargs)


async def expect_400(
    api: Api, user: ApiUser, payload: dict[str, Any], message: str, detail: str | None = None
) -> dict[str, Any]:
    """Create fails with 400 and this message (and detail, when given)."""
    r = await create(api, user, json=payload)
    assert r.status_code == 400, r.text
    err = envelope(r)
    assert err["message"] == message
    if detail is not None:
        assert err["detail"] == detail
    return err


async def count_chats(db: Database) -> int:
    async with db.read() as conn:
        return int((await conn.execute(sa.select(sa.func.count()).select_from(chats))).scalar_one())


async def get(api: Api, user: ApiUser, chat_id: uuid.UUID) -> dict[str, Any]:
    r = await api.request("GET", f"{URL}/{chat_id}", user)
    assert r.status_code == 200, r.text
    result: dict[str, Any] = r.json()
    return result


async def patch(
    api: Api, user: ApiUser, chat_id: uuid.UUID, payload: dict[str, Any]
) -> httpx2.Response:
    return await api.request("PATCH", f"{URL}/{chat_id}", user, json=payload)


async def patch_ok(api: Api, user: ApiUser, chat_id: uuid.UUID, payload: dict[str, Any]) -> None:
    r = await patch(api, user, chat_id, payload)
    assert r.status_code == 204, r.text
    assert r.content == b""


async def patch_400(
    api: Api, user: ApiUser, chat_id: uuid.UUID, payload: dict[str, Any], message: str
) -> dict[str, Any]:
    r = await patch(api, user, chat_id, payload)
    assert r.status_code == 400, r.text
    err = envelope(r)
    assert err["message"] == message
    return err
