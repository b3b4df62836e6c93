"""Providers and model configs from the environment, created on start when missing.

- ``OPENAI_API_KEY`` alone: an ``openai`` provider with ``gpt-4o``.
- ``ANTHROPIC_API_KEY``: an ``anthropic`` provider with ``claude-sonnet-4-5``.
- ``CHATD_OPENAI_BASE_URL`` (+ ``CHATD_OPENAI_MODEL``): an ``openai-compat`` provider for
  that server with that model. ``OPENAI_API_KEY``, when set, is then the key for that server
  (as the OpenAI SDKs read the pair) and no ``openai`` provider is made; without a key the
  provider is keyless, which local servers such as Ollama accept.

A provider that already exists is left alone, so restarts (and admins' edits) are safe. A new
provider gets its preset model config unless one for that provider exists; the first config
ever created becomes the default. Everything runs in one transaction under the catalog lock,
so replicas starting together create each row once.
"""

from __future__ import annotations

from dataclasses import dataclass

import structlog

from chatd.sdk.providers import PROVIDER_DISPLAY_NAMES
from chatd.settings import Settings
from chatd.store import model_configs as mq
from chatd.store import providers as pq
from chatd.store.db import Database
from chatd.store.sql import Connection

log = structlog.get_logger(__name__)

# Context window assumed for a model on an OpenAI-compatible server (admins can change it).
COMPAT_CONTEXT_LIMIT = 32_768


@dataclass(frozen=True)
class Preset:
    provider: str
    api_key: str
    base_url: str
    model: str
    context_limit: int


def presets(settings: Settings) -> list[Preset]:
    """What the environment asks for, in the order it is created."""
    found: list[Preset] = []
    base_url = settings.openai_base_url.strip()
    openai_key = settings.openai_api_key.strip()
    if base_url:
        model = settings.openai_model.strip()
        if model:
            found.append(Preset("openai-compat", openai_key, base_url, model, COMPAT_CONTEXT_LIMIT))
        else:
            log.warning(
                "CHATD_OPENAI_BASE_URL is set without CHATD_OPENAI_MODEL; "
                "skipping the openai-compat provider",
                base_url=base_url,
            )
    elif openai_key:
        found.append(Preset("openai", openai_key, "", "gpt-4o", 128_000))
    anthropic_key = settings.anthropic_api_key.strip()
    if anthropic_key:
        found.append(Preset("anthropic", anthropic_key, "", "claude-sonnet-4-5", 200_000))
    return found


async def bootstrap_providers(db: Database, settings: Settings) -> None:
    """Create the providers named by the environment when none exist yet."""
    wanted = presets(settings)
    if not wanted:
        return
    async with db.write() as conn:
        await mq.lock_model_catalog(conn)
        for preset in wanted:
            await _apply(conn, db, preset)


async def _apply(conn: Connection, db: Database, preset: Preset) -> None:
    if await pq.get_provider_by_name(conn, preset.provider) is not None:
        return
    now = db.now()
    await pq.create_provider(
        conn,
        now,
        {
            "provider": preset.provider,
            "display_name": PROVIDER_DISPLAY_NAMES[preset.provider],
            "api_key": preset.api_key,
            "base_url": preset.base_url,
        },
        db.secrets,
    )
    log.info("created chat provider from the environment", provider=preset.provider)
    existing = await mq.list_model_configs(conn)
    if any(row["provider"] == preset.provider for row in existing):
        return
    await mq.create_model_config(
        conn,
        now,
        mq.NewModelConfig(
            provider=preset.provider,
            model=preset.model,
            display_name="",
            enabled=True,
            is_default=False,
            context_limit=preset.context_limit,
            compression_threshold=70,
            options={},
            created_by=None,
        ),
    )
    log.info("created chat model config", provider=preset.provider, model=preset.model)
