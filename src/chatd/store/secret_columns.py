"""The columns that hold secrets, what binds each value to its row, and passes over all of them.

These columns hold secrets: ``chat_providers.api_key`` (the deployment's key for a provider),
``user_chat_provider_keys.api_key`` (a user's own key), ``user_git_tokens.token`` (a user's
GitHub token), and an MCP server's ``oauth2_client_secret``, ``api_key_value`` and
``custom_headers`` (the header map as JSON text) in ``mcp_server_configs``, and a user's
OAuth2 ``access_token`` and ``refresh_token`` for an MCP server in ``mcp_server_user_tokens``.
Each stores a
sealed value (:mod:`chatd.secretbox`) or ``""`` for "no key". The store seals a secret as it
writes it (it knows the row, which the binding names) and opens it only when asked by the code
that calls the provider or the MCP server; listings and API answers never see it.

:func:`seal_plaintext` seals the values an older chatd stored in plain text (anything that is
not a ciphertext is taken as plain text, once: afterwards it is one); :func:`reseal_all`
re-encrypts every value under the current key (``chatd secrets rotate``), and can drop the
values no key opens (a lost key). Both run inside the caller's transaction, so either every
value changes or none does.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from chatd.secretbox import SecretBox, SecretError, is_ciphertext, key_id_of
from chatd.store.sql import Connection, RowDict
from chatd.store.tables import (
    chat_providers,
    mcp_server_configs,
    mcp_server_user_tokens,
    user_chat_provider_keys,
    user_git_tokens,
)


def provider_key_binding(provider_id: uuid.UUID) -> str:
    return f"chat_providers.api_key/{provider_id}"


def user_key_binding(user_id: uuid.UUID, provider_id: uuid.UUID) -> str:
    return f"user_chat_provider_keys.api_key/{user_id}/{provider_id}"


def git_token_binding(user_id: uuid.UUID) -> str:
    return f"user_git_tokens.token/{user_id}"


# The sealed columns of an MCP server config.
MCP_SECRET_COLUMNS = ("oauth2_client_secret", "api_key_value", "custom_headers")


def mcp_secret_binding(column: str, config_id: uuid.UUID) -> str:
    return f"mcp_server_configs.{column}/{config_id}"


# The sealed columns of a user's OAuth2 token for an MCP server.
MCP_TOKEN_COLUMNS = ("access_token", "refresh_token")


def mcp_token_binding(column: str, config_id: uuid.UUID, user_id: uuid.UUID) -> str:
    return f"mcp_server_user_tokens.{column}/{config_id}/{user_id}"


def seal(box: SecretBox, plaintext: str, binding: str) -> str:
    """The value to store for ``plaintext`` (``""``, no key, stays ``""``)."""
    return box.seal(plaintext, binding) if plaintext else ""


def open_sealed(box: SecretBox, stored: str, binding: str) -> str:
    """The key a stored value holds (``""`` for none); raises :class:`SecretError`."""
    return box.open(stored, binding) if stored else ""


class UnreadableSecret(Exception):
    """A stored value that the configured keys cannot open."""


class UnknownSecretKeys(Exception):
    """The database holds values sealed under keys this process does not have."""

    def __init__(self, unknown: set[str], box: SecretBox) -> None:
        names = ", ".join(sorted(unknown))
        super().__init__(
            f"the database holds secrets sealed under key {names}, which this server does not "
            f"have (its key is {box.key_id}). Every replica must use the same key: set "
            "CHATD_SECRET_KEY to the same value on each (or give each the same key file); "
            "after `chatd secrets rotate`, start with the new key."
        )
        self.unknown = unknown


def _mcp_binding(column: str) -> Callable[[Mapping[Any, Any]], str]:
    return lambda row: mcp_secret_binding(column, row["id"])


def _mcp_token_binding(column: str) -> Callable[[Mapping[Any, Any]], str]:
    return lambda row: mcp_token_binding(column, row["mcp_server_config_id"], row["user_id"])


@dataclass(frozen=True)
class _Column:
    what: str
    table: sa.Table
    key: tuple[sa.Column[Any], ...]
    value: sa.Column[str]
    binding: Callable[[Mapping[Any, Any]], str]
    # What dropping an unreadable value does: clear it (the row stays) or delete the row.
    drop_row: bool


_COLUMNS = (
    _Column(
        "a provider's key",
        chat_providers,
        (chat_providers.c.id,),
        chat_providers.c.api_key,
        lambda row: provider_key_binding(row["id"]),
        drop_row=False,
    ),
    _Column(
        "a user's own key",
        user_chat_provider_keys,
        (user_chat_provider_keys.c.user_id, user_chat_provider_keys.c.chat_provider_id),
        user_chat_provider_keys.c.api_key,
        lambda row: user_key_binding(row["user_id"], row["chat_provider_id"]),
        drop_row=True,
    ),
    _Column(
        "a user's GitHub token",
        user_git_tokens,
        (user_git_tokens.c.user_id,),
        user_git_tokens.c.token,
        lambda row: git_token_binding(row["user_id"]),
        drop_row=True,
    ),
    *(
        _Column(
            f"an MCP server's {name}",
            mcp_server_configs,
            (mcp_server_configs.c.id,),
            mcp_server_configs.c[name],
            _mcp_binding(name),
            drop_row=False,
        )
        for name in MCP_SECRET_COLUMNS
    ),
    *(
        _Column(
            f"a user's OAuth2 {name} for an MCP server",
            mcp_server_user_tokens,
            (mcp_server_user_tokens.c.mcp_server_config_id, mcp_server_user_tokens.c.user_id),
            mcp_server_user_tokens.c[name],
            _mcp_token_binding(name),
            drop_row=True,
        )
        for name in MCP_TOKEN_COLUMNS
    ),
)


async def _stored(conn: Connection, column: _Column) -> list[RowDict]:
    """Every non-empty value of ``column`` (as ``"secret"``) with its row's key, locked (on
    PostgreSQL)."""
    value = column.value
    query = sa.select(*column.key, value.label("secret")).where(value != "").with_for_update()
    return [row.as_dict() for row in await conn.execute(query)]


def _same_row(column: _Column, row: Mapping[Any, Any]) -> list[sa.ColumnElement[bool]]:
    """The row, as long as it still holds the value read."""
    return [*(c == row[c.name] for c in column.key), column.value == row["secret"]]


async def _replace(conn: Connection, column: _Column, row: Mapping[Any, Any], new: str) -> None:
    await conn.execute(
        column.table.update().where(*_same_row(column, row)).values({column.value.name: new})
    )


async def _drop(conn: Connection, column: _Column, row: Mapping[Any, Any]) -> None:
    if column.drop_row:
        await conn.execute(column.table.delete().where(*_same_row(column, row)))
    else:
        await _replace(conn, column, row, "")


async def seal_plaintext(conn: Connection, box: SecretBox) -> int:
    """Seal every stored value that is not a ciphertext yet; the number sealed."""
    sealed = 0
    for column in _COLUMNS:
        for row in await _stored(conn, column):
            if not is_ciphertext(row["secret"]):
                await _replace(conn, column, row, box.seal(row["secret"], column.binding(row)))
                sealed += 1
    return sealed


@dataclass(frozen=True)
class Resealed:
    resealed: int
    dropped: int  # unreadable values cleared (a provider's key) or deleted (a user's key)


async def reseal_all(
    conn: Connection, box: SecretBox, *, drop_unreadable: bool = False
) -> Resealed:
    """Open every stored value (with any key of ``box``) and seal it again under the current
    key. A value no key opens raises :class:`UnreadableSecret` (naming the row), after which
    the caller's transaction rolls back and nothing has changed; with ``drop_unreadable`` it
    is dropped instead (a provider's key becomes "no key"; a user's key is deleted)."""
    resealed = dropped = 0
    for column in _COLUMNS:
        for row in await _stored(conn, column):
            binding = column.binding(row)
            stored: str = row["secret"]
            try:
                plain = box.open(stored, binding) if is_ciphertext(stored) else stored
            except SecretError as exc:
                if drop_unreadable:
                    await _drop(conn, column, row)
                    dropped += 1
                    continue
                row_key = ", ".join(str(row[c.name]) for c in column.key)
                raise UnreadableSecret(f"{column.what} ({row_key}): {exc}") from None
            await _replace(conn, column, row, box.seal(plain, binding))
            resealed += 1
    return Resealed(resealed, dropped)


async def key_ids_in_use(conn: Connection) -> set[str]:
    """The ids of the keys that sealed the stored values."""
    found: set[str] = set()
    for column in _COLUMNS:
        value = column.value
        for stored in (await conn.execute(sa.select(value).where(value != ""))).scalars():
            kid = key_id_of(stored)
            if kid is not None:
                found.add(kid)
    return found


async def check_keys(conn: Connection, box: SecretBox) -> None:
    """Raise :class:`UnknownSecretKeys` when a stored value names a key ``box`` lacks."""
    unknown = await key_ids_in_use(conn) - box.key_ids
    if unknown:
        raise UnknownSecretKeys(unknown, box)
