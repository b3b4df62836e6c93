"""Databases for the benchmarks: a fresh PostgreSQL one, and every backend to run on."""

from __future__ import annotations

import contextlib
import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator

import psycopg

from chatd.settings import to_async_url

PG_ENV = "CHATD_BENCH_DATABASE_URL"


@contextlib.contextmanager
def pg_database(base: str) -> Iterator[str]:
    """A database created (and afterwards dropped) on the server at ``base``."""
    name = f"chatd_bench_{uuid.uuid4().hex[:10]}"
    admin = base.replace("postgresql+asyncpg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield to_async_url(admin.rsplit("/", 1)[0] + "/" + name)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def backends() -> AsyncIterator[tuple[str, str]]:
    """("sqlite", a file in a temporary dir), then ("postgresql", a fresh database) when
    ``CHATD_BENCH_DATABASE_URL`` is set."""
    with tempfile.TemporaryDirectory() as tmp:
        yield "sqlite", f"sqlite:///{tmp}/bench.db"
    if os.environ.get(PG_ENV):
        with pg_database(os.environ[PG_ENV]) as url:
            yield "postgresql", url
