"""Fake model clients for titles, turn summaries and compaction (``generate`` only)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from chatd.engine.titles import title_from_text
from chatd.engine.types import TurnContext
from chatd.events.hub import EventHub
from chatd.llm.types import (
    ClassifiedError,
    Generated,
    ModelClient,
    ModelRequest,
    ProviderError,
    StreamPart,
)
from chatd.sdk.chats import ChatErrorKind
from chatd.settings import Settings
from chatd.store.db import Database
from chatd.store.tables import chats
from tests.helpers import ApiUser, bootstrap_admin, make_chat, seed_model_config


class Hang:
    """Answer never (until cancelled)."""


# An answer: text, text with usage, an exception to raise, a hang, or a callback run first.
Answer = str | Generated | BaseException | Hang | Callable[[], Awaitable[str]]


class FakeModel:
    """``generate`` plays its answers in order; the last one repeats."""

    def __init__(self, provider: str, *answers: Answer) -> None:
        self.provider = provider
        self.answers = list(answers)
        self.requests: list[ModelRequest] = []

    async def generate(self, request: ModelRequest) -> Generated:
        self.requests.append(request)
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, Hang):
            await asyncio.Event().wait()
            raise AssertionError("unreachable")
        if isinstance(answer, BaseException):
            raise answer
        if isinstance(answer, Generated):
            return answer
        if isinstance(answer, str):
            return Generated(answer)
        return Generated(await answer())

    async def stream(self, request: ModelRequest) -> AsyncIterator[StreamPart]:
        raise NotImplementedError
        yield  # pragma: no cover  (makes this an async generator)


def failure(retryable: bool = False, kind: ChatErrorKind = ChatErrorKind.generic) -> ProviderError:
    return ProviderError(ClassifiedError(kind=kind, retryable=retryable, message=f"{kind} failed"))


class Factory:
    """A ``client_factory``: the fake registered for the model asked for, else a config error."""

    def __init__(self, **models: FakeModel) -> None:
        self.models = {name.replace("_", "-"): fake for name, fake in models.items()}
        self.calls: list[dict[str, Any]] = []

    def __call__(
        self, *, provider: str, model: str, api_key: str, base_url: str | None = None
    ) -> ModelClient:
        self.calls.append(
            {"provider": provider, "model": model, "api_key": api_key, "base_url": base_url}
        )
        if model not in self.models:
            raise ProviderError(
                ClassifiedError(kind=ChatErrorKind.config, retryable=False, message="no model")
            )
        return self.models[model]

    @property
    def models_built(self) -> list[str]:
        return [c["model"] for c in self.calls]


async def no_sleep(_: float) -> None:
    return None


@dataclass
class Setup:
    db: Database
    owner: ApiUser
    config_id: uuid.UUID
    chat_id: uuid.UUID
    hub: EventHub

    def ctx(self, settings: Settings, factory: Factory, worker_id: uuid.UUID) -> TurnContext:
        return TurnContext(
            chat_id=self.chat_id,
            worker_id=worker_id,
            db=self.db,
            hub=self.hub,
            settings=settings,
            client_factory=factory,
            sleep=no_sleep,
        )

    async def chat(self) -> dict[str, Any]:
        async with self.db.read() as conn:
            row = (await conn.execute(sa.select(chats).where(chats.c.id == self.chat_id))).one()
        return row.as_dict()

    async def set(self, **values: Any) -> None:
        async with self.db.write() as conn:
            await conn.execute(chats.update().where(chats.c.id == self.chat_id).values(**values))


async def setup(
    db: Database, settings: Settings, text: str = "Please fix the flaky login test in CI"
) -> Setup:
    """An admin's waiting chat on openai ``gpt-4o`` with one user message and its fallback
    title."""
    owner = await bootstrap_admin(db, settings)
    config_id = await seed_model_config(db)
    chat_id = await make_chat(db, owner, config_id, text)
    found = Setup(db, owner, config_id, chat_id, EventHub())
    await found.set(title=title_from_text(text), status="waiting")
    return found
