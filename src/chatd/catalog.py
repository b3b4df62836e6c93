"""The model catalog (api-behaviour §8.3): provider availability and the per-user model list.

Pure functions over already-loaded rows; the route loads them and :func:`build_catalog` does
the rest, so every rule here is unit-testable without a database.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from chatd.sdk.providers import (
    PROVIDER_ORDER,
    ChatModel,
    ChatModelProvider,
    ChatModelProviderUnavailableReason,
    ChatModelsResponse,
)

Reason = ChatModelProviderUnavailableReason

# Providers that can work without a stored central key: Bedrock uses ambient AWS credentials
# (as in the reference); openai-compat points at local servers (Ollama, vLLM, llama.cpp) that
# usually need no key at all (a chatd choice).
KEYLESS_PROVIDERS = frozenset({"bedrock", "openai-compat"})

_OPENAI_O_SERIES = re.compile(r"^o\d")


def normalize_provider(name: str) -> str | None:
    """The canonical provider name, or ``None`` when chatd does not know it."""
    key = name.strip().lower()
    return key if key in PROVIDER_ORDER else None


@dataclass(frozen=True)
class ProviderPolicy:
    """What availability needs to know about one configured provider."""

    id: uuid.UUID
    provider: str
    enabled: bool
    has_central_key: bool
    central_api_key_enabled: bool
    allow_user_api_key: bool
    allow_central_api_key_fallback: bool

    @classmethod
    def from_row(cls, row: Mapping[Any, Any]) -> ProviderPolicy:
        return cls(
            id=row["id"],
            provider=row["provider"],
            enabled=row["enabled"],
            has_central_key=row["api_key"] != "",
            central_api_key_enabled=row["central_api_key_enabled"],
            allow_user_api_key=row["allow_user_api_key"],
            allow_central_api_key_fallback=row["allow_central_api_key_fallback"],
        )

    @property
    def central_key_usable(self) -> bool:
        """The central key is on and there is one (or the provider needs none)."""
        return self.central_api_key_enabled and (
            self.has_central_key or self.provider in KEYLESS_PROVIDERS
        )


@dataclass(frozen=True)
class ConfiguredModel:
    """An enabled, non-deleted model config, as the catalog sees it."""

    provider: str  # the config's provider column: a hint
    model: str
    display_name: str


def availability(policy: ProviderPolicy, user_has_key: bool) -> tuple[bool, Reason | None]:
    """Whether ``policy``'s provider can serve this user, and why not."""
    if policy.allow_user_api_key and user_has_key:
        return True, None
    if policy.central_key_usable:
        if not policy.allow_user_api_key or policy.allow_central_api_key_fallback:
            return True, None
        return False, Reason.user_api_key_required
    if policy.allow_user_api_key:
        return False, Reason.user_api_key_required
    return False, Reason.missing_api_key


def resolve_model(model: str, hint: str = "") -> tuple[str, str] | None:
    """``(provider, model id)`` for a configured model name, or ``None`` when unknown.

    A known ``provider:model`` or ``provider/model`` prefix wins, then the hint, then name
    heuristics (Claude models are Anthropic's; GPT, ChatGPT and o-series are OpenAI's).
    """
    name = model.strip()
    if not name:
        return None
    for sep in (":", "/"):
        prefix, found, rest = name.partition(sep)
        provider = normalize_provider(prefix) if found else None
        if provider is not None and rest.strip():
            return provider, rest.strip()
    hinted = normalize_provider(hint)
    if hinted is not None:
        return hinted, name
    lowered = name.lower()
    if lowered.startswith("claude-"):
        return "anthropic", name
    if lowered.startswith(("gpt-", "chatgpt-")) or _OPENAI_O_SERIES.match(lowered):
        return "openai", name
    return None


def build_catalog(
    providers: Sequence[ProviderPolicy],
    models: Sequence[ConfiguredModel],
    user_key_provider_ids: Collection[uuid.UUID],
) -> ChatModelsResponse:
    """The catalog for one user from the enabled providers and enabled model configs.

    With no models every enabled provider is listed empty; otherwise only the enabled
    providers that have at least one model are listed (the reference leaves this open).
    """
    enabled = {p.provider: p for p in providers if p.enabled}
    status = {name: availability(p, p.id in user_key_provider_ids) for name, p in enabled.items()}
    by_provider: dict[str, dict[str, ChatModel]] = {}
    for configured in models:
        resolved = resolve_model(configured.model, configured.provider)
        if resolved is None or resolved[0] not in enabled:
            continue
        provider, model_id = resolved
        bucket = by_provider.setdefault(provider, {})
        bucket.setdefault(
            model_id.lower(),
            ChatModel(
                id=f"{provider}:{model_id}",
                provider=provider,
                model=model_id,
                display_name=configured.display_name.strip() or model_id,
            ),
        )
    listed = [p for p in PROVIDER_ORDER if p in enabled and (not models or p in by_provider)]
    entries = []
    for provider in listed:
        available, reason = status.get(provider, (False, Reason.missing_api_key))
        entries.append(
            ChatModelProvider(
                provider=provider,
                available=available,
                unavailable_reason=reason,
                models=sorted(by_provider.get(provider, {}).values(), key=lambda m: m.model),
            )
        )
    return ChatModelsResponse(providers=entries)
