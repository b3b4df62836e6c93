"""Resolving a chat's model config to a ready client (engine-behaviour §5.2, §18).

The config (or the deployment default when it was deleted), its provider row, the credential
the owner may use (api-behaviour §8.3: their own key where the provider allows it, else the
central key where allowed), the call options and prices. Client construction is injectable:
tests pass their own ``client_factory``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from chatd.catalog import ProviderPolicy
from chatd.catalog import resolve_model as parse_model_name
from chatd.llm.errors import config_error, missing_key_error, provider_disabled_error
from chatd.llm.types import CallOptions, ModelClient, ProviderError
from chatd.sdk.providers import ChatModelCallConfig, ChatModelCost
from chatd.secretbox import SecretBox, SecretError
from chatd.store.model_configs import live_or_default_with_provider
from chatd.store.providers import central_key, get_provider_by_name, get_user_key
from chatd.store.sql import Connection

DEFAULT_MAX_OUTPUT_TOKENS = 32_000


class ClientFactory(Protocol):
    """The shape of :func:`chatd.llm.factory.create_client`."""

    def __call__(
        self, *, provider: str, model: str, api_key: str, base_url: str | None = None
    ) -> ModelClient: ...


@dataclass(frozen=True)
class ResolvedModel:
    config_id: uuid.UUID
    provider: str
    model: str
    client: ModelClient
    options: CallOptions
    context_limit: int
    compression_threshold: int
    cost: ChatModelCost | None
    # What built ``client``: a short generation on the same model builds its own from them.
    api_key: str = field(repr=False)
    base_url: str | None


@dataclass(frozen=True)
class ModelChoice:
    """What the database says a turn's model is: its config, provider and usable key."""

    config: Mapping[Any, Any]
    provider: str
    model: str
    base_url: str | None
    api_key: str = field(repr=False)


async def choose_model(
    conn: Connection, config_id: uuid.UUID, owner_id: uuid.UUID, *, secrets: SecretBox
) -> ModelChoice:
    """The model config's provider and credentials (central key, or the owner's own key where
    the provider allows it, opened with ``secrets``). Raises ``ProviderError`` with kind
    ``missing_key``, ``provider_disabled`` or ``config`` when the model cannot be used.

    Only statements are awaited, so it may run in a transaction function."""
    found = await live_or_default_with_provider(conn, config_id)
    if found is None:
        raise ProviderError(config_error(None, "no chat model config is configured"))
    config = found.config
    provider, model = parse_model_name(config["model"], config["provider"]) or (
        config["provider"],
        config["model"],
    )
    row: Mapping[Any, Any] | None
    if provider == config["provider"]:
        row = found.provider
    else:  # the model's name named another provider (chatd.catalog.resolve_model)
        row = await get_provider_by_name(conn, provider)
    if row is None:
        raise ProviderError(config_error(provider, f"provider {provider} is not configured"))
    if not row["enabled"]:
        raise ProviderError(provider_disabled_error(provider))
    api_key = await usable_key(conn, row, owner_id, secrets)
    if api_key is None:
        raise ProviderError(missing_key_error(provider))
    return ModelChoice(config, provider, model, row["base_url"] or None, api_key)


def build_model(choice: ModelChoice, client_factory: ClientFactory | None = None) -> ResolvedModel:
    """The client for ``choice`` (built by ``client_factory``, default the SDK adapters)."""
    if client_factory is None:
        from chatd.llm.factory import create_client

        client_factory = create_client
    config = choice.config
    call = ChatModelCallConfig.model_validate(config["options"] or {})
    return ResolvedModel(
        config_id=config["id"],
        provider=choice.provider,
        model=choice.model,
        client=client_factory(
            provider=choice.provider,
            model=choice.model,
            api_key=choice.api_key,
            base_url=choice.base_url,
        ),
        options=call_options(call),
        context_limit=config["context_limit"],
        compression_threshold=config["compression_threshold"],
        cost=call.cost,
        api_key=choice.api_key,
        base_url=choice.base_url,
    )


async def resolve_model(
    conn: Connection,
    config_id: uuid.UUID,
    owner_id: uuid.UUID,
    *,
    secrets: SecretBox,
    client_factory: ClientFactory | None = None,
) -> ResolvedModel:
    """:func:`choose_model`, then :func:`build_model`."""
    choice = await choose_model(conn, config_id, owner_id, secrets=secrets)
    return build_model(choice, client_factory)


async def usable_key(
    conn: Connection,
    provider_row: Mapping[Any, Any],
    owner_id: uuid.UUID,
    secrets: SecretBox,
) -> str | None:
    """The key ``owner_id`` may use with this provider ("" for a keyless one), or ``None``.

    The key is opened here, just before a client is built from it. Raises ``ProviderError``
    (kind ``config``) when the stored key cannot be opened with ``secrets``.
    """
    policy = ProviderPolicy.from_row(provider_row)
    try:
        if policy.allow_user_api_key:
            own = await get_user_key(conn, secrets, owner_id, policy.id)
            if own:
                return own
        if policy.central_key_usable and (
            not policy.allow_user_api_key or policy.allow_central_api_key_fallback
        ):
            return central_key(secrets, provider_row)
    except SecretError as exc:
        raise ProviderError(
            config_error(policy.provider, f"the stored API key cannot be decrypted: {exc}")
        ) from None
    return None


def call_options(call: ChatModelCallConfig) -> CallOptions:
    return CallOptions(
        max_output_tokens=call.max_output_tokens or DEFAULT_MAX_OUTPUT_TOKENS,
        temperature=call.temperature,
        top_p=call.top_p,
        top_k=call.top_k,
        presence_penalty=call.presence_penalty,
        frequency_penalty=call.frequency_penalty,
        provider_options=dict(call.provider_options or {}),
    )
