"""Short generations on a cheap model: titles and turn labels (engine-behaviour §15.1, §15.3).

Candidates, in order: the cheap model of each configured provider the chat owner can use
(Anthropic's, then OpenAI's), then the chat's own model. The first candidate that answers with
usable text wins; each gets the retry policy of §7 inside one timeout.
"""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import structlog

from chatd.engine.models import (
    ClientFactory,
    ModelChoice,
    ResolvedModel,
    build_model,
    choose_model,
    usable_key,
)
from chatd.engine.retry import RetryPolicy, Sleep, retry
from chatd.engine.types import TurnContext
from chatd.llm.errors import classify
from chatd.llm.types import (
    CallOptions,
    ClassifiedError,
    Message,
    ModelClient,
    ModelRequest,
    ProviderError,
)
from chatd.settings import Settings
from chatd.store.db import Database
from chatd.store.providers import list_providers
from chatd.store.sql import Connection

log = structlog.get_logger(__name__)

# The preferred small model per provider; openai-compat has no known one (its chat model is used).
CHEAP_MODELS = {"anthropic": "claude-haiku-4-5", "openai": "gpt-4o-mini"}
TIMEOUT = 30.0


class GenerationFailed(Exception):
    """No candidate model produced usable text."""


@dataclass(frozen=True)
class QuickGen:
    """What a short generation needs, with the seams tests replace."""

    db: Database
    settings: Settings
    client_factory: ClientFactory | None = None  # None: chatd.llm.factory.create_client
    sleep: Sleep = asyncio.sleep
    timeout: float = TIMEOUT

    @classmethod
    def for_turn(cls, ctx: TurnContext) -> QuickGen:
        return cls(ctx.db, ctx.settings, ctx.client_factory, ctx.sleep)

    def build_client(
        self, *, provider: str, model: str, api_key: str, base_url: str | None
    ) -> ModelClient:
        if self.client_factory is not None:
            return self.client_factory(
                provider=provider, model=model, api_key=api_key, base_url=base_url
            )
        from chatd.llm.factory import create_client  # the SDKs load on first use

        return create_client(provider=provider, model=model, api_key=api_key, base_url=base_url)


@dataclass(frozen=True)
class _Candidate:
    provider: str
    model: str
    client: ModelClient
    options: CallOptions


@dataclass(frozen=True)
class Choices:
    """What the candidates are made from, as read from the database (no client is built yet).

    ``own`` is the chat's own model: the turn's (a :class:`ResolvedModel`) when the chat still
    names it, else read with the rest only when it is the sole candidate (None: read when the
    cheap models have all failed).
    """

    providers: Mapping[str, Mapping[Any, Any]]
    keys: dict[str, str | None]
    own: ResolvedModel | ModelChoice | ProviderError | None


async def read_choices(
    conn: Connection,
    gen: QuickGen,
    chat: Mapping[Any, Any],
    turn_model: ResolvedModel | None = None,
) -> Choices:
    """The reads behind the candidates, in the caller's transaction (only statements are
    awaited: it may run in a transaction function).

    ``turn_model``: the model the chat's turn resolved as it started. When the chat still names
    that config, it is the chat's own model and is not read again: a provider or key changed
    since the turn started is then seen by the next turn's summary.
    """
    providers = {row["provider"]: row for row in await list_providers(conn, enabled_only=True)}
    keys = {
        name: await _cheap_key(conn, gen, row, chat["owner_id"])
        for name, row in providers.items()
        if name in CHEAP_MODELS
    }
    own: ResolvedModel | ModelChoice | ProviderError | None = None
    if turn_model is not None and turn_model.config_id == chat["last_model_config_id"]:
        own = turn_model
    elif not any(keys.values()):  # the only candidate: read it now
        own = await _own_choice(conn, gen, chat)
    return Choices(providers, keys, own)


