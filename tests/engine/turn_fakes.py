"""A scripted ModelClient and a ready TurnContext for the turn tests (no real providers)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from chatd.engine.types import TurnContext
from chatd.events.hub import EventHub
from chatd.llm.types import (
    ClassifiedError,
    Finish,
    Generated,
    ModelRequest,
    ProviderError,
    StreamPart,
    TextDelta,
    Usage,
)
from chatd.sdk.chats import ChatErrorKind, ChatMessagePart, ChatMessagePartType, parts_json
from chatd.sdk.events import ChatStreamEvent
from chatd.settings import Settings
from chatd.store.db import Database
from chatd.store.messages import insert_message
from chatd.store.tables import chat_messages, chats
from chatd.tools.registry import ToolRegistry
from tests.helpers import ApiUser, bootstrap_admin, make_chat, seed_model_config


@dataclass
class Stall:
    """Stop streaming here: set ``reached`` and wait forever (until cancelled)."""

    reached: asyncio.Event = field(default_factory=asyncio.Event)


Script = list[StreamPart | Stall | BaseException]


class ScriptedClient:
    """Each ``stream`` call plays the next script; an exception item is raised there."""

    provider = "openai"

    def __init__(self, *scripts: Script) -> None:
        self.scripts = list(scripts)
        self.requests: list[ModelRequest] = []

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamPart]:
        self.requests.append(request)
        script = self.scripts.pop(0) if self.scripts else reply("(script exhausted)")
        for item in script:
            if isinstance(item, Stall):
                item.reached.set()
                await asyncio.Event().wait()
            elif isinstance(item, BaseException):
                raise item
            else:
                yield item

    async def generate(self, request: ModelRequest) -> Generated:
        raise NotImplementedError


def reply(text: str, usage: Usage | None = None, response_id: str | None = None) -> Script:
    half = len(text) // 2
    return [
        TextDelta(text[:half]),
        TextDelta(text[half:]),
        Finish("stop", usage or Usage(), response_id),
    ]


def fault(kind: ChatErrorKind, retryable: bool, **extra: Any) -> ProviderError:
    return ProviderError(
        ClassifiedError(
            kind=kind, retryable=retryable, message=f"{kind} happened", provider="openai", **extra
        )
    )


@dataclass
class Harness:
    db: Database
    ctx: TurnContext
    client: ScriptedClient
    owner: ApiUser
    config_id: uuid.UUID
    factory_calls: list[dict[str, Any]]

    @property
    def hub(self) -> EventHub:
        return self.ctx.hub

    async def say(self, text: str) -> None:
        """The owner's next message, stored as a send would (the chat stays as it is)."""
        async with self.db.write() as conn:
            await insert_message(
                conn,
                now=self.db.now(),
                chat_id=self.ctx.chat_id,
                role="user",
                content=parts_json([ChatMessagePart(type=ChatMessagePartType.text, text=text)]),
                created_by=self.owner.id,
            )

    async def rows(self, role: str | None = None) -> list[dict[str, Any]]:
        query = (
            sa.select(chat_messages)
            .where(chat_messages.c.chat_id == self.ctx.chat_id, chat_messages.c.deleted.is_(False))
            .order_by(chat_messages.c.id)
        )
        if role is not None:
            query = query.where(chat_messages.c.role == role)
        async with self.db.read() as conn:
            return [r.as_dict() for r in await conn.execute(query)]


async def harness(
    db: Database,
    settings: Settings,
    client: ScriptedClient,
    *,
    tools: ToolRegistry | None = None,
    dynamic_tools: list[dict[str, Any]] | None = None,
    options: dict[str, Any] | None = None,
    sleep: Callable[[float], Any] | None = None,
    **overrides: Any,
) -> Harness:
    """A running chat owned by this worker, a hub with its turn started, and a ctx."""
    owner = await bootstrap_admin(db, settings)
    config_id = await seed_model_config(db)
    chat_id = await make_chat(db, owner, config_id)
    worker_id = uuid.uuid4()
    async with db.write() as conn:
        await conn.execute(
            chats.update()
            .where(chats.c.id == chat_id)
            .values(status="running", worker_id=worker_id, dynamic_tools=dynamic_tools)
        )
        if options is not None:
            from chatd.store.tables import chat_model_configs

            await conn.execute(
                chat_model_configs.update()
                .where(chat_model_configs.c.id == config_id)
                .values(options=options)
            )
    hub = EventHub()
    hub.start_turn(chat_id)
    calls: list[dict[str, Any]] = []

    def factory(**kwargs: Any) -> ScriptedClient:
        calls.append(kwargs)
        return client

    async def no_sleep(_: float) -> None:
        return None

    ctx = TurnContext(
        chat_id=chat_id,
        worker_id=worker_id,
        db=db,
        hub=hub,
        settings=settings.model_copy(update=overrides),
        tools=tools or ToolRegistry(),
        client_factory=factory,
        sleep=sleep or no_sleep,
    )
    return Harness(db, ctx, client, owner, config_id, calls)


def payloads(events: list[ChatStreamEvent]) -> list[tuple[str, Any]]:
    """(type, the interesting part) of each event, for order assertions."""
    out: list[tuple[str, Any]] = []
    for e in events:
        if e.message_part is not None:
            part = e.message_part.part
            out.append((f"part:{e.message_part.role}", part.model_dump(mode="json")))
        elif e.message is not None:
            out.append(("message", e.message.role.value))
        elif e.retry is not None:
            out.append(("retry", e.retry.attempt))
        else:
            out.append((e.type.value, None))
    return out
