"""Model configs: queries and the transactional operations that keep exactly one default.

Every mutation of providers or model configs first takes :func:`lock_model_catalog`, so the
default election and the uniqueness checks see a stable table on PostgreSQL (SQLite writers
are already serialised by ``BEGIN IMMEDIATE``).
"""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from chatd.sdk.providers import ChatModelCallConfig, ChatModelConfig
from chatd.store.sql import Connection, RowDict
from chatd.store.tables import chat_model_configs, chat_providers

# Any constant works; it only has to be the same for every replica.
CATALOG_LOCK_KEY = 0x63617467  # "catg"

cfg = chat_model_configs
# Run on every turn: built once (see chatd.store.chats).
_CONFIG_BY_ID = sa.select(cfg).where(cfg.c.id == sa.bindparam("config_id"))
_LIVE_CONFIG_BY_ID = _CONFIG_BY_ID.where(cfg.c.deleted.is_(False))
# A config with the provider row of its ``provider`` column (its columns prefixed, NULLs when
# that provider has no row): what a turn resolves, in one statement.
_PROVIDER_PREFIX = "provider__"
_WITH_PROVIDER = sa.select(
    cfg, *(c.label(_PROVIDER_PREFIX + c.name) for c in chat_providers.c)
).select_from(cfg.outerjoin(chat_providers, chat_providers.c.provider == cfg.c.provider))
_LIVE_WITH_PROVIDER_BY_ID = _WITH_PROVIDER.where(
    cfg.c.id == sa.bindparam("config_id"), cfg.c.deleted.is_(False)
)
_DEFAULT_WITH_PROVIDER = _WITH_PROVIDER.where(cfg.c.is_default.is_(True), cfg.c.deleted.is_(False))
# The reference's list order; re-election picks the first eligible row in it.
LIST_ORDER = (cfg.c.provider.asc(), cfg.c.model.asc(), cfg.c.updated_at.desc(), cfg.c.id.desc())


class ModelConfigExists(Exception):
    """A non-deleted config with the same provider and model exists."""


class ProviderNotConfigured(Exception):
    """The config's provider has no row in ``chat_providers``."""


@dataclass(frozen=True)
class NewModelConfig:
    provider: str
    model: str
    display_name: str
    enabled: bool
    is_default: bool
    context_limit: int
    compression_threshold: int
    options: dict[str, Any]
    created_by: uuid.UUID | None


async def lock_model_catalog(conn: Connection) -> None:
    """Serialise provider/model-config writers (a no-op on SQLite, which already is)."""
    if conn.dialect_name == "postgresql":
        await conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": CATALOG_LOCK_KEY})


def model_config_view(row: RowDict) -> ChatModelConfig:
    options = row["options"] or {}
    return ChatModelConfig(
        id=row["id"],
        provider=row["provider"],
        model=row["model"],
        display_name=row["display_name"],
        enabled=row["enabled"],
        is_default=row["is_default"],
        context_limit=row["context_limit"],
        compression_threshold=row["compression_threshold"],
        model_config=ChatModelCallConfig.model_validate(options) if options else None,
        created_at=row["created_at"],
        updated_at=row["updated_at"],
    )


async def get_model_config(
    conn: Connection, config_id: uuid.UUID, *, include_deleted: bool = False
) -> RowDict | None:
    query = _CONFIG_BY_ID if include_deleted else _LIVE_CONFIG_BY_ID
    row = (await conn.execute(query, {"config_id": config_id})).first()
    return row.as_dict() if row else None


async def default_model_config(conn: Connection) -> RowDict | None:
    row = (
        await conn.execute(
            sa.select(cfg).where(cfg.c.is_default.is_(True), cfg.c.deleted.is_(False))
        )
    ).first()
    return row.as_dict() if row else None


@dataclass(frozen=True)
class ConfigWithProvider:
    config: dict[str, Any]
    # The row of ``config["provider"]`` in ``chat_providers`` (None: there is none).
    provider: dict[str, Any] | None


async def live_or_default_with_provider(
    conn: Connection, config_id: uuid.UUID
) -> ConfigWithProvider | None:
    """The live config ``config_id`` (else the default one, else None) with its provider row."""
    row = (await conn.execute(_LIVE_WITH_PROVIDER_BY_ID, {"config_id": config_id})).first()
    if row is None:
        row = (await conn.execute(_DEFAULT_WITH_PROVIDER)).first()
    if row is None:
        return None
    config: dict[str, Any] = {}
    provider: dict[str, Any] = {}
    for key, value in row.as_dict().items():
        name = str(key)
        if name.startswith(_PROVIDER_PREFIX):
            provider[name.removeprefix(_PROVIDER_PREFIX)] = value
        else:
            config[name] = value
    return ConfigWithProvider(config, provider if provider["id"] is not None else None)


async def list_model_configs(
    conn: Connection, *, enabled_only: bool = False
) -> list[RowDict]:
    query = sa.select(cfg).where(cfg.c.deleted.is_(False)).order_by(*LIST_ORDER)
    if enabled_only:
        query = query.where(cfg.c.enabled.is_(True))
    return [row.as_dict() for row in await conn.execute(query)]


