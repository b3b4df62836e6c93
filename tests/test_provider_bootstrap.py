"""Providers and model configs created on start from the environment."""

from __future__ import annotations

import asyncio

import pytest

from chatd.provider_bootstrap import bootstrap_providers
from chatd.settings import Settings
from chatd.store import model_configs as mq
from chatd.store import providers as pq
from chatd.store.db import Database
from tests.helpers import Api, ApiUser

pytestmark = pytest.mark.anyio


def env(
    *,
    openai_api_key: str = "",
    anthropic_api_key: str = "",
    openai_base_url: str = "",
    openai_model: str = "",
) -> Settings:
    """Settings with only the given provider variables (nothing read from the real env)."""
    return Settings(
        openai_api_key=openai_api_key,
        anthropic_api_key=anthropic_api_key,
        openai_base_url=openai_base_url,
        openai_model=openai_model,
    )


async def state(
    db: Database,
) -> tuple[list[tuple[str, str, str]], list[tuple[str, str, int, bool]]]:
    async with db.read() as conn:
        providers = [
            (r["provider"], pq.central_key(db.secrets, r), r["base_url"])
            for r in await pq.list_providers(conn)
        ]
        configs = [
            (r["provider"], r["model"], r["context_limit"], r["is_default"])
            for r in await mq.list_model_configs(conn)
        ]
    return providers, configs


async def test_nothing_configured_creates_nothing(db: Database) -> None:
    await bootstrap_providers(db, env())
    assert await state(db) == ([], [])


async def test_openai_and_anthropic_keys_twice(db: Database) -> None:
    settings = env(openai_api_key=" sk-openai ", anthropic_api_key="sk-ant")
    await bootstrap_providers(db, settings)
    await bootstrap_providers(db, settings)
    assert await state(db) == (
        [("anthropic", "sk-ant", ""), ("openai", "sk-openai", "")],
        [
            ("anthropic", "claude-sonnet-4-5", 200_000, False),
            ("openai", "gpt-4o", 128_000, True),
        ],
    )


async def test_two_replicas_starting_together_create_each_row_once(db: Database) -> None:
    other = Database(db.url, secrets=db.secrets)  # a second replica: its own engine and connections
    settings = env(openai_api_key="sk-openai", anthropic_api_key="sk-ant")
    try:
        await asyncio.gather(
            bootstrap_providers(db, settings), bootstrap_providers(other, settings)
        )
    finally:
        await other.close()
    providers, configs = await state(db)
    assert [p[0] for p in providers] == ["anthropic", "openai"]
    assert [(c[1], c[3]) for c in configs] == [("claude-sonnet-4-5", False), ("gpt-4o", True)]


async def test_openai_compat_takes_the_openai_key(db: Database) -> None:
    settings = env(
        openai_api_key="local-key",
        openai_base_url="http://127.0.0.1:11434/v1",
        openai_model="qwen2.5-coder:7b",
    )
    await bootstrap_providers(db, settings)
    await bootstrap_providers(db, settings)
    assert await state(db) == (
        [("openai-compat", "local-key", "http://127.0.0.1:11434/v1")],
        [("openai-compat", "qwen2.5-coder:7b", 32_768, True)],
    )


async def test_openai_compat_without_a_key_is_keyless(db: Database) -> None:
    await bootstrap_providers(db, env(openai_base_url="http://llm:8000/v1", openai_model="m"))
    assert await state(db) == (
        [("openai-compat", "", "http://llm:8000/v1")],
        [("openai-compat", "m", 32_768, True)],
    )


async def test_base_url_without_a_model_is_skipped(db: Database) -> None:
    await bootstrap_providers(db, env(openai_api_key="sk", openai_base_url="http://llm:8000/v1"))
    assert await state(db) == ([], [])


async def test_existing_rows_are_left_alone(db: Database) -> None:
    now = db.now()
    async with db.write() as conn:
        await pq.create_provider(
            conn, now, {"provider": "openai", "api_key": "admin-set"}, db.secrets
        )
    await bootstrap_providers(db, env(openai_api_key="from-env", anthropic_api_key="sk-ant"))
    assert await state(db) == (
        [("anthropic", "sk-ant", ""), ("openai", "admin-set", "")],
        [("anthropic", "claude-sonnet-4-5", 200_000, True)],
    )


async def test_bootstrapped_config_is_visible_through_the_api(
    db: Database, api: Api, admin: ApiUser, member: ApiUser
) -> None:
    await bootstrap_providers(db, env(anthropic_api_key="sk-ant"))
    r = await api.request("GET", "/api/experimental/chats/model-configs", member)
    assert [(c["model"], c["is_default"]) for c in r.json()] == [("claude-sonnet-4-5", True)]
    r = await api.request("GET", "/api/experimental/chats/models", member)
    assert r.json()["providers"][0]["models"][0]["id"] == "anthropic:claude-sonnet-4-5"
    providers = (await api.request("GET", "/api/experimental/chats/providers", admin)).json()
    anthropic = providers[0]
    assert (anthropic["source"], anthropic["has_api_key"]) == ("database", True)
