"""MCP server configurations.

Secrets (the OAuth2 client secret, the API key's value, the custom header map) are sealed
as they are written (:mod:`chatd.store.secret_columns`); rows read here carry the sealed
text. Only :func:`auth_headers` opens them, for the code that connects to the server.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

import sqlalchemy as sa

from chatd.sdk.mcp import MCPAuthType, MCPServerConfig
from chatd.secretbox import SecretBox
from chatd.store.secret_columns import MCP_SECRET_COLUMNS, mcp_secret_binding, open_sealed, seal
from chatd.store.sql import Connection, RowDict
from chatd.store.tables import mcp_server_configs

mcp = mcp_server_configs
_ALL = sa.select(mcp).order_by(mcp.c.display_name, mcp.c.slug, mcp.c.id)


class SlugExists(Exception):
    """Another configuration has that slug."""


def config_view(
    row: Mapping[str, Any], *, admin: bool, connected: bool = False
) -> MCPServerConfig:
    """The API's view of a row; the auth settings only for a site owner. ``connected``: the
    caller holds an OAuth2 token for the server (what ``auth_connected`` shows for an
    ``oauth2`` server; any other is usable without one)."""

    def admin_only(name: str) -> str | None:
        value: str = row[name]
        return value or None if admin else None

    return MCPServerConfig(
        id=row["id"],
        display_name=row["display_name"],
        slug=row["slug"],
        description=row["description"],
        icon_url=row["icon_url"],
        transport=row["transport"],
        url=row["url"],
        auth_type=row["auth_type"],
        oauth2_client_id=admin_only("oauth2_client_id"),
        has_oauth2_secret=admin and row["oauth2_client_secret"] != "",
        oauth2_auth_url=admin_only("oauth2_auth_url"),
        oauth2_token_url=admin_only("oauth2_token_url"),
        oauth2_revocation_url=admin_only("oauth2_revocation_url"),
        oauth2_scopes=admin_only("oauth2_scopes"),
        api_key_header=admin_only("api_key_header"),
        has_api_key=admin and row["api_key_value"] != "",
        has_custom_headers=admin and row["custom_headers"] != "",
        tool_allow_list=list(row["tool_allow_list"] or []),
        tool_deny_list=list(row["tool_deny_list"] or []),
        availability=row["availability"],
        enabled=row["enabled"],
        model_intent=row["model_intent"],
        allow_in_plan_mode=row["allow_in_plan_mode"],
        created_at=row["created_at"],
        updated_at=row["updated_at"],
        auth_connected=connected or row["auth_type"] != MCPAuthType.oauth2.value,
    )


async def list_configs(conn: Connection, *, enabled_only: bool = False) -> list[RowDict]:
    query = _ALL.where(mcp.c.enabled.is_(True)) if enabled_only else _ALL
    return [row.as_dict() for row in await conn.execute(query)]


async def get_config(conn: Connection, config_id: uuid.UUID) -> RowDict | None:
    row = (await conn.execute(sa.select(mcp).where(mcp.c.id == config_id))).first()
    return row.as_dict() if row else None


async def get_configs(conn: Connection, ids: Iterable[uuid.UUID]) -> list[RowDict]:
    """The rows of ``ids`` that exist, in the order given."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    rows = {
        row.id: row.as_dict()
        for row in await conn.execute(sa.select(mcp).where(mcp.c.id.in_(wanted)))
    }
    return [rows[i] for i in wanted if i in rows]


async def unusable_ids(conn: Connection, ids: Iterable[uuid.UUID]) -> list[uuid.UUID]:
    """The ids (in the order given, once each) that name no enabled configuration."""
    wanted = list(dict.fromkeys(ids))
    if not wanted:
        return []
    query = sa.select(mcp.c.id).where(mcp.c.id.in_(wanted), mcp.c.enabled.is_(True))
    found = set((await conn.execute(query)).scalars())
    return [i for i in wanted if i not in found]


def _sealed(secrets: SecretBox, config_id: uuid.UUID, values: dict[str, Any]) -> dict[str, Any]:
    out = dict(values)
    for name in MCP_SECRET_COLUMNS:
        if name not in out:
            continue
        plain = out[name]
        if isinstance(plain, dict):
            plain = json.dumps(plain, sort_keys=True) if plain else ""
        out[name] = seal(secrets, plain, mcp_secret_binding(name, config_id))
    return out


async def _slug_taken(conn: Connection, slug: str, other_than: uuid.UUID | None) -> bool:
    query = sa.select(mcp.c.id).where(mcp.c.slug == slug)
    if other_than is not None:
        query = query.where(mcp.c.id != other_than)
    return (await conn.execute(query)).first() is not None


async def create_config(
    conn: Connection, now: dt.datetime, values: dict[str, Any], secrets: SecretBox
) -> RowDict:
    """Insert a configuration (secrets in plain text, sealed here); raises
    :class:`SlugExists`."""
    if await _slug_taken(conn, values["slug"], None):
        raise SlugExists
    config_id = uuid.uuid4()
    await conn.execute(
        mcp.insert().values(
            id=config_id, created_at=now, updated_at=now, **_sealed(secrets, config_id, values)
        )
    )
    row = await get_config(conn, config_id)
    assert row is not None
    return row


async def lock_config(conn: Connection, config_id: uuid.UUID) -> RowDict | None:
    query = sa.select(mcp).where(mcp.c.id == config_id).with_for_update()
    row = (await conn.execute(query)).first()
    return row.as_dict() if row else None


async def update_config(
    conn: Connection,
    now: dt.datetime,
    config_id: uuid.UUID,
    values: dict[str, Any],
    secrets: SecretBox,
) -> RowDict:
    """Change a configuration (new secrets in plain text, sealed here); raises
    :class:`SlugExists`."""
    if "slug" in values and await _slug_taken(conn, values["slug"], config_id):
        raise SlugExists
    await conn.execute(
        mcp.update()
        .where(mcp.c.id == config_id)
        .values(**_sealed(secrets, config_id, values), updated_at=now)
    )
    row = await get_config(conn, config_id)
    assert row is not None
    return row


async def delete_config(conn: Connection, config_id: uuid.UUID) -> bool:
    result = await conn.execute(mcp.delete().where(mcp.c.id == config_id))
    return bool(result.rowcount)


def open_secret(secrets: SecretBox, row: Mapping[str, Any], name: str) -> str:
    """One sealed column of the row, opened (``""``: none); raises ``SecretError``."""
    return open_sealed(secrets, row[name], mcp_secret_binding(name, row["id"]))


def auth_headers(secrets: SecretBox, row: Mapping[str, Any]) -> dict[str, str]:
    """The headers every request to the server carries, by its auth type (an OAuth2 server's
    come from the user's token: none here). Raises ``SecretError``."""
    auth = row["auth_type"]
    if auth == MCPAuthType.api_key.value:
        value = open_secret(secrets, row, "api_key_value")
        return {row["api_key_header"]: value} if row["api_key_header"] and value else {}
    if auth == MCPAuthType.custom_headers.value:
        text = open_secret(secrets, row, "custom_headers")
        headers: dict[str, str] = json.loads(text) if text else {}
        return headers
    return {}
