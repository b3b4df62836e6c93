"""Chat providers and users' own provider keys (BYOK).

Keys are sealed as they are written (:mod:`chatd.store.secret_columns`); rows read here carry
the sealed text. Only :func:`central_key` and :func:`get_user_key` open a key, for the code
that builds a model client.
"""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Mapping
from typing import Any

import sqlalchemy as sa

from chatd.sdk.providers import ChatProviderConfig, ChatProviderConfigSource
from chatd.secretbox import SecretBox
from chatd.store.model_configs import lock_model_catalog, soft_delete_provider_configs
from chatd.store.secret_columns import (
    open_sealed,
    provider_key_binding,
    seal,
    user_key_binding,
)
from chatd.store.sql import Connection, RowDict
from chatd.store.tables import chat_providers, user_chat_provider_keys

prov = chat_providers
# Run on every turn: built once (see chatd.store.chats).
_PROVIDER_BY_NAME = sa.select(prov).where(prov.c.provider == sa.bindparam("provider"))
keys = user_chat_provider_keys


class ProviderExists(Exception):
    """A provider row of that type exists already."""


def provider_view(row: RowDict) -> ChatProviderConfig:
    return ChatProviderConfig(
        id=row["id"],
        provider=row["provider"],
        display_name=row["display_name"],
        enabled=row["enabled"],
        has_api_key=row["api_key"] != "",
        central_api_key_enabled=row["central_api_key_enabled"],
        allow_user_api_key=row["allow_user_api_key"],
        allow_central_api_key_fallback=row["allow_central_api_key_fallback"],
        base_url=row["base_url"] or None,
        source=ChatProviderConfigSource.database,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


# Listed for every title and turn summary: built once (see chatd.store.chats).
_ALL_PROVIDERS = sa.select(prov).order_by(prov.c.provider)
_ENABLED_PROVIDERS = _ALL_PROVIDERS.where(prov.c.enabled.is_(True))


async def list_providers(
    conn: Connection, *, enabled_only: bool = False
) -> list[RowDict]:
    query = _ENABLED_PROVIDERS if enabled_only else _ALL_PROVIDERS
    return [row.as_dict() for row in await conn.execute(query)]


async def get_provider(conn: Connection, provider_id: uuid.UUID) -> RowDict | None:
    row = (await conn.execute(sa.select(prov).where(prov.c.id == provider_id))).first()
    return row.as_dict() if row else None


async def get_provider_by_name(conn: Connection, provider: str) -> RowDict | None:
    row = (await conn.execute(_PROVIDER_BY_NAME, {"provider": provider})).first()
    return row.as_dict() if row else None


def central_key(secrets: SecretBox, row: Mapping[Any, Any]) -> str:
    """The provider row's own key, opened (``""``: none); raises ``SecretError``."""
    return open_sealed(secrets, row["api_key"], provider_key_binding(row["id"]))


def _sealed(secrets: SecretBox, provider_id: uuid.UUID, values: dict[str, Any]) -> dict[str, Any]:
    if "api_key" not in values:
        return values
    return {
        **values,
        "api_key": seal(secrets, values["api_key"], provider_key_binding(provider_id)),
    }


async def create_provider(
    conn: Connection, now: dt.datetime, values: dict[str, Any], secrets: SecretBox
) -> RowDict:
    """Insert a provider row (``values["api_key"]`` in plain text, sealed here); raises
    :class:`ProviderExists` for a duplicate type."""
    await lock_model_catalog(conn)
    if await get_provider_by_name(conn, values["provider"]) is not None:
        raise ProviderExists
    provider_id = uuid.uuid4()
    await conn.execute(
        prov.insert().values(
            id=provider_id, created_at=now, updated_at=now, **_sealed(secrets, provider_id, values)
        )
    )
    row = await get_provider(conn, provider_id)
    assert row is not None
    return row


async def lock_provider(conn: Connection, provider_id: uuid.UUID) -> RowDict | None:
    """The provider row, with the catalog locked for the rest of the transaction."""
    await lock_model_catalog(conn)
    return await get_provider(conn, provider_id)


async def update_provider(
    conn: Connection,
    now: dt.datetime,
    provider_id: uuid.UUID,
    values: dict[str, Any],
    secrets: SecretBox,
) -> RowDict:
    """Change a provider row (a new ``api_key`` in plain text, sealed here)."""
    await conn.execute(
        prov.update()
        .where(prov.c.id == provider_id)
        .values(**_sealed(secrets, provider_id, values), updated_at=now)
    )
    row = await get_provider(conn, provider_id)
    assert row is not None
    return row


async def delete_provider(conn: Connection, now: dt.datetime, provider_id: uuid.UUID) -> bool:
    """Soft-delete the provider's configs, re-elect the default, delete the provider."""
    row = await lock_provider(conn, provider_id)
    if row is None:
        return False
    await soft_delete_provider_configs(conn, now, row["provider"])
    await conn.execute(keys.delete().where(keys.c.chat_provider_id == provider_id))
    await conn.execute(prov.delete().where(prov.c.id == provider_id))
    return True


async def user_key_provider_ids(conn: Connection, user_id: uuid.UUID) -> set[uuid.UUID]:
    query = sa.select(keys.c.chat_provider_id).where(keys.c.user_id == user_id)
    return set((await conn.execute(query)).scalars())


async def get_user_key(
    conn: Connection, secrets: SecretBox, user_id: uuid.UUID, provider_id: uuid.UUID
) -> str | None:
    """The user's own key for a provider (BYOK), opened, if they stored one; raises
    ``SecretError`` when it cannot be opened."""
    query = sa.select(keys.c.api_key).where(
        keys.c.user_id == user_id, keys.c.chat_provider_id == provider_id
    )
    stored: str | None = (await conn.execute(query)).scalar_one_or_none()
    if stored is None:
        return None
    return open_sealed(secrets, stored, user_key_binding(user_id, provider_id))


async def upsert_user_key(
    conn: Connection,
    now: dt.datetime,
    user_id: uuid.UUID,
    provider_id: uuid.UUID,
    api_key: str,
    secrets: SecretBox,
) -> None:
    """Store the user's own key (in plain text, sealed here) for a provider."""
    api_key = seal(secrets, api_key, user_key_binding(user_id, provider_id))
    where = (keys.c.user_id == user_id, keys.c.chat_provider_id == provider_id)
    existing = (await conn.execute(sa.select(keys.c.user_id).where(*where))).first()
    if existing is None:
        await conn.execute(
            keys.insert().values(
                user_id=user_id,
                chat_provider_id=provider_id,
                api_key=api_key,
                created_at=now,
                updated_at=now,
            )
        )
    else:
        await conn.execute(keys.update().where(*where).values(api_key=api_key, updated_at=now))


async def delete_user_key(
    conn: Connection, user_id: uuid.UUID, provider_id: uuid.UUID
) -> None:
    await conn.execute(
        keys.delete().where(keys.c.user_id == user_id, keys.c.chat_provider_id == provider_id)
    )
