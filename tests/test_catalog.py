"""Unit tests of the model catalog rules (api-behaviour §8.3)."""

from __future__ import annotations

import uuid

import pytest

from chatd.catalog import (
    ConfiguredModel,
    ProviderPolicy,
    availability,
    build_catalog,
    normalize_provider,
    resolve_model,
)
from chatd.sdk.providers import PROVIDER_ORDER, ChatModelProviderUnavailableReason

Reason = ChatModelProviderUnavailableReason


def policy(
    provider: str = "openai",
    *,
    enabled: bool = True,
    key: bool = True,
    central: bool = True,
    user: bool = False,
    fallback: bool = False,
) -> ProviderPolicy:
    return ProviderPolicy(
        id=uuid.uuid4(),
        provider=provider,
        enabled=enabled,
        has_central_key=key,
        central_api_key_enabled=central,
        allow_user_api_key=user,
        allow_central_api_key_fallback=fallback,
    )


# --- availability -------------------------------------------------------------------------


def test_user_key_makes_a_user_key_provider_available() -> None:
    assert availability(policy(key=False, central=False, user=True), True) == (True, None)


def test_user_key_is_ignored_when_the_provider_does_not_allow_user_keys() -> None:
    p = policy(key=False, central=True, user=False)
    assert availability(p, True) == (False, Reason.missing_api_key)


def test_central_key_makes_a_central_only_provider_available() -> None:
    assert availability(policy(key=True), False) == (True, None)


def test_central_key_with_fallback_serves_users_without_their_own_key() -> None:
    p = policy(key=True, central=True, user=True, fallback=True)
    assert availability(p, False) == (True, None)


def test_central_key_without_fallback_requires_the_users_key() -> None:
    p = policy(key=True, central=True, user=True, fallback=False)
    assert availability(p, False) == (False, Reason.user_api_key_required)


def test_bedrock_needs_no_stored_central_key() -> None:
    assert availability(policy("bedrock", key=False), False) == (True, None)


def test_openai_compat_needs_no_stored_central_key() -> None:
    assert availability(policy("openai-compat", key=False), False) == (True, None)


def test_central_key_disabled_and_user_keys_allowed_requires_the_users_key() -> None:
    p = policy(key=True, central=False, user=True)
    assert availability(p, False) == (False, Reason.user_api_key_required)


def test_no_key_anywhere_is_missing_api_key() -> None:
    assert availability(policy(key=False), False) == (False, Reason.missing_api_key)


# --- provider resolution -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("model", "hint", "expected"),
    [
        ("openai:gpt-4o", "anthropic", ("openai", "gpt-4o")),
        ("anthropic/claude-3-5-sonnet", "openrouter", ("anthropic", "claude-3-5-sonnet")),
        ("OpenAI:gpt-4o", "", ("openai", "gpt-4o")),
        ("llama3.1:8b", "openai-compat", ("openai-compat", "llama3.1:8b")),
        ("gemini-2.0-flash", "google", ("google", "gemini-2.0-flash")),
        ("my-model", " OpenRouter ", ("openrouter", "my-model")),
        ("claude-sonnet-4-5", "", ("anthropic", "claude-sonnet-4-5")),
        ("Claude-Opus", "", ("anthropic", "Claude-Opus")),
        ("gpt-4o", "", ("openai", "gpt-4o")),
        ("chatgpt-4o-latest", "", ("openai", "chatgpt-4o-latest")),
        ("o3-mini", "", ("openai", "o3-mini")),
        ("  gpt-4o  ", "", ("openai", "gpt-4o")),
    ],
)
def test_resolve_model(model: str, hint: str, expected: tuple[str, str]) -> None:
    assert resolve_model(model, hint) == expected


@pytest.mark.parametrize(
    ("model", "hint"),
    [("gemini-2.0-flash", ""), ("omega", ""), ("", "openai"), ("unknown:x", "nope"), ("o", "")],
)
def test_unresolvable_models(model: str, hint: str) -> None:
    assert resolve_model(model, hint) is None


def test_unknown_prefix_falls_back_to_the_hint() -> None:
    assert resolve_model("qwen2.5:7b", "openai-compat") == ("openai-compat", "qwen2.5:7b")


def test_normalize_provider() -> None:
    assert normalize_provider(" Anthropic ") == "anthropic"
    assert normalize_provider("openai_compat") is None
    assert [normalize_provider(p) for p in PROVIDER_ORDER] == list(PROVIDER_ORDER)


# --- catalog -------------------------------------------------------------------------------


def test_no_models_lists_every_enabled_provider_in_the_fixed_order() -> None:
    providers = [policy("openai"), policy("anthropic", key=False), policy("google", enabled=False)]
    catalog = build_catalog(providers, [], set())
    assert [
        (p.provider, p.available, p.unavailable_reason, p.models) for p in catalog.providers
    ] == [
        ("anthropic", False, Reason.missing_api_key, []),
        ("openai", True, None, []),
    ]


def test_models_are_grouped_sorted_deduplicated_and_prefixed() -> None:
    providers = [policy("openai"), policy("anthropic"), policy("vercel")]
    models = [
        ConfiguredModel("openai", "gpt-4o", "GPT 4o"),
        ConfiguredModel("openai", "GPT-4o", "duplicate"),
        ConfiguredModel("openai", "gpt-4.1", ""),
        ConfiguredModel("anthropic", "claude-sonnet-4-5", "Sonnet"),
        ConfiguredModel("", "openai:o3", ""),
    ]
    catalog = build_catalog(providers, models, set())
    dumped = catalog.model_dump(mode="json")
    assert dumped == {
        "providers": [
            {
                "provider": "anthropic",
                "available": True,
                "models": [
                    {
                        "id": "anthropic:claude-sonnet-4-5",
                        "provider": "anthropic",
                        "model": "claude-sonnet-4-5",
                        "display_name": "Sonnet",
                    }
                ],
            },
            {
                "provider": "openai",
                "available": True,
                "models": [
                    {
                        "id": "openai:gpt-4.1",
                        "provider": "openai",
                        "model": "gpt-4.1",
                        "display_name": "gpt-4.1",
                    },
                    {
                        "id": "openai:gpt-4o",
                        "provider": "openai",
                        "model": "gpt-4o",
                        "display_name": "GPT 4o",
                    },
                    {"id": "openai:o3", "provider": "openai", "model": "o3", "display_name": "o3"},
                ],
            },
        ]
    }


def test_models_of_disabled_or_unconfigured_providers_are_dropped() -> None:
    providers = [policy("openai"), policy("anthropic", enabled=False)]
    models = [
        ConfiguredModel("anthropic", "claude-sonnet-4-5", ""),
        ConfiguredModel("google", "gemini-2.5-pro", ""),
        ConfiguredModel("", "mystery", ""),
    ]
    assert build_catalog(providers, models, set()).providers == []


def test_user_keys_feed_availability() -> None:
    byok = policy("openrouter", key=False, central=False, user=True)
    models = [ConfiguredModel("openrouter", "some-model", "")]
    without = build_catalog([byok], models, set()).providers[0]
    with_key = build_catalog([byok], models, {byok.id}).providers[0]
    assert (without.available, without.unavailable_reason) == (
        False,
        Reason.user_api_key_required,
    )
    assert (with_key.available, with_key.unavailable_reason) == (True, None)


def test_unavailable_reason_is_omitted_from_json_when_available() -> None:
    catalog = build_catalog([policy("openai")], [], set())
    assert catalog.model_dump(mode="json")["providers"][0] == {
        "provider": "openai",
        "available": True,
        "models": [],
    }
