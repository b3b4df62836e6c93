"""Migration 0006 (templates; workspaces' template, kind and agent) up and down on both
backends, its schema matching ``store/tables.py``, and rows from before it filled in."""

from __future__ import annotations

import uuid
from pathlib import Path

import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from chatd.store.tables import metadata
from tests.store.schema import fresh_database, migrate

CHANGED = ("templates", "workspaces")


def sync_engine(url: str) -> sa.Engine:
    return sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))


def test_the_workspaces_migration_goes_up_and_down(backend: str, tmp_path: Path) -> None:
    with fresh_database(backend, tmp_path) as url:
        migrate(url, "0005", up=True)
        engine = sync_engine(url)
        owner, org = uuid.uuid4(), uuid.uuid4()
        try:
            with engine.begin() as conn:
                conn.execute(
                    sa.text(
                        "INSERT INTO organizations (id, name, created_at, updated_at) "
                        "VALUES (:id, 'o', '2026-01-01 00:00:00', '2026-01-01 00:00:00')"
                    ),
                    {"id": _id(backend, org)},
                )
                conn.execute(
                    sa.text(
                        "INSERT INTO users (id, email, username, created_at, updated_at) "
                        "VALUES (:id, 'a@b.c', 'a', '2026-01-01 00:00:00', "
                        "'2026-01-01 00:00:00')"
                    ),
                    {"id": _id(backend, owner)},
                )
                for name in ("one", "two"):
                    conn.execute(
                        sa.text(
                            "INSERT INTO workspaces (id, owner_id, organization_id, name, "
                            "created_at) VALUES (:id, :owner, :org, :name, "
                            "'2026-01-02 00:00:00')"
                        ),
                        {
                            "id": _id(backend, uuid.uuid4()),
                            "owner": _id(backend, owner),
                            "org": _id(backend, org),
                            "name": name,
                        },
                    )
            migrate(url, "head")
            with engine.connect() as conn:
                diff = compare_metadata(MigrationContext.configure(conn), metadata)
                assert [d for d in diff if any(t in repr(d) for t in CHANGED)] == []
                rows = conn.execute(
                    sa.text(
                        "SELECT kind, agent_status, agent_id, parameters, updated_at, "
                        "created_at FROM workspaces"
                    )
                ).all()
            assert len(rows) == 2
            assert {(r.kind, r.agent_status) for r in rows} == {("external", "disconnected")}
            assert rows[0].agent_id is not None and rows[0].agent_id != rows[1].agent_id
            assert all(str(r.updated_at) == str(r.created_at) for r in rows)
            migrate(url, "0005")
            with engine.connect() as conn:
                inspector = sa.inspect(conn)
                assert "templates" not in inspector.get_table_names()
                columns = {c["name"] for c in inspector.get_columns("workspaces")}
            assert columns == {"id", "owner_id", "organization_id", "name", "created_at"}
            migrate(url, "head")
        finally:
            engine.dispose()


def _id(backend: str, value: uuid.UUID) -> str:
    """A UUID as each backend stores it (SQLite: 32 hex digits)."""
    return value.hex if backend == "sqlite" else str(value)
