"""Building a :class:`ModelClient` for a configured provider and model.

Each provider's SDK is imported when its first client is built: loading both cost a server
~1.4 s of CPU at every start, before any chat asked for either.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import TYPE_CHECKING, TypeAlias

import httpx2

from chatd.llm.errors import config_error
from chatd.llm.types import ModelClient, ProviderError

if TYPE_CHECKING:
    import anthropic
    import openai

# Local OpenAI-compatible servers usually need no key; the SDK still wants one.
PLACEHOLDER_API_KEY = "not-needed"
# No overall deadline: the engine's startup guard bounds the first part; a stream that goes
# silent for ten minutes is given up (a timeout, retryable).
TIMEOUT = httpx2.Timeout(connect=30.0, read=600.0, write=60.0, pool=None)
# SDK clients a SharedClients keeps (one per provider, key and base URL in use).
SHARED_SDK_CLIENTS = 256

SDKClient: TypeAlias = "openai.AsyncOpenAI | anthropic.AsyncAnthropic"


def shared_pool(timeout: httpx2.Timeout = TIMEOUT) -> httpx2.AsyncClient:
    """One connection pool for many clients (pass it as ``http_client``); close it when done.

    It sends over aiohttp (the SDKs' own aiohttp transport): its C parser reads a streamed
    body at about half the CPU per chunk of the default transport (measured: ~95 -> ~50 µs
    per streamed delta through :class:`OpenAIChatClient` at 100 streams x 50 chunks/s). No
    connection limit: every running chat streams at once. The transport hands
    ``max_connections`` to aiohttp's connector as its ``limit``, where 0 is "no limit" (None
    would keep aiohttp's default of 100, and the 101st running chat would wait for a stream
    to end before its own request went out).
    """
    import openai

    limits = httpx2.Limits(max_connections=0, max_keepalive_connections=100)
    return openai.DefaultAioHttpClient(limits=limits, timeout=timeout)


def create_client(
    *,
    provider: str,
    model: str,
    api_key: str,
    base_url: str | None = None,
    http_client: httpx2.AsyncClient | None = None,
) -> ModelClient:
    """A client for ``model`` at ``provider``. The SDKs never retry: the engine does (§7).

    Pass the app's shared ``http_client`` (closed by its owner at shutdown). Without one, each
    client has its own connection pool: close it with the adapter's ``aclose()``.
    """
    sdk = _sdk_client(provider, api_key, base_url or None, http_client)
    return _adapter(provider, model, sdk, owns_pool=http_client is None)


class SharedClients:
    """A client factory (shaped like :func:`create_client`) over one shared connection pool.

    The SDK client of each (provider, key, base URL) is built once and reused by every call:
    building one cost ~0.5 ms, and its first request ran the SDK's platform probe on a thread.
    The least recently used are forgotten past :data:`SHARED_SDK_CLIENTS`.

    Given no pool, it builds one (:func:`shared_pool`) with its first client, and
    :meth:`aclose` closes it.
    """

    def __init__(self, http_client: httpx2.AsyncClient | None = None) -> None:
        self._http = http_client
        self._owns_pool = http_client is None
        self._sdks: OrderedDict[tuple[str, str, str | None], SDKClient] = OrderedDict()

    async def aclose(self) -> None:
        """Close the pool it built (a pool it was given stays open)."""
        self._sdks.clear()
        if self._owns_pool and self._http is not None:
            http, self._http = self._http, None
            await http.aclose()

    def __call__(
        self, *, provider: str, model: str, api_key: str, base_url: str | None = None
    ) -> ModelClient:
        key = (provider, api_key, base_url or None)
        sdk = self._sdks.get(key)
        if sdk is None:
            if self._http is None:
                self._http = shared_pool()
            sdk = _sdk_client(provider, api_key, base_url or None, self._http)
            self._sdks[key] = sdk
            while len(self._sdks) > SHARED_SDK_CLIENTS:
                self._sdks.popitem(last=False)
        else:
            self._sdks.move_to_end(key)
        return _adapter(provider, model, sdk, owns_pool=False)


def _sdk_client(
    provider: str, api_key: str, base_url: str | None, http_client: httpx2.AsyncClient | None
) -> SDKClient:
    if provider in ("openai", "openai-compat"):
        if provider == "openai-compat" and base_url is None:
            raise ProviderError(config_error(provider, "openai-compat needs a base URL"))
        import openai

        return openai.AsyncOpenAI(
            api_key=api_key or PLACEHOLDER_API_KEY,
            base_url=base_url,
            max_retries=0,
            timeout=TIMEOUT,
            http_client=http_client,
        )
    if provider == "anthropic":
        import anthropic

        return anthropic.AsyncAnthropic(
            api_key=api_key or PLACEHOLDER_API_KEY,
            base_url=base_url,
            max_retries=0,
            timeout=TIMEOUT,
            http_client=http_client,
        )
    raise ProviderError(config_error(provider, f"provider {provider!r} is not supported"))


def _adapter(provider: str, model: str, sdk: SDKClient, *, owns_pool: bool) -> ModelClient:
    if provider == "anthropic":
        import anthropic

        from chatd.llm.anthropic_messages import AnthropicClient

        assert isinstance(sdk, anthropic.AsyncAnthropic)
        return AnthropicClient(model=model, client=sdk, owns_pool=owns_pool)
    import openai

    from chatd.llm.openai_chat import OpenAIChatClient

    assert isinstance(sdk, openai.AsyncOpenAI)
    return OpenAIChatClient(provider=provider, model=model, client=sdk, owns_pool=owns_pool)
