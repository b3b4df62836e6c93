"""``GET /chats/models``: the model catalog for the calling user (api-behaviour §8.3)."""

from __future__ import annotations

from fastapi import APIRouter

from chatd.api.deps import DB, CurrentActor
from chatd.api.errors import ERROR_RESPONSES
from chatd.catalog import ConfiguredModel, ProviderPolicy, build_catalog
from chatd.sdk.providers import ChatModelsResponse
from chatd.store import model_configs as mq
from chatd.store import providers as pq

router = APIRouter(prefix="/api/experimental", tags=["Chats"], responses=ERROR_RESPONSES)


@router.get("/chats/models", response_model=ChatModelsResponse, summary="List chat models")
async def list_models(db: DB, actor: CurrentActor) -> ChatModelsResponse:
    async with db.read() as conn:
        providers = await pq.list_providers(conn, enabled_only=True)
        configs = await mq.list_model_configs(conn, enabled_only=True)
        own_keys = await pq.user_key_provider_ids(conn, actor.user_id)
    return build_catalog(
        [ProviderPolicy.from_row(row) for row in providers],
        [ConfiguredModel(r["provider"], r["model"], r["display_name"]) for r in configs],
        own_keys,
    )
