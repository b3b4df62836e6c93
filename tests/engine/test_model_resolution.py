"""``resolve_model``: which config and which provider row a turn's client is built from."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import sqlalchemy as sa

from chatd.engine.models import resolve_model
from chatd.llm.types import ProviderError
from chatd.sdk.chats import ChatErrorKind
from chatd.store import providers as pq
from chatd.store.db import Database
from chatd.store.tables import chat_model_configs, chat_providers
from tests.helpers import ApiUser, seed_model_config

pytestmark = pytest.mark.anyio


class Factory:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> object:
        self.calls.append(kwargs)
        return object()


async def resolved(db: Database, config_id: uuid.UUID, owner: ApiUser) -> dict[str, Any]:
    factory = Factory()
    async with db.read() as conn:
        model = await resolve_model(
            conn,
            config_id,
            owner.id,
            secrets=db.secrets,
            client_factory=factory,  # type: ignore[arg-type]
        )
    (call,) = factory.calls
    return {"config_id": model.config_id, "provider": model.provider, **call}


async def set_provider(db: Database, provider: str, **values: object) -> None:
    async with db.write() as conn:
        row = await pq.get_provider_by_name(conn, provider)
        assert row is not None
        await pq.update_provider(conn, db.now(), row["id"], values, db.secrets)


async def test_the_config_and_its_own_providers_row(db: Database, admin: ApiUser) -> None:
    await seed_model_config(db, provider="anthropic", model="claude-sonnet-4", is_default=True)
    chosen = await seed_model_config(db, provider="openai", model="gpt-4o", is_default=False)
    await set_provider(db, "openai", api_key="sk-openai", base_url="http://openai.test/v1")

    got = await resolved(db, chosen, admin)
    assert got == {
        "config_id": chosen,
        "provider": "openai",
        "model": "gpt-4o",
        "api_key": "sk-openai",
        "base_url": "http://openai.test/v1",
    }


async def test_a_deleted_config_falls_back_to_the_default_with_its_provider(
    db: Database, admin: ApiUser
) -> None:
    default = await seed_model_config(db, provider="anthropic", model="claude-sonnet-4")
    gone = await seed_model_config(db, provider="openai", model="gpt-4o", is_default=False)
    await set_provider(db, "anthropic", api_key="sk-anthropic")
    async with db.write() as conn:
        await conn.execute(
            chat_model_configs.update().where(chat_model_configs.c.id == gone).values(deleted=True)
        )

    got = await resolved(db, gone, admin)
    assert (got["config_id"], got["provider"]) == (default, "anthropic")
    assert (got["model"], got["api_key"]) == ("claude-sonnet-4", "sk-anthropic")


async def test_a_model_name_that_names_another_provider_uses_that_providers_row(
    db: Database, admin: ApiUser
) -> None:
    await seed_model_config(db, provider="anthropic", model="claude-sonnet-4")
    await set_provider(db, "anthropic", api_key="sk-anthropic")
    # Configured under openai-compat, but the name's prefix says Anthropic.
    mixed = await seed_model_config(
        db, provider="openai-compat", model="anthropic/claude-haiku-4", is_default=False
    )
    await set_provider(db, "openai-compat", api_key="sk-compat")

    got = await resolved(db, mixed, admin)
    assert got["config_id"] == mixed
    assert (got["provider"], got["model"], got["api_key"]) == (
        "anthropic",
        "claude-haiku-4",
        "sk-anthropic",
    )


async def test_a_config_whose_provider_has_no_row_is_a_config_error(
    db: Database, admin: ApiUser
) -> None:
    config_id = await seed_model_config(db, provider="openai", model="gpt-4o")
    async with db.write() as conn:
        await conn.execute(sa.delete(chat_providers).where(chat_providers.c.provider == "openai"))

    async with db.read() as conn:
        with pytest.raises(ProviderError) as raised:
            await resolve_model(
                conn,
                config_id,
                admin.id,
                secrets=db.secrets,
                client_factory=Factory(),  # type: ignore[arg-type]
            )
    assert raised.value.error.kind == ChatErrorKind.config
    assert raised.value.error.provider == "openai"
    assert raised.value.error.detail == "provider openai is not configured"