async def insert_model_config(conn: Connection, **values: Any) -> uuid.UUID:
    config_id = values.pop("id", None) or uuid.uuid4()
    values.setdefault("options", {})
    await conn.execute(cfg.insert().values(id=config_id, **values))
    return config_id


async def _provider_exists(conn: Connection, provider: str) -> bool:
    query = sa.select(chat_providers.c.id).where(chat_providers.c.provider == provider)
    return (await conn.execute(query)).first() is not None


async def _duplicate_exists(
    conn: Connection, provider: str, model: str, exclude: uuid.UUID | None = None
) -> bool:
    query = sa.select(cfg.c.id).where(
        cfg.c.provider == provider, cfg.c.model == model, cfg.c.deleted.is_(False)
    )
    if exclude is not None:
        query = query.where(cfg.c.id != exclude)
    return (await conn.execute(query)).first() is not None


async def _unset_defaults(conn: Connection, now: dt.datetime) -> None:
    await conn.execute(
        cfg.update()
        .where(cfg.c.is_default.is_(True), cfg.c.deleted.is_(False))
        .values(is_default=False, updated_at=now)
    )


async def _set_default(conn: Connection, now: dt.datetime, config_id: uuid.UUID) -> None:
    await _unset_defaults(conn, now)
    await conn.execute(cfg.update().where(cfg.c.id == config_id).values(is_default=True))


async def ensure_default(
    conn: Connection, now: dt.datetime, exclude: uuid.UUID | None = None
) -> None:
    """Make the first listed config (other than ``exclude``) the default if none is."""
    current = await default_model_config(conn)
    if current is not None and current["id"] != exclude:
        return
    query = sa.select(cfg.c.id).where(cfg.c.deleted.is_(False)).order_by(*LIST_ORDER).limit(1)
    if exclude is not None:
        query = query.where(cfg.c.id != exclude)
    candidate = (await conn.execute(query)).scalar_one_or_none()
    if candidate is not None:
        await _set_default(conn, now, candidate)


async def create_model_config(
    conn: Connection, now: dt.datetime, new: NewModelConfig
) -> RowDict:
    """Insert a config; it becomes the only default when asked or when there is none."""
    await lock_model_catalog(conn)
    if not await _provider_exists(conn, new.provider):
        raise ProviderNotConfigured
    if await _duplicate_exists(conn, new.provider, new.model):
        raise ModelConfigExists
    make_default = new.is_default or await default_model_config(conn) is None
    if make_default:
        await _unset_defaults(conn, now)
    config_id = await insert_model_config(
        conn,
        provider=new.provider,
        model=new.model,
        display_name=new.display_name,
        enabled=new.enabled,
        is_default=make_default,
        context_limit=new.context_limit,
        compression_threshold=new.compression_threshold,
        options=new.options,
        created_by=new.created_by,
        updated_by=new.created_by,
        created_at=now,
        updated_at=now,
    )
    row = await get_model_config(conn, config_id)
    assert row is not None
    return row


async def update_model_config(
    conn: Connection,
    now: dt.datetime,
    config_id: uuid.UUID,
    changes: dict[str, Any],
    is_default: bool | None,
) -> RowDict | None:
    """Apply ``changes`` (column values) and the default flag; ``None`` when missing."""
    await lock_model_catalog(conn)
    row = await get_model_config(conn, config_id)
    if row is None:
        return None
    provider: str = changes["provider"] if "provider" in changes else row["provider"]
    model: str = changes["model"] if "model" in changes else row["model"]
    if provider != row["provider"] and not await _provider_exists(conn, provider):
        raise ProviderNotConfigured
    if await _duplicate_exists(conn, provider, model, exclude=config_id):
        raise ModelConfigExists
    await conn.execute(cfg.update().where(cfg.c.id == config_id).values(**changes, updated_at=now))
    if is_default is True:
        await _set_default(conn, now, config_id)
    elif is_default is False and row["is_default"]:
        # Hand the default to another config; with none left this one keeps it.
        await ensure_default(conn, now, exclude=config_id)
    return await get_model_config(conn, config_id)


async def delete_model_config(
    conn: Connection, now: dt.datetime, config_id: uuid.UUID
) -> bool:
    """Soft-delete a config and re-elect the default; ``False`` when missing."""
    await lock_model_catalog(conn)
    if await get_model_config(conn, config_id) is None:
        return False
    await conn.execute(
        cfg.update()
        .where(cfg.c.id == config_id)
        .values(deleted=True, deleted_at=now, is_default=False, updated_at=now)
    )
    await ensure_default(conn, now)
    return True


async def soft_delete_provider_configs(
    conn: Connection, now: dt.datetime, provider: str
) -> None:
    """Soft-delete every config of ``provider`` and re-elect the default."""
    await conn.execute(
        cfg.update()
        .where(cfg.c.provider == provider, cfg.c.deleted.is_(False))
        .values(deleted=True, deleted_at=now, is_default=False, updated_at=now)
    )
    await ensure_default(conn, now)
