"""A database of a test's own whose schema the test moves between revisions."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command

from chatd.store.migrate import alembic_config
from tests.conftest import PG_ENV
from tests.e2e.server import postgres_database


@contextmanager
def fresh_database(backend: str, tmp_path: Path) -> Iterator[str]:
    """An empty database (a file under ``tmp_path``, or one made and dropped on PostgreSQL)."""
    if backend == "sqlite":
        yield f"sqlite:///{tmp_path / 'migrate.db'}"
        return
    with postgres_database(os.environ[PG_ENV], "chatd_migrate") as url:
        yield url


def migrate(url: str, revision: str, *, up: bool = False) -> None:
    """Upgrade to ``"head"`` (or to ``revision`` with ``up``), or downgrade to ``revision``."""
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        with engine.begin() as conn:
            cfg = alembic_config(conn)
            if revision == "head" or up:
                command.upgrade(cfg, revision)
            else:
                command.downgrade(cfg, revision)
    finally:
        engine.dispose()


def chat_indexes(url: str) -> set[str]:
    engine = sa.create_engine(url.replace("postgresql://", "postgresql+psycopg://"))
    try:
        return {str(i["name"]) for i in sa.inspect(engine).get_indexes("chats")}
    finally:
        engine.dispose()
