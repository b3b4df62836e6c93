"""Model configs (api-behaviour §9.3): validation, visibility and the one-default rule."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.helpers import Api, ApiUser, envelope

pytestmark = pytest.mark.anyio

PROVIDERS = "/api/experimental/chats/providers"
MODEL_CONFIGS = "/api/experimental/chats/model-configs"
NOT_FOUND = "Resource not found or you do not have access to this resource"


@pytest.fixture
async def providers(api: Api, admin: ApiUser) -> None:
    for provider in ("openai", "anthropic"):
        r = await api.request("POST", PROVIDERS, admin, json={"provider": provider, "api_key": "k"})
        assert r.status_code == 201, r.text


async def create(api: Api, admin: ApiUser, **body: Any) -> dict[str, Any]:
    body = {"provider": "openai", "context_limit": 128000, **body}
    r = await api.request("POST", MODEL_CONFIGS, admin, json=body)
    assert r.status_code == 201, r.text
    created: dict[str, Any] = r.json()
    return created


async def listed(api: Api, user: ApiUser) -> list[dict[str, Any]]:
    r = await api.request("GET", MODEL_CONFIGS, user)
    assert r.status_code == 200
    configs: list[dict[str, Any]] = r.json()
    return configs


def defaults(configs: list[dict[str, Any]]) -> list[str]:
    return [c["model"] for c in configs if c["is_default"]]


async def expect_error(response: Any, status: int, message: str, detail: str | None = None) -> None:
    assert response.status_code == status, response.text
    body = envelope(response)
    assert body["message"] == message
    if detail is not None:
        assert body["detail"] == detail


@pytest.mark.usefixtures("providers")
async def test_create_returns_the_config_and_the_first_becomes_default(
    api: Api, admin: ApiUser
) -> None:
    first = await create(
        api,
        admin,
        provider=" OpenAI ",
        model=" gpt-4o ",
        display_name="GPT-4o",
        model_config={"max_output_tokens": 4096, "cost": {"input_price_per_million_tokens": 2.5}},
    )
    assert first["provider"] == "openai"
    assert first["model"] == "gpt-4o"
    assert first["display_name"] == "GPT-4o"
    assert (first["enabled"], first["is_default"]) == (True, True)
    assert (first["context_limit"], first["compression_threshold"]) == (128000, 70)
    assert first["model_config"] == {
        "max_output_tokens": 4096,
        "cost": {"input_price_per_million_tokens": 2.5},
    }
    second = await create(api, admin, model="gpt-4.1", compression_threshold=0)
    assert second["is_default"] is False
    assert second["compression_threshold"] == 0
    assert "model_config" not in second
    assert await listed(api, admin) == [second, first]


@pytest.mark.usefixtures("providers")
async def test_create_with_is_default_takes_the_default(api: Api, admin: ApiUser) -> None:
    await create(api, admin, model="gpt-4o")
    await create(api, admin, provider="anthropic", model="claude-sonnet-4-5", is_default=True)
    assert defaults(await listed(api, admin)) == ["claude-sonnet-4-5"]


@pytest.mark.parametrize(
    ("body", "message", "detail"),
    [
        ({"provider": "nope", "model": "m", "context_limit": 1}, "Invalid provider.", None),
        ({"provider": "openai", "model": "  ", "context_limit": 1}, "Model is required.", None),
        (
            {"provider": "openai", "model": "m"},
            "Context limit is required.",
            "context_limit must be greater than zero.",
        ),
        (
            {"provider": "openai", "model": "m", "context_limit": 0},
            "Context limit is required.",
            "context_limit must be greater than zero.",
        ),
        (
            {"provider": "openai", "model": "m", "context_limit": 1, "compression_threshold": 101},
            "Invalid compression threshold.",
            None,
        ),
        (
            {"provider": "openai", "model": "m", "context_limit": 1, "compression_threshold": -1},
            "Invalid compression threshold.",
            None,
        ),
        (
            {
                "provider": "openai",
                "model": "m",
                "context_limit": 1,
                "model_config": {"cost": {"output_price_per_million_tokens": -1}},
            },
            "Invalid model config.",
            None,
        ),
        (
            {"provider": "openai", "model": "m", "context_limit": 1, "model_config": {"top_p": 2}},
            "Invalid model config.",
            None,
        ),
        (
            {
                "provider": "openai",
                "model": "m",
                "context_limit": 1,
                "model_config": {"max_output_tokens": 0},
            },
            "Invalid model config.",
            None,
        ),
        (
            {
                "provider": "openai",
                "model": "m",
                "context_limit": 1,
                "model_config": {"provider_options": {"nope": {}}},
            },
            "Invalid model config.",
            None,
        ),
        (
            {"provider": "google", "model": "gemini", "context_limit": 1},
            "Chat provider is not configured.",
            None,
        ),
        (
            {"provider": "openai", "model": "m", "context_limit": 2**63},
            "Request body must be valid JSON.",
            None,
        ),
    ],
)
@pytest.mark.usefixtures("providers")
async def test_create_validation(
    api: Api, admin: ApiUser, body: dict[str, Any], message: str, detail: str | None
) -> None:
    r = await api.request("POST", MODEL_CONFIGS, admin, json=body)
    await expect_error(r, 400, message, detail)
    assert await listed(api, admin) == []


@pytest.mark.usefixtures("providers")
async def test_duplicate_is_409_until_the_first_is_deleted(api: Api, admin: ApiUser) -> None:
    first = await create(api, admin, model="gpt-4o")
    r = await api.request(
        "POST",
        MODEL_CONFIGS,
        admin,
        json={"provider": "openai", "model": "gpt-4o", "context_limit": 5},
    )
    await expect_error(r, 409, "Chat model config already exists.")
    other = await create(api, admin, model="gpt-4.1")
    r = await api.request(
        "PATCH", f"{MODEL_CONFIGS}/{other['id']}", admin, json={"model": "gpt-4o"}
    )
    await expect_error(r, 409, "Chat model config already exists.")
    assert (await api.request("DELETE", f"{MODEL_CONFIGS}/{first['id']}", admin)).status_code == 204
    again = await create(api, admin, model="gpt-4o")
    assert again["id"] != first["id"]


@pytest.mark.usefixtures("providers")
async def test_members_see_only_enabled_configs_and_cannot_change_them(
    api: Api, admin: ApiUser, member: ApiUser
) -> None:
    shown = await create(api, admin, model="gpt-4o")
    hidden = await create(api, admin, model="gpt-4.1", enabled=False)
    assert [c["id"] for c in await listed(api, admin)] == [hidden["id"], shown["id"]]
    assert [c["id"] for c in await listed(api, member)] == [shown["id"]]
    url = f"{MODEL_CONFIGS}/{shown['id']}"
    for method, path, body in [
        ("POST", MODEL_CONFIGS, {"provider": "openai", "model": "x", "context_limit": 1}),
        ("PATCH", url, {"enabled": False}),
        ("DELETE", url, None),
    ]:
        r = await api.request(method, path, member, json=body)
        await expect_error(r, 403, "Forbidden.")
    assert len(await listed(api, admin)) == 2


@pytest.mark.usefixtures("providers")
async def test_patch_is_partial(api: Api, admin: ApiUser) -> None:
    created = await create(
        api, admin, model="gpt-4o", display_name="Four", compression_threshold=50
    )
    url = f"{MODEL_CONFIGS}/{created['id']}"
    r = await api.request(
        "PATCH",
        url,
        admin,
        json={"model": "", "display_name": " ", "provider": "", "context_limit": 64000},
    )
    assert r.status_code == 200, r.text
    updated = r.json()
    assert (updated["model"], updated["display_name"], updated["provider"]) == (
        "gpt-4o",
        "Four",
        "openai",
    )
    assert (updated["context_limit"], updated["compression_threshold"]) == (64000, 50)
    r = await api.request(
        "PATCH",
        url,
        admin,
        json={
            "provider": "anthropic",
            "model": "claude-x",
            "enabled": False,
            "compression_threshold": 100,
            "model_config": {"temperature": 0.2},
        },
    )
    updated = r.json()
    assert (updated["provider"], updated["model"], updated["enabled"]) == (
        "anthropic",
        "claude-x",
        False,
    )
    assert updated["compression_threshold"] == 100
    assert updated["model_config"] == {"temperature": 0.2}
    assert await listed(api, admin) == [updated]


@pytest.mark.usefixtures("providers")
async def test_patch_validation(api: Api, admin: ApiUser) -> None:
    created = await create(api, admin, model="gpt-4o")
    url = f"{MODEL_CONFIGS}/{created['id']}"
    cases = [
        ({"context_limit": 0}, "Context limit must be greater than zero."),
        ({"context_limit": -5}, "Context limit must be greater than zero."),
        ({"compression_threshold": 101}, "Invalid compression threshold."),
        ({"provider": "bogus"}, "Invalid provider."),
        ({"provider": "google"}, "Chat provider is not configured."),
        ({"model_config": {"temperature": -1}}, "Invalid model config."),
    ]
    for body, message in cases:
        await expect_error(await api.request("PATCH", url, admin, json=body), 400, message)
    assert await listed(api, admin) == [created]


async def test_bad_and_missing_ids(api: Api, admin: ApiUser) -> None:
    for method in ("PATCH", "DELETE"):
        r = await api.request(method, f"{MODEL_CONFIGS}/zzz", admin, json={})
        await expect_error(r, 400, "Invalid chat model config ID.")
        r = await api.request(method, f"{MODEL_CONFIGS}/{uuid.uuid4()}", admin, json={})
        await expect_error(r, 404, NOT_FOUND)


@pytest.mark.usefixtures("providers")
async def test_default_moves_on_set_unset_and_delete(api: Api, admin: ApiUser) -> None:
    a = await create(api, admin, model="a-model")
    b = await create(api, admin, model="b-model")
    c = await create(api, admin, model="c-model")
    assert defaults(await listed(api, admin)) == ["a-model"]
    r = await api.request("PATCH", f"{MODEL_CONFIGS}/{c['id']}", admin, json={"is_default": True})
    assert r.json()["is_default"] is True
    assert defaults(await listed(api, admin)) == ["c-model"]
    # Unsetting the default hands it to the first other config in list order.
    r = await api.request("PATCH", f"{MODEL_CONFIGS}/{c['id']}", admin, json={"is_default": False})
    assert r.json()["is_default"] is False
    assert defaults(await listed(api, admin)) == ["a-model"]
    # Deleting the default re-elects too; a deleted config is gone from every view.
    assert (await api.request("DELETE", f"{MODEL_CONFIGS}/{a['id']}", admin)).status_code == 204
    assert defaults(await listed(api, admin)) == ["b-model"]
    r = await api.request("DELETE", f"{MODEL_CONFIGS}/{a['id']}", admin)
    await expect_error(r, 404, NOT_FOUND)
    await api.request("DELETE", f"{MODEL_CONFIGS}/{c['id']}", admin)
    # The last config cannot give the default away.
    r = await api.request("PATCH", f"{MODEL_CONFIGS}/{b['id']}", admin, json={"is_default": False})
    assert r.json()["is_default"] is True
    await api.request("DELETE", f"{MODEL_CONFIGS}/{b['id']}", admin)
    assert await listed(api, admin) == []
    d = await create(api, admin, model="d-model", is_default=False)
    assert d["is_default"] is True


OPS = st.lists(
    st.one_of(
        st.tuples(st.just("create"), st.integers(0, 3), st.booleans()),
        st.tuples(st.just("default"), st.integers(0, 5), st.booleans()),
        st.tuples(st.just("enable"), st.integers(0, 5), st.booleans()),
        st.tuples(st.just("delete"), st.integers(0, 5), st.booleans()),
    ),
    max_size=10,
)


@settings(
    max_examples=15,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(ops=OPS)
@pytest.mark.usefixtures("providers")
async def test_exactly_one_default_while_any_config_exists(
    api: Api, admin: ApiUser, ops: list[tuple[str, int, bool]]
) -> None:
    for config in await listed(api, admin):  # the database is shared by the examples
        await api.request("DELETE", f"{MODEL_CONFIGS}/{config['id']}", admin)
    for op, n, flag in ops:
        configs = await listed(api, admin)
        if op == "create":
            body = {"provider": "openai", "model": f"m{n}", "context_limit": 10, "is_default": flag}
            r = await api.request("POST", MODEL_CONFIGS, admin, json=body)
            assert r.status_code in (201, 409)
        elif configs:
            url = f"{MODEL_CONFIGS}/{configs[n % len(configs)]['id']}"
            if op == "delete":
                r = await api.request("DELETE", url, admin)
            else:
                field = "is_default" if op == "default" else "enabled"
                r = await api.request("PATCH", url, admin, json={field: flag})
            assert r.status_code in (200, 204)
        configs = await listed(api, admin)
        assert len(defaults(configs)) == (1 if configs else 0)
