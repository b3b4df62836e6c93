"""Provider keys at rest: sealed on write, opened only where a client is built, sealed when an
older chatd left them in plain text, re-sealed under a new key. SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from chatd.engine.models import resolve_model
from chatd.llm.types import ProviderError
from chatd.sdk.chats import ChatErrorKind
from chatd.secretbox import SecretBox, is_ciphertext, key_id, key_id_of
from chatd.settings import to_async_url
from chatd.store import providers as pq
from chatd.store.db import Database, sqlite_path
from chatd.store.secret_columns import (
    Resealed,
    UnknownSecretKeys,
    UnreadableSecret,
    reseal_all,
)
from chatd.store.tables import chat_providers, metadata, user_chat_provider_keys
from tests.helpers import TEST_SECRET_KEY, Api, ApiUser, bootstrap_admin, seed_model_config
from tests.store.schema import fresh_database, migrate

pytestmark = pytest.mark.anyio

PROVIDERS = "/api/experimental/chats/providers"
MODEL_CONFIGS = "/api/experimental/chats/model-configs"
USER_CONFIGS = "/api/experimental/chats/user-provider-configs"
CENTRAL_KEY = "sk-central-7Hq2Zr9XkP4mWd1B"
OWN_KEY = "sk-own-Jf83Lq0ZpA6tVn2C"
NEW_KEY = bytes(range(100, 132))


class Factory:
    """Records what each model client would be built from."""

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def __call__(self, **kwargs: Any) -> object:
        self.calls.append(kwargs)
        return object()


async def raw_keys(db: Database) -> dict[str, list[str]]:
    """Every stored value of both key columns, as the database holds it."""
    async with db.read() as conn:
        return {
            table.name: list((await conn.execute(sa.select(table.c.api_key))).scalars())
            for table in (chat_providers, user_chat_provider_keys)
        }


async def everything_stored(db: Database) -> bytes:
    """The bytes a reader of the database's storage would see.

    SQLite: the database file and its -wal and -shm files. PostgreSQL: every row of every
    table, as text.
    """
    path = sqlite_path(db.url)
    if path is not None:
        files = [path, *(path.with_name(path.name + s) for s in ("-wal", "-shm"))]
        return b"".join(f.read_bytes() for f in files if f.exists())
    chunks: list[str] = []
    async with db.read() as conn:
        for table in metadata.sorted_tables:
            query = sa.text(f'SELECT row_to_json(t)::text FROM "{table.name}" t')
            chunks.extend((await conn.execute(query)).scalars())
    return "\n".join(chunks).encode()


async def open_keys(db: Database, config_id: uuid.UUID, user: ApiUser) -> list[str]:
    factory = Factory()
    async with db.read() as conn:
        await resolve_model(
            conn,
            config_id,
            user.id,
            secrets=db.secrets,
            client_factory=factory,  # type: ignore[arg-type]
        )
    return [call["api_key"] for call in factory.calls]


async def byok_setup(api: Api, admin: ApiUser, member: ApiUser) -> tuple[str, uuid.UUID]:
    """An openai provider with a central key that also takes users' own keys, and the
    member's own key for it. Returns the provider's id and a model config on it."""
    r = await api.request(
        "POST",
        PROVIDERS,
        admin,
        json={
            "provider": "openai",
            "api_key": CENTRAL_KEY,
            "allow_user_api_key": True,
            "allow_central_api_key_fallback": True,
        },
    )
    assert r.status_code == 201, r.text
    provider_id = str(r.json()["id"])
    r = await api.request(
        "POST",
        MODEL_CONFIGS,
        admin,
        json={"provider": "openai", "model": "gpt-4o", "context_limit": 128000},
    )
    assert r.status_code == 201, r.text
    config_id = uuid.UUID(r.json()["id"])
    r = await api.request("PUT", f"{USER_CONFIGS}/{provider_id}", member, json={"api_key": OWN_KEY})
    assert r.status_code == 200, r.text
    return provider_id, config_id


async def test_keys_stored_through_the_api_are_nowhere_in_plain_text(
    db: Database, api: Api, admin: ApiUser, member: ApiUser
) -> None:
    _, config_id = await byok_setup(api, admin, member)

    stored = await everything_stored(db)
    assert CENTRAL_KEY.encode() not in stored and OWN_KEY.encode() not in stored
    raw = await raw_keys(db)
    for value in raw["chat_providers"] + raw["user_chat_provider_keys"]:
        assert is_ciphertext(value) and key_id_of(value) == key_id(TEST_SECRET_KEY)

    # They open where a client is built: the member's own key, the admin's the central one.
    assert await open_keys(db, config_id, member) == [OWN_KEY]
    assert await open_keys(db, config_id, admin) == [CENTRAL_KEY]

    # No answer carries them (or their sealed form).
    sealed = raw["chat_providers"] + raw["user_chat_provider_keys"]
    for user, path in [
        (admin, PROVIDERS),
        (member, USER_CONFIGS),
        (member, "/api/experimental/chats/models"),
        (admin, MODEL_CONFIGS),
    ]:
        text = (await api.request("GET", path, user)).text
        assert CENTRAL_KEY not in text and OWN_KEY not in text
        assert not any(value in text for value in sealed)


async def test_a_key_changed_through_the_api_is_sealed_too(
    db: Database, api: Api, admin: ApiUser, member: ApiUser
) -> None:
    provider_id, config_id = await byok_setup(api, admin, member)
    r = await api.request(
        "PATCH", f"{PROVIDERS}/{provider_id}", admin, json={"api_key": "sk-rotated-central"}
    )
    assert r.status_code == 200 and r.json()["has_api_key"] is True
    r = await api.request(
        "PUT", f"{USER_CONFIGS}/{provider_id}", member, json={"api_key": "sk-rotated-own"}
    )
    assert r.status_code == 200
    stored = await everything_stored(db)
    assert b"sk-rotated" not in stored
    assert await open_keys(db, config_id, admin) == ["sk-rotated-central"]
    assert await open_keys(db, config_id, member) == ["sk-rotated-own"]


async def test_a_sealed_key_copied_to_another_row_does_not_open(
    db: Database, api: Api, admin: ApiUser, member: ApiUser
) -> None:
    """Someone with write access to the database copies the provider's sealed key onto
    another provider: it is not taken as that provider's key."""
    await byok_setup(api, admin, member)
    other_config = await seed_model_config(
        db, provider="anthropic", model="claude-sonnet-4", is_default=False
    )
    async with db.write() as conn:
        sealed = (
            await conn.execute(
                sa.select(chat_providers.c.api_key).where(chat_providers.c.provider == "openai")
            )
        ).scalar_one()
        await conn.execute(
            chat_providers.update()
            .where(chat_providers.c.provider == "anthropic")
            .values(api_key=sealed)
        )
    with pytest.raises(ProviderError) as raised:
        await open_keys(db, other_config, admin)
    assert raised.value.error.kind == ChatErrorKind.config
    assert "cannot be decrypted" in raised.value.error.detail


