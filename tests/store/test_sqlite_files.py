"""The SQLite database, its WAL and shared-memory files: readable by their owner only."""

from __future__ import annotations

import os
import sqlite3
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from chatd.settings import Settings
from chatd.store.db import Database
from chatd.store.sqlite import switch_to_wal
from tests.helpers import TEST_SECRETS, bootstrap_admin, seed_model_config

pytestmark = pytest.mark.anyio


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def usual_umask() -> Iterator[None]:
    """The umask most systems start users with, which leaves files world-readable."""
    old = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(old)


async def test_a_new_database_and_its_wal_and_shm_are_0600(
    tmp_path: Path, usual_umask: None, settings: Settings
) -> None:
    path = tmp_path / "chatd.db"
    db = Database(f"sqlite:///{path}", secrets=TEST_SECRETS)
    try:
        await db.migrate()
        await bootstrap_admin(db, settings)
        await seed_model_config(db)
        files = [path, path.with_name("chatd.db-wal"), path.with_name("chatd.db-shm")]
        assert all(f.exists() for f in files)  # the WAL is in use while the database is open
        assert [mode(f) for f in files] == [0o600, 0o600, 0o600]
    finally:
        await db.close()


async def test_files_an_older_chatd_left_readable_are_narrowed(
    tmp_path: Path, usual_umask: None
) -> None:
    path = tmp_path / "chatd.db"
    first = Database(f"sqlite:///{path}", secrets=TEST_SECRETS)
    try:
        await first.migrate()
        files = [path, path.with_name("chatd.db-wal"), path.with_name("chatd.db-shm")]
        for f in files:
            os.chmod(f, 0o644)  # as SQLite made them before chatd created the file itself
        again = Database(f"sqlite:///{path}", secrets=TEST_SECRETS)
        await again.close()
        assert [mode(f) for f in files] == [0o600, 0o600, 0o600]
    finally:
        await first.close()


class _LockedAtFirst:
    """A connection whose WAL switch meets a file another connection is still opening:
    SQLite answers "database is locked" at once, without its busy handler."""

    def __init__(self, refusals: int) -> None:
        self.refusals = refusals
        self.calls = 0

    def execute(self, sql: str) -> None:
        self.calls += 1
        if self.calls <= self.refusals:
            raise sqlite3.OperationalError("database is locked")


def test_the_wal_switch_waits_out_a_file_being_opened() -> None:
    raw = _LockedAtFirst(refusals=3)
    switch_to_wal(raw, busy_timeout_ms=5_000)  # type: ignore[arg-type]
    assert raw.calls == 4
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        never = _LockedAtFirst(refusals=10**9)
        switch_to_wal(never, busy_timeout_ms=50)  # type: ignore[arg-type]
