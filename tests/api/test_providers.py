"""Chat providers and users' own keys (api-behaviour §9.2)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest

from chatd.sdk.providers import PROVIDER_ORDER
from tests.helpers import Api, ApiUser, envelope

pytestmark = pytest.mark.anyio

PROVIDERS = "/api/experimental/chats/providers"
USER_CONFIGS = "/api/experimental/chats/user-provider-configs"
MODEL_CONFIGS = "/api/experimental/chats/model-configs"
NIL = "00000000-0000-0000-0000-000000000000"


async def create(api: Api, user: ApiUser, **body: Any) -> Any:
    r = await api.request("POST", PROVIDERS, user, json=body)
    assert r.status_code == 201, r.text
    return r.json()


async def expect_error(response: Any, status: int, message: str, detail: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = envelope(response)
    assert body["message"] == message
    if detail is not None:
        assert body["detail"] == detail


async def test_list_shows_every_supported_provider_as_placeholder(api: Api, admin: ApiUser) -> None:
    r = await api.request("GET", PROVIDERS, admin)
    assert r.status_code == 200
    entries = r.json()
    assert [e["provider"] for e in entries] == list(PROVIDER_ORDER)
    assert entries[0] == {
        "id": NIL,
        "provider": "anthropic",
        "display_name": "Anthropic",
        "enabled": False,
        "has_api_key": False,
        "central_api_key_enabled": True,
        "allow_user_api_key": False,
        "allow_central_api_key_fallback": False,
        "source": "supported",
    }
    assert [e["display_name"] for e in entries] == [
        "Anthropic",
        "Azure OpenAI",
        "AWS Bedrock",
        "Google",
        "OpenAI",
        "OpenAI Compatible",
        "OpenRouter",
        "Vercel AI Gateway",
    ]


async def test_create_returns_the_provider_and_hides_the_key(api: Api, admin: ApiUser) -> None:
    created = await create(api, admin, provider=" OpenAI ", api_key="  sk-secret  ")
    assert created["provider"] == "openai"
    assert created["display_name"] == "OpenAI"
    assert created["has_api_key"] is True
    assert created["enabled"] is True
    assert created["source"] == "database"
    assert (created["central_api_key_enabled"], created["allow_user_api_key"]) == (True, False)
    assert created["allow_central_api_key_fallback"] is False
    assert "api_key" not in created and "base_url" not in created
    listed = (await api.request("GET", PROVIDERS, admin)).json()
    openai = next(e for e in listed if e["provider"] == "openai")
    assert openai == created
    assert "sk-secret" not in str(listed)


async def test_duplicate_provider_is_409(api: Api, admin: ApiUser) -> None:
    await create(api, admin, provider="openai", api_key="sk-1")
    r = await api.request("POST", PROVIDERS, admin, json={"provider": "openai", "api_key": "x"})
    await expect_error(r, 409, "Chat provider already exists.")


@pytest.mark.parametrize(
    ("body", "message", "detail"),
    [
        (
            {"provider": "nope"},
            "Invalid provider.",
            "Provider must be one of: anthropic, azure, bedrock, google, openai, openai-compat, "
            "openrouter, vercel.",
        ),
        ({"provider": "openai", "api_key": "k" * 10_241}, "API key too large.", None),
        (
            {"provider": "openai", "api_key": "k", "base_url": "ftp://x"},
            "Invalid provider base URL.",
            None,
        ),
        (
            {"provider": "openai", "api_key": "k", "base_url": "/v1"},
            "Invalid provider base URL.",
            None,
        ),
        (
            {"provider": "openai", "central_api_key_enabled": False},
            "Invalid credential policy.",
            "At least one credential source must be enabled: central API key or user API key.",
        ),
        (
            {
                "provider": "openai",
                "central_api_key_enabled": False,
                "allow_user_api_key": True,
                "allow_central_api_key_fallback": True,
            },
            "Invalid credential policy.",
            "Central API key fallback requires central API key to be enabled.",
        ),
        (
            {"provider": "openai", "api_key": "k", "allow_central_api_key_fallback": True},
            "Invalid credential policy.",
            "Central API key fallback requires user API key to be enabled.",
        ),
        ({"provider": "openai"}, "API key is required when central API key is enabled.", None),
        (
            {"provider": "openai", "api_key": "   "},
            "API key is required when central API key is enabled.",
            None,
        ),
        ({"provider": "openai-compat"}, "Invalid provider base URL.", None),
    ],
)
async def test_create_validation(
    api: Api, admin: ApiUser, body: dict[str, Any], message: str, detail: str | None
) -> None:
    r = await api.request("POST", PROVIDERS, admin, json=body)
    await expect_error(r, 400, message, detail)
    listed = (await api.request("GET", PROVIDERS, admin)).json()
    assert all(e["source"] == "supported" for e in listed)


async def test_keyless_providers(api: Api, admin: ApiUser) -> None:
    bedrock = await create(api, admin, provider="bedrock")
    assert bedrock["has_api_key"] is False
    compat = await create(
        api, admin, provider="openai-compat", base_url="http://127.0.0.1:11434/v1"
    )
    assert compat["base_url"] == "http://127.0.0.1:11434/v1"
    assert compat["has_api_key"] is False


async def test_user_keys_only_provider_needs_no_central_key(api: Api, admin: ApiUser) -> None:
    created = await create(
        api, admin, provider="openrouter", central_api_key_enabled=False, allow_user_api_key=True
    )
    assert (created["central_api_key_enabled"], created["allow_user_api_key"]) == (False, True)


async def test_non_admin_gets_403_on_every_admin_route(
    api: Api, admin: ApiUser, member: ApiUser
) -> None:
    created = await create(api, admin, provider="openai", api_key="sk")
    url = f"{PROVIDERS}/{created['id']}"
    for method, path, body in [
        ("GET", PROVIDERS, None),
        ("POST", PROVIDERS, {"provider": "anthropic", "api_key": "k"}),
        ("PATCH", url, {"enabled": False}),
        ("DELETE", url, None),
    ]:
        r = await api.request(method, path, member, json=body)
        await expect_error(r, 403, "Forbidden.")
    listed = (await api.request("GET", PROVIDERS, admin)).json()
    assert [e["provider"] for e in listed if e["source"] == "database"] == ["openai"]
    assert next(e for e in listed if e["provider"] == "openai") == created


async def test_patch_is_partial(api: Api, admin: ApiUser) -> None:
    created = await create(api, admin, provider="openai", api_key="sk", display_name="Mine")
    url = f"{PROVIDERS}/{created['id']}"
    r = await api.request("PATCH", url, admin, json={"display_name": "", "enabled": False})
    assert r.status_code == 200, r.text
    assert (r.json()["display_name"], r.json()["enabled"], r.json()["has_api_key"]) == (
        "Mine",
        False,
        True,
    )
    r = await api.request(
        "PATCH", url, admin, json={"base_url": "https://proxy.example.com/v1", "display_name": "X"}
    )
    assert (r.json()["base_url"], r.json()["display_name"]) == ("https://proxy.example.com/v1", "X")
    r = await api.request("PATCH", url, admin, json={"base_url": ""})
    assert "base_url" not in r.json()


async def test_patch_clearing_the_key_needs_user_keys_instead(api: Api, admin: ApiUser) -> None:
    created = await create(api, admin, provider="openai", api_key="sk")
    url = f"{PROVIDERS}/{created['id']}"
    r = await api.request("PATCH", url, admin, json={"api_key": ""})
    await expect_error(r, 400, "API key is required when central API key is enabled.")
    r = await api.request(
        "PATCH",
        url,
        admin,
        json={"api_key": "", "central_api_key_enabled": False, "allow_user_api_key": True},
    )
    assert r.status_code == 200, r.text
    assert r.json()["has_api_key"] is False


async def test_patch_validation(api: Api, admin: ApiUser) -> None:
    created = await create(api, admin, provider="openai", api_key="sk")
    url = f"{PROVIDERS}/{created['id']}"
    cases = [
        ({"api_key": "k" * 10_241}, "API key too large."),
        ({"base_url": "nope"}, "Invalid provider base URL."),
        ({"allow_central_api_key_fallback": True}, "Invalid credential policy."),
        ({"central_api_key_enabled": False}, "Invalid credential policy."),
    ]
    for body, message in cases:
        await expect_error(await api.request("PATCH", url, admin, json=body), 400, message)
    listed = (await api.request("GET", PROVIDERS, admin)).json()
    assert next(e for e in listed if e["provider"] == "openai") == created


async def test_patch_and_delete_bad_or_missing_ids(api: Api, admin: ApiUser) -> None:
    for method in ("PATCH", "DELETE"):
        r = await api.request(method, f"{PROVIDERS}/not-a-uuid", admin, json={})
        await expect_error(r, 400, "Invalid chat provider ID.")
        r = await api.request(method, f"{PROVIDERS}/{uuid.uuid4()}", admin, json={})
        await expect_error(r, 404, "Resource not found or you do not have access to this resource")


async def test_delete_removes_the_provider_and_its_model_configs(api: Api, admin: ApiUser) -> None:
    openai = await create(api, admin, provider="openai", api_key="sk")
    await create(api, admin, provider="anthropic", api_key="sk")
    for provider, model in [("openai", "gpt-4o"), ("openai", "gpt-4.1"), ("anthropic", "claude-x")]:
        r = await api.request(
            "POST",
            MODEL_CONFIGS,
            admin,
            json={"provider": provider, "model": model, "context_limit": 1000},
        )
        assert r.status_code == 201
    r = await api.request("DELETE", f"{PROVIDERS}/{openai['id']}", admin)
    assert r.status_code == 204 and r.content == b""
    listed = (await api.request("GET", PROVIDERS, admin)).json()
    assert next(e for e in listed if e["provider"] == "openai")["source"] == "supported"
    configs = (await api.request("GET", MODEL_CONFIGS, admin)).json()
    assert [(c["model"], c["is_default"]) for c in configs] == [("claude-x", True)]
    r = await api.request("DELETE", f"{PROVIDERS}/{openai['id']}", admin)
    assert r.status_code == 404
    # The type can be configured again, and its old model names are free again.
    await create(api, admin, provider="openai", api_key="sk2")
    r = await api.request(
        "POST",
        MODEL_CONFIGS,
        admin,
        json={"provider": "openai", "model": "gpt-4o", "context_limit": 1},
    )
    assert r.status_code == 201


# --- users' own keys ---------------------------------------------------------------------


async def test_user_provider_configs(api: Api, admin: ApiUser, member: ApiUser) -> None:
    await create(api, admin, provider="openai", api_key="sk")
    byok = await create(
        api,
        admin,
        provider="openrouter",
        api_key="central",
        allow_user_api_key=True,
        allow_central_api_key_fallback=True,
    )
    anthropic = await create(
        api, admin, provider="anthropic", central_api_key_enabled=False, allow_user_api_key=True
    )
    r = await api.request("GET", USER_CONFIGS, member)
    assert r.status_code == 200
    assert r.json() == [
        {
            "provider_id": anthropic["id"],
            "provider": "anthropic",
            "display_name": "Anthropic",
            "has_user_api_key": False,
            "has_central_api_key_fallback": False,
        },
        {
            "provider_id": byok["id"],
            "provider": "openrouter",
            "display_name": "OpenRouter",
            "has_user_api_key": False,
            "has_central_api_key_fallback": True,
        },
    ]
    r = await api.request(
        "PUT", f"{USER_CONFIGS}/{anthropic['id']}", member, json={"api_key": " k "}
    )
    assert r.status_code == 200, r.text
    assert r.json()["has_user_api_key"] is True
    mine = (await api.request("GET", USER_CONFIGS, member)).json()
    theirs = (await api.request("GET", USER_CONFIGS, admin)).json()
    assert [c["has_user_api_key"] for c in mine] == [True, False]
    assert [c["has_user_api_key"] for c in theirs] == [False, False]
    r = await api.request("DELETE", f"{USER_CONFIGS}/{anthropic['id']}", member)
    assert r.status_code == 204
    mine = (await api.request("GET", USER_CONFIGS, member)).json()
    assert [c["has_user_api_key"] for c in mine] == [False, False]


async def test_put_user_key_errors(api: Api, admin: ApiUser, member: ApiUser) -> None:
    central_only = await create(api, admin, provider="openai", api_key="sk")
    byok = await create(
        api, admin, provider="anthropic", central_api_key_enabled=False, allow_user_api_key=True
    )
    url = f"{USER_CONFIGS}/{byok['id']}"
    await expect_error(
        await api.request("PUT", f"{USER_CONFIGS}/bad", member, json={"api_key": "k"}),
        400,
        "Invalid chat provider ID.",
    )
    await expect_error(
        await api.request("PUT", f"{USER_CONFIGS}/{uuid.uuid4()}", member, json={"api_key": "k"}),
        404,
        "Resource not found or you do not have access to this resource",
    )
    await expect_error(
        await api.request(
            "PUT", f"{USER_CONFIGS}/{central_only['id']}", member, json={"api_key": "k"}
        ),
        400,
        "Provider does not allow user API keys.",
    )
    await expect_error(
        await api.request("PUT", url, member, json={"api_key": "k" * 10_241}),
        400,
        "API key too large.",
    )
    await expect_error(
        await api.request("PUT", url, member, json={"api_key": "  "}), 400, "API key is required."
    )
    r = await api.request("PATCH", f"{PROVIDERS}/{byok['id']}", admin, json={"enabled": False})
    assert r.status_code == 200
    await expect_error(
        await api.request("PUT", url, member, json={"api_key": "k"}), 400, "Provider is disabled."
    )
    assert (await api.request("GET", USER_CONFIGS, member)).json() == []
    await expect_error(
        await api.request("DELETE", f"{USER_CONFIGS}/{uuid.uuid4()}", member),
        404,
        "Resource not found or you do not have access to this resource",
    )