async def test_resealing_moves_every_key_to_the_new_key(
    db: Database, api: Api, admin: ApiUser, member: ApiUser
) -> None:
    _, config_id = await byok_setup(api, admin, member)
    rotating = SecretBox(NEW_KEY, [TEST_SECRET_KEY])
    async with db.write() as conn:
        assert await reseal_all(conn, rotating) == Resealed(resealed=2, dropped=0)
    raw = await raw_keys(db)
    assert {key_id_of(v) for v in raw["chat_providers"] + raw["user_chat_provider_keys"]} == {
        key_id(NEW_KEY)
    }
    only_new = Database(db.url, secrets=SecretBox(NEW_KEY))
    try:
        assert await open_keys(only_new, config_id, member) == [OWN_KEY]
        assert await open_keys(only_new, config_id, admin) == [CENTRAL_KEY]
    finally:
        await only_new.close()


async def test_a_reseal_that_meets_an_unreadable_key_changes_nothing(
    db: Database, api: Api, admin: ApiUser, member: ApiUser
) -> None:
    await byok_setup(api, admin, member)
    before = await raw_keys(db)
    without_old = SecretBox(NEW_KEY)
    with pytest.raises(UnreadableSecret) as raised:
        async with db.write() as conn:
            await reseal_all(conn, without_old)
    assert key_id(TEST_SECRET_KEY) in str(raised.value)
    assert await raw_keys(db) == before


