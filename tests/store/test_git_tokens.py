"""Users' GitHub tokens at rest: sealed, bound to their row, re-sealed by a rotation, and the
table's migration up and down. SQLite and PostgreSQL."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from chatd.secretbox import DecryptionFailed, SecretBox, key_id, key_id_of
from chatd.settings import Settings
from chatd.store import git_tokens
from chatd.store.db import Database
from chatd.store.secret_columns import Resealed, git_token_binding, reseal_all
from chatd.store.tables import metadata, user_git_tokens
from tests.helpers import TEST_SECRET_KEY, bootstrap_admin
from tests.store.schema import fresh_database, migrate

pytestmark = pytest.mark.anyio

NEW_KEY = bytes(range(100, 132))


async def test_a_token_is_sealed_for_its_row_and_follows_a_rotation(
    db: Database, settings: Settings
) -> None:
    admin = await bootstrap_admin(db, settings)
    async with db.write() as conn:
        await git_tokens.set_token(conn, db.now(), admin.id, "ghp_secret", db.secrets)
    async with db.read() as conn:
        stored = (await conn.execute(sa.select(user_git_tokens.c.token))).scalar_one()
        assert "ghp_secret" not in stored
        assert key_id_of(stored) == key_id(TEST_SECRET_KEY)
    # The sealed value names its row: under another user's id it does not open.
    with pytest.raises(DecryptionFailed):
        db.secrets.open(stored, git_token_binding(uuid.uuid4()))
    assert db.secrets.open(stored, git_token_binding(admin.id)) == "ghp_secret"

    rotating = SecretBox(NEW_KEY, [TEST_SECRET_KEY])
    async with db.write() as conn:
        assert await reseal_all(conn, rotating) == Resealed(resealed=1, dropped=0)
    new_only = Database(db.url, secrets=SecretBox(NEW_KEY))
    try:
        async with new_only.read() as conn:
            assert await git_tokens.get_token(conn, new_only.secrets, admin.id) == "ghp_secret"
    finally:
        await new_only.close()

    # With the key lost, the token is dropped (the user sets it again).
    async with db.write() as conn:
        done = await reseal_all(conn, SecretBox(bytes(range(50, 82))), drop_unreadable=True)
    assert done == Resealed(resealed=0, dropped=1)
    async with db.read() as conn:
        assert await git_tokens.token_updated_at(conn, admin.id) is None


def test_the_git_tokens_migration_goes_up_and_down(backend: str, tmp_path: Path) -> None:
    with fresh_database(backend, tmp_path) as url:
        migrate(url, "head")
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        try:
            with engine.connect() as conn:
                diff = compare_metadata(MigrationContext.configure(conn), metadata)
                assert [d for d in diff if "user_git_tokens" in repr(d)] == []
            migrate(url, "0006")
            with engine.connect() as conn:
                assert "user_git_tokens" not in sa.inspect(conn).get_table_names()
            migrate(url, "head")
            with engine.connect() as conn:
                assert "user_git_tokens" in sa.inspect(conn).get_table_names()
        finally:
            engine.dispose()
