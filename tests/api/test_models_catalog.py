"""``GET /chats/models``: the per-user catalog built from the stored configuration (§8.3)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers import Api, ApiUser

pytestmark = pytest.mark.anyio

MODELS = "/api/experimental/chats/models"
PROVIDERS = "/api/experimental/chats/providers"
MODEL_CONFIGS = "/api/experimental/chats/model-configs"
USER_CONFIGS = "/api/experimental/chats/user-provider-configs"


async def post(api: Api, user: ApiUser, url: str, **body: Any) -> dict[str, Any]:
    r = await api.request("POST", url, user, json=body)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


async def catalog(api: Api, user: ApiUser) -> list[dict[str, Any]]:
    r = await api.request("GET", MODELS, user)
    assert r.status_code == 200, r.text
    providers: list[dict[str, Any]] = r.json()["providers"]
    return providers


async def test_empty_deployment_has_an_empty_catalog(api: Api, member: ApiUser) -> None:
    assert await catalog(api, member) == []


async def test_unauthenticated_is_401(api: Api) -> None:
    r = await api.client.get(MODELS)
    assert r.status_code == 401


async def test_providers_without_models_are_listed_empty(
    api: Api, admin: ApiUser, member: ApiUser
) -> None:
    await post(api, admin, PROVIDERS, provider="openai", api_key="sk")
    await post(
        api,
        admin,
        PROVIDERS,
        provider="anthropic",
        central_api_key_enabled=False,
        allow_user_api_key=True,
    )
    assert await catalog(api, member) == [
        {
            "provider": "anthropic",
            "available": False,
            "unavailable_reason": "user_api_key_required",
            "models": [],
        },
        {"provider": "openai", "available": True, "models": []},
    ]


async def test_catalog_from_model_configs(api: Api, admin: ApiUser, member: ApiUser) -> None:
    await post(api, admin, PROVIDERS, provider="openai", api_key="sk")
    anthropic = await post(api, admin, PROVIDERS, provider="anthropic", api_key="sk")
    await post(api, admin, PROVIDERS, provider="google", api_key="sk")
    for provider, model, display in [
        ("openai", "gpt-4o", "GPT-4o"),
        ("openai", "gpt-4.1", ""),
        ("openai", "o3", "o3 (disabled)"),
        ("anthropic", "claude-sonnet-4-5", "Sonnet"),
        ("anthropic", "openai:gpt-4o", "dup by prefix"),
    ]:
        await post(
            api,
            admin,
            MODEL_CONFIGS,
            provider=provider,
            model=model,
            display_name=display,
            context_limit=1000,
            enabled=model != "o3",
        )
    # google has no models, and so is left out once models exist. "openai:gpt-4o" stored under
    # anthropic resolves to openai and, coming first in list order, wins the dedupe.
    assert await catalog(api, member) == [
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
                    "display_name": "dup by prefix",
                },
            ],
        },
    ]
    # Disabling a provider drops it and its models.
    r = await api.request("PATCH", f"{PROVIDERS}/{anthropic['id']}", admin, json={"enabled": False})
    assert r.status_code == 200
    assert [p["provider"] for p in await catalog(api, member)] == ["openai"]


async def test_user_keys_make_a_byok_provider_available_for_that_user_only(
    api: Api, admin: ApiUser, member: ApiUser
) -> None:
    provider = await post(
        api,
        admin,
        PROVIDERS,
        provider="openrouter",
        central_api_key_enabled=False,
        allow_user_api_key=True,
    )
    await post(
        api, admin, MODEL_CONFIGS, provider="openrouter", model="deepseek-chat", context_limit=1000
    )
    r = await api.request(
        "PUT", f"{USER_CONFIGS}/{provider['id']}", member, json={"api_key": "mine"}
    )
    assert r.status_code == 200
    mine = await catalog(api, member)
    theirs = await catalog(api, admin)
    assert (mine[0]["available"], "unavailable_reason" in mine[0]) == (True, False)
    assert (theirs[0]["available"], theirs[0]["unavailable_reason"]) == (
        False,
        "user_api_key_required",
    )
    assert mine[0]["models"][0]["id"] == "openrouter:deepseek-chat"


async def test_keyless_openai_compat_is_available(
    api: Api, admin: ApiUser, member: ApiUser
) -> None:
    await post(
        api, admin, PROVIDERS, provider="openai-compat", base_url="http://127.0.0.1:11434/v1"
    )
    await post(
        api,
        admin,
        MODEL_CONFIGS,
        provider="openai-compat",
        model="qwen2.5-coder:7b",
        context_limit=32768,
    )
    assert await catalog(api, member) == [
        {
            "provider": "openai-compat",
            "available": True,
            "models": [
                {
                    "id": "openai-compat:qwen2.5-coder:7b",
                    "provider": "openai-compat",
                    "model": "qwen2.5-coder:7b",
                    "display_name": "qwen2.5-coder:7b",
                }
            ],
        }
    ]
