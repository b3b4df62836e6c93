"""Support for the cross-site tests: real ids for every path parameter, the app's routes,
and a snapshot of every table to show that a refused request changed nothing."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx2
import sqlalchemy as sa
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts

from chatd import accounts
from chatd.api.app import create_app
from chatd.llm.errors import config_error
from chatd.llm.types import ProviderError
from chatd.settings import Settings
from chatd.store.db import Database
from chatd.store.tables import (
    chat_messages,
    chat_providers,
    chat_queued_messages,
    metadata,
    templates,
)
from tests.helpers import Api, ApiUser, make_chat, seed_model_config

CHATS = "/api/experimental/chats"
FOREIGN = "https://evil.example"
SAFE = {"GET", "HEAD", "OPTIONS"}


def cookie(user: ApiUser) -> dict[str, str]:
    return {"Cookie": f"coder_session_token={user.token}"}


@asynccontextmanager
async def running(settings: Settings, db: Database) -> AsyncIterator[FastAPI]:
    """An app with these settings, its lifespan running."""
    application = create_app(settings, db)
    async with application.router.lifespan_context(application):
        yield application


@asynccontextmanager
async def jarless(app: FastAPI) -> AsyncIterator[httpx2.AsyncClient]:
    """A client that sends only the cookies a test gives it (no jar filled by logins)."""
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


def offline(app: FastAPI) -> None:
    """Model calls (title routes) fail at once instead of dialling a provider."""

    def no_client(*, provider: str, model: str, api_key: str, base_url: str | None) -> Any:
        raise ProviderError(config_error(provider, "no network in these tests"))

    app.state.client_factory = no_client


def unsafe_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path template) of the app that may change something."""
    found = [
        (method, context.path)
        for context in iter_route_contexts(app.routes)
        for method in sorted(context.methods or ())
        if method not in SAFE and context.path is not None
    ]
    assert len(found) > 20, found  # the walk sees the routers' routes, not just the app's own
    return found


def websocket_routes(app: FastAPI) -> list[str]:
    return [
        context.path
        for context in iter_route_contexts(app.routes)
        if context.methods is None and context.path is not None
    ]


def json_body_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path template) whose OpenAPI operation takes an application/json body."""
    found = []
    for path, item in app.openapi()["paths"].items():
        for method, operation in item.items():
            content = operation.get("requestBody", {}).get("content", {})
            schema = content.get("application/json", {}).get("schema", {})
            if "$ref" in schema:  # a JSON document, not raw bytes that may be a JSON file
                found.append((method.upper(), path))
    return found


@dataclass(frozen=True)
class World:
    """The admin with a chat (one message, one queued), a provider, a model, a spare token."""

    admin: ApiUser
    ids: dict[str, str]  # path parameter name -> a real id the admin may act on

    def path(self, template: str) -> str:
        path = template
        for name, value in self.ids.items():
            path = path.replace("{" + name + "}", value)
        # A parameter this map does not know yet still gets a well-formed id.
        while "{" in path:
            start = path.index("{")
            path = path[:start] + str(uuid.uuid4()) + path[path.index("}", start) + 1 :]
        return path

    def body(self, method: str, template: str) -> dict[str, Any]:
        """A body the route would accept, where it is easy to say; else ``{}``."""
        text = [{"type": "text", "text": "from another site"}]
        bodies: dict[tuple[str, str], dict[str, Any]] = {
            ("POST", "/api/v2/users/login"): {
                "email": "admin@example.com",
                "password": "correct-horse-battery",
            },
            ("POST", "/api/v2/users"): {
                "email": "eve@example.com",
                "username": "eve",
                "password": "password-123",
            },
            ("POST", "/api/v2/users/{user}/keys/tokens"): {"token_name": "stolen"},
            ("POST", CHATS): {"organization_id": str(self.admin.org_id), "content": text},
            ("PATCH", CHATS + "/{chat}"): {"archived": True, "title": "renamed"},
            ("POST", CHATS + "/{chat}/messages"): {"content": text},
            ("PATCH", CHATS + "/{chat}/messages/{message}"): {"content": text},
        }
        return bodies.get((method, template), {})


async def build_world(api: Api, db: Database) -> World:
    admin = api.admin
    model_id = await seed_model_config(db)
    chat_id = await make_chat(db, admin, model_id)
    r = await api.request(
        "POST",
        f"{CHATS}/{chat_id}/messages",
        admin,
        json={"content": [{"type": "text", "text": "q"}]},
    )
    assert r.status_code == 200 and r.json()["queued"] is True, r.text
    r = await api.request(
        "POST", "/api/v2/users/me/keys/tokens", admin, json={"token_name": "spare"}
    )
    assert r.status_code == 201, r.text
    key_id = r.json()["key"].split("-", 1)[0]
    async with db.read() as conn:
        message_id = (
            await conn.execute(
                sa.select(chat_messages.c.id).where(chat_messages.c.chat_id == chat_id).limit(1)
            )
        ).scalar_one()
        queued_id = (
            await conn.execute(
                sa.select(chat_queued_messages.c.id).where(
                    chat_queued_messages.c.chat_id == chat_id
                )
            )
        ).scalar_one()
        provider_id = (
            await conn.execute(
                sa.select(chat_providers.c.id).where(chat_providers.c.provider == "openai")
            )
        ).scalar_one()
        template_id = (
            await conn.execute(sa.select(templates.c.id).where(templates.c.name == "scratch"))
        ).scalar_one()
    ids = {
        "provider_id": str(provider_id),
        "chat": str(chat_id),
        "message": str(message_id),
        "queuedMessage": str(queued_id),
        "model_config_id": str(model_id),
        "user": str(admin.id),
        "keyid": key_id,
        "organization": str(admin.org_id),
        "template": str(template_id),
    }
    return World(admin=admin, ids=ids)


async def fresh_token(db: Database, user: ApiUser) -> str:
    """Another token of ``user``, so a request that logs out or deletes keys spends only it."""
    async with db.write() as conn:
        return await accounts.issue_token(
            conn,
            now=db.now(),
            user_id=user.id,
            login_type="token",
            lifetime=dt.timedelta(hours=1),
        )


async def snapshot(db: Database) -> dict[str, list[str]]:
    """Every row of every table, as sortable text: equal snapshots mean nothing changed."""
    rows: dict[str, list[str]] = {}
    async with db.read() as conn:
        for table in metadata.sorted_tables:
            result = await conn.execute(sa.select(table))
            rows[table.name] = sorted(repr(tuple(row)) for row in result)
    return rows
