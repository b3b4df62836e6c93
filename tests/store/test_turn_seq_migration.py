"""Migration 0012 (chats.turn_seq) goes up and down."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from tests.store.schema import fresh_database, migrate


def _columns(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return {c["name"] for c in sa.inspect(conn).get_columns("chats")}


def test_the_turn_seq_migration_goes_up_and_down(backend: str, tmp_path: Path) -> None:
    with fresh_database(backend, tmp_path) as url:
        migrate(url, "head")
        engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
        try:
            assert "turn_seq" in _columns(engine)
            migrate(url, "0011")
            columns = _columns(engine)
            assert "turn_seq" not in columns and "stream_seq" in columns
            migrate(url, "head")
            assert "turn_seq" in _columns(engine)
        finally:
            engine.dispose()
