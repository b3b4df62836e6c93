"""Migration 0004 (the audit log) up and down on both backends, and its schema matching
``store/tables.py``."""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from chatd.store.tables import metadata
from tests.store.schema import fresh_database, migrate


def sync_engine(url: str) -> sa.Engine:
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))


def test_the_audit_migration_goes_up_and_down(backend: str, tmp_path: Path) -> None:
    with fresh_database(backend, tmp_path) as url:
        migrate(url, "head")
        engine = sync_engine(url)
        try:
            with engine.connect() as conn:
                assert "audit_logs" in sa.inspect(conn).get_table_names()
                diff = compare_metadata(MigrationContext.configure(conn), metadata)
            assert [d for d in diff if "audit_logs" in repr(d)] == []
            migrate(url, "0003")
            with engine.connect() as conn:
                assert "audit_logs" not in sa.inspect(conn).get_table_names()
            migrate(url, "head")
            with engine.begin() as conn:
                conn.execute(
                    sa.text(
                        "INSERT INTO audit_logs (id, time, action, resource_type, status_code,"
                        " additional_fields) VALUES (:id, :t, 'login', 'api_key', 401, '{}')"
                    ),
                    {"id": "0f0e0d0c-0b0a-0908-0706-050403020100", "t": "2026-01-01 00:00:00"},
                )
                seq = conn.execute(sa.text("SELECT seq FROM audit_logs")).scalar_one()
            assert seq == 1
        finally:
            engine.dispose()

