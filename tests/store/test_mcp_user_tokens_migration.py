"""Migration 0010 (mcp_server_user_tokens, mcp_server_oauth2_states) matches the tables and
goes up and down."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from chatd.store.tables import metadata
from tests.store.schema import fresh_database, migrate

TABLES = ("mcp_server_user_tokens", "mcp_server_oauth2_states")


def test_the_mcp_user_tokens_migration_goes_up_and_down(backend: str, tmp_path: Path) -> None:
    with fresh_database(backend, tmp_path) as url:
        migrate(url, "head")
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        try:
            with engine.connect() as conn:
                diff = compare_metadata(MigrationContext.configure(conn), metadata)
                assert [d for d in diff if any(t in repr(d) for t in TABLES)] == []
            migrate(url, "0009")
            with engine.connect() as conn:
                names = sa.inspect(conn).get_table_names()
                assert not set(TABLES) & set(names) and "mcp_server_configs" in names
            migrate(url, "head")
            with engine.connect() as conn:
                assert set(TABLES) <= set(sa.inspect(conn).get_table_names())
        finally:
            engine.dispose()
