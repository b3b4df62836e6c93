"""Migration 0011 (the chat event log, chats.stream_seq, replicas) matches the tables and goes
up and down."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from chatd.store.tables import metadata
from tests.store.schema import fresh_database, migrate


def test_the_chat_events_migration_goes_up_and_down(backend: str, tmp_path: Path) -> None:
    with fresh_database(backend, tmp_path) as url:
        migrate(url, "head")
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        try:
            with engine.connect() as conn:
                diff = compare_metadata(MigrationContext.configure(conn), metadata)
                assert diff == []
            migrate(url, "0010")
            with engine.connect() as conn:
                inspector = sa.inspect(conn)
                columns = {c["name"] for c in inspector.get_columns("chats")}
                assert "stream_seq" not in columns
                assert not {"chat_events", "replicas"} & set(inspector.get_table_names())
            migrate(url, "head")
            with engine.connect() as conn:
                inspector = sa.inspect(conn)
                assert "stream_seq" in {c["name"] for c in inspector.get_columns("chats")}
                assert {"chat_events", "replicas"} <= set(inspector.get_table_names())
        finally:
            engine.dispose()