async def test_with_the_old_key_lost_unreadable_keys_can_be_dropped(
    db: Database, api: Api, admin: ApiUser, member: ApiUser
) -> None:
    """The provider keeps its row without a key; the member's own key is gone; a key stored
    under the new key is kept."""
    _, config_id = await byok_setup(api, admin, member)
    new_only = SecretBox(NEW_KEY)
    kept = await seed_model_config(db, provider="anthropic", model="c", is_default=False)
    async with db.write() as conn:
        row = await pq.get_provider_by_name(conn, "anthropic")
        assert row is not None
        await pq.update_provider(conn, db.now(), row["id"], {"api_key": "sk-new"}, new_only)
    async with db.write() as conn:
        done = await reseal_all(conn, new_only, drop_unreadable=True)
    assert done == Resealed(resealed=1, dropped=2)
    r = await api.request("GET", PROVIDERS, admin)
    has_key = {p["provider"]: p["has_api_key"] for p in r.json() if p["source"] == "database"}
    assert has_key == {"anthropic": True, "openai": False}
    assert (await raw_keys(db))["user_chat_provider_keys"] == []
    reopened = Database(db.url, secrets=new_only)
    try:
        assert await open_keys(reopened, kept, admin) == ["sk-new"]
        with pytest.raises(ProviderError) as raised:
            await open_keys(reopened, config_id, member)
        assert raised.value.error.kind == ChatErrorKind.missing_key
    finally:
        await reopened.close()


async def test_a_server_without_the_key_of_stored_secrets_refuses_to_start(
    db: Database, api: Api, admin: ApiUser, member: ApiUser
) -> None:
    """What a replica started with another key (or another replica's key file) meets."""
    await byok_setup(api, admin, member)
    before = await raw_keys(db)
    stranger = Database(db.url, secrets=SecretBox(NEW_KEY))
    try:
        with pytest.raises(UnknownSecretKeys) as raised:
            await stranger.migrate()
    finally:
        await stranger.close()
    assert key_id(TEST_SECRET_KEY) in str(raised.value)
    assert "CHATD_SECRET_KEY" in str(raised.value)
    assert await raw_keys(db) == before


# ---- an older database, with plain-text keys -----------------------------------------------


async def test_migrating_an_old_database_seals_its_plain_keys_once(
    backend: str, tmp_path: Path, settings: Any
) -> None:
    with fresh_database(backend, tmp_path) as url:
        migrate(url, "head")  # the schema an older chatd made
        box = SecretBox(TEST_SECRET_KEY)
        db = Database(to_async_url(url), secrets=box)
        try:
            owner = await bootstrap_admin(db, settings)
            now = db.now()
            openai_id, anthropic_id = uuid.uuid4(), uuid.uuid4()
            async with db.write() as conn:  # as the older chatd wrote them: in plain text
                for provider_id, name, key, own_keys in [
                    (openai_id, "openai", CENTRAL_KEY, False),
                    (anthropic_id, "anthropic", "", True),  # no key: users bring theirs
                ]:
                    await conn.execute(
                        chat_providers.insert().values(
                            id=provider_id,
                            provider=name,
                            api_key=key,
                            allow_user_api_key=own_keys,
                            created_at=now,
                            updated_at=now,
                        )
                    )
                await conn.execute(
                    user_chat_provider_keys.insert().values(
                        user_id=owner.id,
                        chat_provider_id=anthropic_id,
                        api_key=OWN_KEY,
                        created_at=now,
                        updated_at=now,
                    )
                )
            config_id = await seed_model_config(db, provider="openai", model="gpt-4o")
            anthropic_config = await seed_model_config(
                db, provider="anthropic", model="claude-sonnet-4", is_default=False
            )

            await db.migrate()

            raw = await raw_keys(db)
            assert raw["chat_providers"].count("") == 1
            sealed = [v for v in raw["chat_providers"] if v] + raw["user_chat_provider_keys"]
            assert len(sealed) == 2 and all(is_ciphertext(v) for v in sealed)
            stored = await everything_stored(db)
            assert CENTRAL_KEY.encode() not in stored and OWN_KEY.encode() not in stored
            assert await open_keys(db, config_id, owner) == [CENTRAL_KEY]
            assert await open_keys(db, anthropic_config, owner) == [OWN_KEY]

            await db.migrate()  # sealed values are never taken for plain text again
            assert await raw_keys(db) == raw
        finally:
            await db.close()
