"""A fake provider served on loopback for every test here, and adapters pointed at it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

import httpx2
import pytest

from chatd.llm.factory import SharedClients, create_client, shared_pool
from chatd.llm.types import ModelClient
from chatd.testing import FakeProvider, serve_fake


@pytest.fixture
def fake() -> FakeProvider:
    return FakeProvider()


@pytest.fixture
async def fake_url(fake: FakeProvider) -> AsyncIterator[str]:
    async with serve_fake(fake) as url:
        yield url


MakeClient = Callable[[str], ModelClient]


@pytest.fixture(params=["httpx", "aiohttp"])
async def http_client(request: pytest.FixtureRequest) -> AsyncIterator[httpx2.AsyncClient]:
    """The SDKs' default transport, and the aiohttp one the worker's shared pool uses."""
    timeout = httpx2.Timeout(5.0)  # httpx2's default: the stall tests wait for it
    if request.param == "httpx":
        client = httpx2.AsyncClient(timeout=timeout)
    else:
        client = shared_pool(timeout)
    async with client:
        yield client


@pytest.fixture
def make_client(
    fake_url: str, http_client: httpx2.AsyncClient, request: pytest.FixtureRequest
) -> MakeClient:
    """``make_client("openai" | "openai-compat" | "anthropic")`` against the fake: built by
    ``create_client`` on the default transport, and by the worker's ``SharedClients`` (SDK
    clients reused from call to call) on the aiohttp one."""
    shared = SharedClients(http_client)
    worker_like = request.node.callspec.params.get("http_client") == "aiohttp"

    def make(provider: str) -> ModelClient:
        base = fake_url if provider == "anthropic" else fake_url + "/v1"
        if worker_like:
            return shared(provider=provider, model="fake-model", api_key="k", base_url=base)
        return create_client(
            provider=provider,
            model="fake-model",
            api_key="k",
            base_url=base,
            http_client=http_client,
        )

    return make
