"""Resolving a chat's model config to a ready client (written by the turn work)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from chatd.llm.types import CallOptions, ModelClient
from chatd.sdk.providers import ChatModelCost
from chatd.store.db import Database


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


async def resolve_model(db: Database, config_id: uuid.UUID, owner_id: uuid.UUID) -> ResolvedModel:
    """The model config's provider and credentials (central key, or the owner's own key where
    the provider allows it) as a client. Raises ``ProviderError`` with kind ``missing_key``,
    ``provider_disabled`` or ``config`` when the model cannot be used."""
    raise NotImplementedError
