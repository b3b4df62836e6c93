"""Migration 0009 (chats.awaiting_until and its index) matches the table and goes up and down."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from chatd.store.tables import metadata
from tests.store.schema import fresh_database, migrate


def test_the_awaiting_migration_goes_up_and_down(backend: str, tmp_path: Path) -> None:
    with fresh_database(backend, tmp_path) as url:
        migrate(url, "0009", up=True)
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        try:
            with engine.connect() as conn:
                diff = compare_metadata(MigrationContext.configure(conn), metadata)
                assert [d for d in diff if "awaiting" in repr(d)] == []
            migrate(url, "0008")
            with engine.connect() as conn:
                columns = {c["name"] for c in sa.inspect(conn).get_columns("chats")}
                indexes = {i["name"] for i in sa.inspect(conn).get_indexes("chats")}
                assert "awaiting_until" not in columns and "ix_chats_awaiting" not in indexes
            migrate(url, "head")
            with engine.connect() as conn:
                columns = {c["name"] for c in sa.inspect(conn).get_columns("chats")}
                assert "awaiting_until" in columns
        finally:
            engine.dispose()
