"""Building model clients: SDK clients shared per provider, key and base URL."""

from __future__ import annotations

import asyncio

import anyio
import httpx2
import pytest

from chatd.llm import factory
from chatd.llm.factory import SharedClients
from chatd.llm.types import ProviderError
from chatd.testing import FakeProvider
from tests.llm.parts import collect

pytestmark = pytest.mark.anyio


async def test_shared_clients_reuse_one_sdk_client_per_provider_key_and_url(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with httpx2.AsyncClient() as pool:
        shared = SharedClients(pool)
        url = "http://127.0.0.1:9/v1"
        a = shared(provider="openai-compat", model="m1", api_key="k", base_url=url)
        b = shared(provider="openai-compat", model="m2", api_key="k", base_url=url)
        assert a._client is b._client  # type: ignore[attr-defined]
        assert (a.model, b.model) == ("m1", "m2")  # type: ignore[attr-defined]
        other_key = shared(provider="openai-compat", model="m1", api_key="k2", base_url=url)
        assert other_key._client is not a._client  # type: ignore[attr-defined]
        claude = shared(provider="anthropic", model="c", api_key="k", base_url=None)
        assert type(claude).__name__ == "AnthropicClient"
        with pytest.raises(ProviderError):
            shared(provider="openai-compat", model="m", api_key="", base_url=None)
        with pytest.raises(ProviderError):
            shared(provider="gemini", model="m", api_key="k")

        monkeypatch.setattr(factory, "SHARED_SDK_CLIENTS", 2)
        first = shared(provider="openai", model="m", api_key="1")
        shared(provider="openai", model="m", api_key="2")
        shared(provider="openai", model="m", api_key="3")  # the least recently used goes
        again = shared(provider="openai", model="m", api_key="1")
        assert again._client is not first._client  # type: ignore[attr-defined]


async def test_the_shared_pool_streams_more_than_a_hundred_replies_at_once(
    fake: FakeProvider, fake_url: str
) -> None:
    """Every running chat streams at once: no connection cap (aiohttp's default is 100)."""
    streams = 120
    # Each reply takes ~1.5 s, so a capped pool could send request 101 only after that.
    fake.add([{"text": ["a", "b", "c"], "tokens_per_second": 2}] * streams)
    async with factory.shared_pool(httpx2.Timeout(10.0)) as pool:
        client = SharedClients(pool)(
            provider="openai-compat", model="m", api_key="k", base_url=fake_url + "/v1"
        )
        replies = [asyncio.create_task(collect(client)) for _ in range(streams)]
        with anyio.fail_after(5):
            while len(fake.requests) < streams:  # noqa: ASYNC110 (bounded by fail_after)
                await asyncio.sleep(0.01)
        assert not any(reply.done() for reply in replies)  # all arrived while none was over
        assert [r.text for r in await asyncio.gather(*replies)] == ["abc"] * streams
