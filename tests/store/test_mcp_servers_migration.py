"""Migration 0008 (mcp_server_configs) matches the tables and goes up and down."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from chatd.store.tables import metadata
from tests.store.schema import fresh_database, migrate


def test_the_mcp_servers_migration_goes_up_and_down(backend: str, tmp_path: Path) -> None:
    with fresh_database(backend, tmp_path) as url:
        migrate(url, "head")
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        try:
            with engine.connect() as conn:
                diff = compare_metadata(MigrationContext.configure(conn), metadata)
                assert [d for d in diff if "mcp_server_configs" in repr(d)] == []
            migrate(url, "0007")
            with engine.connect() as conn:
                assert "mcp_server_configs" not in sa.inspect(conn).get_table_names()
            migrate(url, "head")
            with engine.connect() as conn:
                assert "mcp_server_configs" in sa.inspect(conn).get_table_names()
        finally:
            engine.dispose()