async def _cheap_key(
    conn: Connection, gen: QuickGen, row: Mapping[Any, Any], owner_id: uuid.UUID
) -> str | None:
    """The key for a cheap model of ``row``'s provider (None: the owner has none usable)."""
    try:
        return await usable_key(conn, row, owner_id, gen.db.secrets)
    except ProviderError as exc:
        log.info("quick model unavailable", provider=row["provider"], error=str(exc))
        return None


def _own_client(
    gen: QuickGen, own: ResolvedModel | ModelChoice
) -> ResolvedModel | ProviderError:
    """The chat's own model with a client of its own (the turn's is the turn's to close)."""
    try:
        if isinstance(own, ModelChoice):
            return build_model(own, gen.client_factory)
        client = gen.build_client(
            provider=own.provider, model=own.model, api_key=own.api_key, base_url=own.base_url
        )
    except ProviderError as exc:
        return exc
    return dataclasses.replace(own, client=client)


async def generate_short(
    gen: QuickGen,
    chat: Mapping[Any, Any],
    messages: list[Message],
    *,
    max_output_tokens: int,
    clean: Callable[[str], str],
    choices: Choices | None = None,
) -> str:
    """The first candidate's answer that ``clean`` leaves non-empty.

    ``choices``: read by the caller with its other reads (None: read here).
    """
    if choices is None:
        choices = await gen.db.run_read(read_choices, gen, chat)
    tried: set[tuple[str, str]] = set()
    async for candidate in _candidates(gen, chat, choices):
        if (candidate.provider, candidate.model) in tried:
            continue
        tried.add((candidate.provider, candidate.model))
        request = ModelRequest(
            model=candidate.model,
            messages=messages,
            options=dataclasses.replace(candidate.options, max_output_tokens=max_output_tokens),
            allow_tools=False,
        )
        try:
            async with asyncio.timeout(gen.timeout):
                text = await _generate(gen, candidate, request)
        except (ProviderError, TimeoutError) as exc:
            log.info("quick generation failed", model=candidate.model, error=str(exc))
            continue
        cleaned = clean(text)
        if cleaned:
            return cleaned
    raise GenerationFailed


async def _generate(gen: QuickGen, candidate: _Candidate, request: ModelRequest) -> str:
    def classified(exc: BaseException) -> ClassifiedError:
        if isinstance(exc, ProviderError):
            return exc.error
        return classify(exc, candidate.provider)

    result = await retry(
        lambda: candidate.client.generate(request),
        policy=RetryPolicy.from_settings(gen.settings),
        classify=classified,
        on_retry=lambda attempt, error, delay: None,
        sleep=gen.sleep,
    )
    return result.text


async def _candidates(
    gen: QuickGen, chat: Mapping[Any, Any], choices: Choices
) -> AsyncIterator[_Candidate]:
    own = choices.own
    for provider, model in CHEAP_MODELS.items():
        key = choices.keys.get(provider)
        if not key:
            continue
        try:
            client = gen.build_client(
                provider=provider,
                model=model,
                api_key=key,
                base_url=choices.providers[provider]["base_url"] or None,
            )
        except ProviderError as exc:
            log.info("quick model unavailable", model=model, error=str(exc))
            continue
        yield _Candidate(provider, model, client, CallOptions())
    if own is None:
        own = await gen.db.run_read(_own_choice, gen, chat)
    resolved = own if isinstance(own, ProviderError) else _own_client(gen, own)
    if isinstance(resolved, ProviderError):
        log.info("chat model unavailable", error=str(resolved))
        return
    yield _Candidate(resolved.provider, resolved.model, resolved.client, resolved.options)


async def _own_choice(
    conn: Connection, gen: QuickGen, chat: Mapping[Any, Any]
) -> ModelChoice | ProviderError:
    try:
        return await choose_model(
            conn, chat["last_model_config_id"], chat["owner_id"], secrets=gen.db.secrets
        )
    except ProviderError as exc:
        return exc
