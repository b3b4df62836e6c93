"""Cost of one stale-recovery pass over a large deployment (figures, not a test).

Every replica runs :func:`chatd.store.recovery.recover_stale` at start and every
``CHATD_STALE_RECOVERY_INTERVAL``; on SQLite every other write waits behind it. This seeds
100,000 chats (mostly waiting, one in a thousand with a queue, none stale, so a pass finds
nothing to do and only its reads cost) and times a pass with the partial index
``ix_chats_queued`` and with it dropped (the queue rule then walks every waiting chat).

Reproduce (SQLite in a temp file; PostgreSQL too when the URL is set, in a database created
and dropped on that server):

    .venv/bin/python bench/recovery_scan.py
    CHATD_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/recovery_scan.py

``--chats N`` and ``--rounds N`` shrink or grow the run.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from chatd.secretbox import SecretBox
from chatd.store.db import Database
from chatd.store.model_configs import insert_model_config
from chatd.store.providers import create_provider
from chatd.store.recovery import recover_stale
from chatd.store.tables import chat_queued_messages, chats, organizations, users

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _databases import backends  # noqa: E402

BATCH = 5_000
STALE_AFTER = 300.0
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)


async def insert(db: Database, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), BATCH):
        async with db.write() as conn:
            await conn.execute(table.insert(), rows[start : start + BATCH])


async def seed(db: Database, count: int) -> None:
    rng = random.Random(7)
    now = db.now()
    owner, org = uuid.uuid4(), uuid.uuid4()
    async with db.write() as conn:
        await conn.execute(
            organizations.insert().values(id=org, name="o", created_at=now, updated_at=now)
        )
        await conn.execute(
            users.insert().values(
                id=owner, email="o@x.test", username="o", created_at=now, updated_at=now
            )
        )
        await create_provider(conn, now, {"provider": "openai", "api_key": "sk"}, db.secrets)
        cfg = await insert_model_config(
            conn,
            provider="openai",
            model="gpt-4o",
            is_default=True,
            context_limit=128000,
            created_at=now,
            updated_at=now,
        )
    rows = []
    queued = []
    for i in range(count):
        chat_id = uuid.uuid4()
        has_queue = rng.random() < 0.001
        status = "running" if has_queue else rng.choice(["waiting"] * 6 + ["error", "completed"])
        rows.append(
            {
                "id": chat_id,
                "owner_id": owner,
                "organization_id": org,
                "title": f"chat {i}",
                "status": status,
                "heartbeat_at": now if status == "running" else None,
                "created_at": T0 + dt.timedelta(seconds=i),
                "updated_at": T0 + dt.timedelta(seconds=i),
                "last_model_config_id": cfg,
                "mcp_server_ids": [],
                "labels": {},
                "queue_length": 1 if has_queue else 0,
            }
        )
        if has_queue:
            queued.append({"chat_id": chat_id, "content": [], "created_at": now})
    await insert(db, chats, rows)
    await insert(db, chat_queued_messages, queued)
    async with db.write() as conn:
        await conn.execute(sa.text("ANALYZE"))


async def passes(db: Database, rounds: int) -> float:
    """Median ms of one recovery pass (which finds nothing to do)."""
    samples = []
    for _ in range(rounds):
        began = time.perf_counter()
        async with db.write() as conn:
            outbox = await recover_stale(conn, db.now(), STALE_AFTER)
        samples.append((time.perf_counter() - began) * 1000)
        assert not outbox.stream
    return statistics.median(samples)


async def run(name: str, url: str, count: int, rounds: int) -> None:
    db = Database(url, secrets=SecretBox(bytes(32)))
    try:
        await db.migrate()
        await seed(db, count)
        with_index = await passes(db, rounds)
        async with db.write() as conn:
            await conn.execute(sa.text("DROP INDEX ix_chats_queued"))
            await conn.execute(sa.text("ANALYZE"))
        without = await passes(db, rounds)
    finally:
        await db.close()
    print(f"{name:<10} {count:>8} chats  pass: {with_index:8.2f} ms with ix_chats_queued, ", end="")
    print(f"{without:8.2f} ms without")


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=50)
    args = parser.parse_args()
    async for name, url in backends():
        await run(name, url, args.chats, args.rounds)


if __name__ == "__main__":
    asyncio.run(main())
