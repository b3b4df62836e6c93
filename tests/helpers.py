"""Helpers for API tests: users with tokens, and short request wrappers."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import httpx2
import sqlalchemy as sa

from chatd.bootstrap import create_first_user
from chatd.secretbox import SecretBox
from chatd.settings import Settings
from chatd.store.db import Database
from chatd.store.tables import chat_providers

# Raw bodies (``content=``) are sent without a Content-Type; JSON routes need this one.
JSON_HEADERS = {"Content-Type": "application/json"}
# The key the tests' databases seal provider keys with (any 32 bytes do).
TEST_SECRET_KEY = bytes(range(32))
TEST_SECRETS = SecretBox(TEST_SECRET_KEY)


@dataclass(frozen=True)
class ApiUser:
    id: uuid.UUID
    username: str
    token: str
    org_id: uuid.UUID

    @property
    def headers(self) -> dict[str, str]:
        return {"Coder-Session-Token": self.token}


async def bootstrap_admin(db: Database, settings: Settings) -> ApiUser:
    first = await create_first_user(db, settings)
    assert first is not None
    async with db.read() as conn:
        from chatd.store import users as q

        user = await q.get_user_by_login(conn, first.email)
        org = await q.get_default_org(conn)
    assert user is not None and org is not None
    return ApiUser(id=user.id, username=user.username, token=first.token, org_id=org)


class Api:
    """A client plus the first admin; creates more users on demand."""

    def __init__(self, client: httpx2.AsyncClient, admin: ApiUser) -> None:
        self.client = client
        self.admin = admin

    async def create_user(self, username: str, password: str = "password-123") -> ApiUser:
        r = await self.client.post(
            "/api/v2/users",
            headers=self.admin.headers,
            json={"email": f"{username}@example.com", "username": username, "password": password},
        )
        assert r.status_code == 201, r.text
        user_id = uuid.UUID(r.json()["id"])
        r = await self.client.post(
            "/api/v2/users/login",
            json={"email": f"{username}@example.com", "password": password},
        )
        assert r.status_code == 201, r.text
        return ApiUser(
            id=user_id, username=username, token=r.json()["session_token"], org_id=self.admin.org_id
        )

    async def request(
        self,
        method: str,
        url: str,
        user: ApiUser,
        headers: dict[str, str] | None = None,
        **kwargs: Any,
    ) -> httpx2.Response:
        return await self.client.request(
            method, url, headers={**user.headers, **(headers or {})}, **kwargs
        )


def envelope(response: httpx2.Response) -> dict[str, Any]:
    """The error body, checked to be the reference envelope."""
    body = response.json()
    assert isinstance(body, dict)
    assert isinstance(body.get("message"), str)
    assert set(body) <= {
        "message",
        "detail",
        "validations",
        "spent_micros",
        "limit_micros",
        "resets_at",
    }
    return body


async def seed_model_config(
    db: Database, *, provider: str = "openai", model: str = "gpt-4o", is_default: bool = True
) -> uuid.UUID:
    """A provider (with a key) and an enabled model config, straight into the store."""
    from chatd.store import model_configs as mq
    from chatd.store import providers as pq

    now = db.now()
    async with db.write() as conn:
        existing = await conn.execute(
            sa.select(chat_providers.c.id).where(chat_providers.c.provider == provider)
        )
        if existing.first() is None:
            await pq.create_provider(
                conn, now, {"provider": provider, "api_key": "sk-test"}, db.secrets
            )
        return await mq.insert_model_config(
            conn,
            provider=provider,
            model=model,
            is_default=is_default,
            context_limit=128000,
            created_at=now,
            updated_at=now,
        )


async def make_chat(
    db: Database,
    owner: ApiUser,
    model_config_id: uuid.UUID,
    text: str = "hello there",
    *,
    parent: uuid.UUID | None = None,
    root: uuid.UUID | None = None,
) -> uuid.UUID:
    """A pending chat with one user message, created through the store (not the API); a
    sub-agent chat when ``parent`` (and ``root``) are given."""
    from chatd.sdk.chats import ChatMessagePart, ChatMessagePartType
    from chatd.store.chat_create import NewChat, create_chat

    async with db.write() as conn:
        chat, _ = await create_chat(
            conn,
            db.now(),
            NewChat(
                owner_id=owner.id,
                organization_id=owner.org_id,
                title=text,
                model_config_id=model_config_id,
                content=[ChatMessagePart(type=ChatMessagePartType.text, text=text)],
                system_prompts=["system"],
                parent_chat_id=parent,
                root_chat_id=root,
            ),
        )
    return chat.id
