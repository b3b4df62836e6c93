"""Latency of ``GET /api/experimental/chats`` over a large history (figures, not a test).

Seeds 100,000 root chats for one owner (pinned, archived, labelled, with diff statuses, children
and assistant replies, some unread) plus 20,000 chats of 20 other users, straight into the
store, then times list requests through the real ASGI app in-process and prints p50/p99.

Reproduce (SQLite in a temp file; PostgreSQL too when the URL is set, in a database created
and dropped on that server):

    .venv/bin/python bench/list_chats.py
    CHATD_BENCH_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres \\
        .venv/bin/python bench/list_chats.py

``--chats N`` and ``--rounds N`` shrink or grow the run.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx2
import sqlalchemy as sa

from chatd.api.app import create_app
from chatd.bootstrap import create_first_user
from chatd.secret_key import box_for
from chatd.settings import Settings
from chatd.store.db import Database
from chatd.store.model_configs import insert_model_config
from chatd.store.providers import create_provider
from chatd.store.tables import chat_diff_statuses, chat_messages, chats, organizations, users

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _databases import backends  # noqa: E402

BATCH = 5_000
OTHER_USERS = 20
T0 = dt.datetime(2024, 1, 1, tzinfo=dt.UTC)
VERBS = ("Fix", "Add", "Refactor", "Document", "Speed up", "Debug", "Remove", "Test")
NOUNS = ("login flow", "flaky test", "search API", "billing page", "CI pipeline", "cache layer")
NOUNS += ("websocket relay", "migration", "dark mode", "rate limiter", "CLI parser", "docs")


def _chat_row(rng: random.Random, owner: uuid.UUID, org: uuid.UUID, cfg: uuid.UUID, i: int) -> Any:
    archived = rng.random() < 0.10
    labels = {"team": "search"} if rng.random() < 0.05 else {"team": rng.choice(["core", "web"])}
    return {
        "id": uuid.uuid4(),
        "owner_id": owner,
        "organization_id": org,
        "title": f"{rng.choice(VERBS)} {rng.choice(NOUNS)} #{i}",
        "status": rng.choice(["waiting", "completed", "error"]),
        "created_at": T0 + dt.timedelta(seconds=i * 60),
        "updated_at": T0 + dt.timedelta(seconds=i * 60 + rng.randrange(60)),
        "last_model_config_id": cfg,
        "archived": archived,
        "mcp_server_ids": [],
        "labels": labels if rng.random() < 0.7 else {},
        "pin_order": 0,
    }


async def _insert(db: Database, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    for start in range(0, len(rows), BATCH):
        async with db.write() as conn:
            await conn.execute(table.insert(), rows[start : start + BATCH])


async def seed(db: Database, owner: uuid.UUID, org: uuid.UUID, count: int) -> list[uuid.UUID]:
    """The owner's chats (returned in list order, unarchived roots only) and everyone else's."""
    rng = random.Random(7)
    now = db.now()
    async with db.write() as conn:
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
    others = [uuid.uuid4() for _ in range(OTHER_USERS)]
    await _insert(
        db,
        users,
        [
            {"id": u, "email": f"u{n}@x.test", "username": f"u{n}", "created_at": now}
            | {"updated_at": now}
            for n, u in enumerate(others)
        ],
    )
    rows = [_chat_row(rng, owner, org, cfg, i) for i in range(count)]
    pinned = [r for r in rows if not r["archived"]][-20:]
    for n, row in enumerate(reversed(pinned), start=1):
        row["pin_order"] = n
    rows += [_chat_row(rng, rng.choice(others), org, cfg, i) for i in range(count // 5)]
    await _insert(db, chats, rows)

    roots = [r for r in rows if r["owner_id"] == owner]
    kids = []
    for parent in rng.sample(roots, len(roots) // 50):
        kid = _chat_row(rng, owner, org, cfg, 0) | {"archived": parent["archived"]}
        kids.append(kid | {"parent_chat_id": parent["id"], "root_chat_id": parent["id"]})
    await _insert(db, chats, kids)

    replied = rng.sample(rows + kids, len(rows) // 3)
    await _insert(
        db,
        chat_messages,
        [
            {"chat_id": r["id"], "created_at": now, "role": "assistant", "content": []}
            for r in replied
        ],
    )
    async with db.write() as conn:  # most replies are read: the cursor sits on them
        newest = (
            sa.select(sa.func.max(chat_messages.c.id))
            .where(chat_messages.c.chat_id == chats.c.id)
            .scalar_subquery()
        )
        await conn.execute(
            chats.update()
            .where(sa.func.length(chats.c.title) % 10 != 0)
            .values(last_read_message_id=newest)
        )
    await _insert(
        db,
        chat_diff_statuses,
        [
            {
                "chat_id": r["id"],
                "url": f"https://github.com/acme/repo/pull/{n}",
                "pull_request_state": rng.choice(["open", "merged", "closed"]),
                "pull_request_title": r["title"],
                "pr_number": n,
                "git_remote_origin": "git@github.com:acme/repo.git",
                "stale_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for n, r in enumerate(rng.sample(rows, len(rows) // 5), start=1)
        ],
    )
    listed = [r for r in roots if not r["archived"]]
    listed.sort(key=lambda r: (r["pin_order"] == 0, r["pin_order"], r["updated_at"], r["id"]))
    pins = [r for r in listed if r["pin_order"]]
    rest = sorted(
        (r for r in listed if not r["pin_order"]), key=lambda r: (r["updated_at"], r["id"])
    )
    return [r["id"] for r in pins] + [r["id"] for r in reversed(rest)]


async def measure(
    client: httpx2.AsyncClient, headers: dict[str, str], params: dict[str, str], rounds: int
) -> tuple[float, float, int]:
    """p50 and p99 in ms over ``rounds`` requests (after a warm-up), and the page size."""
    size = 0
    for _ in range(10):
        r = await client.get("/api/experimental/chats", headers=headers, params=params)
        assert r.status_code == 200, r.text
        size = len(r.json())
    samples = []
    for _ in range(rounds):
        start = time.perf_counter()
        r = await client.get("/api/experimental/chats", headers=headers, params=params)
        samples.append((time.perf_counter() - start) * 1000)
        assert r.status_code == 200
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return statistics.median(samples), cuts[98], size


async def run(name: str, url: str, count: int, rounds: int) -> list[tuple[str, ...]]:
    with tempfile.TemporaryDirectory() as tmp:
        settings = Settings(
            data_dir=Path(tmp),
            config_dir=Path(tmp),
            first_user_email="owner@x.test",
            first_user_username="owner",
            first_user_password="bench-password-1",
            openai_api_key="",
            anthropic_api_key="",
            rate_limit_per_minute=0,  # one user asks as fast as it can
        )
        db = Database(url, secrets=box_for(settings))
        app = create_app(settings, db)
        try:
            async with app.router.lifespan_context(app):
                first = await create_first_user(db, settings)
                assert first is not None
                async with db.read() as conn:
                    owner = (await conn.execute(sa.select(users.c.id))).scalar_one()
                    org = (await conn.execute(sa.select(organizations.c.id))).scalar_one()
                began = time.perf_counter()
                order = await seed(db, owner, org, count)
                if not db.is_sqlite:
                    async with db.write_one() as conn:  # autocommit: VACUUM needs it
                        await conn.execute(sa.text("VACUUM ANALYZE"))
                else:
                    async with db.write() as conn:
                        await conn.execute(sa.text("ANALYZE"))
                print(f"[{name}] seeded in {time.perf_counter() - began:.1f}s", file=sys.stderr)
                deep = str(order[min(len(order) - 1, count // 2)])
                cases = {
                    "default page": {},
                    "q=title:flaky": {"q": "title:flaky"},
                    "q=title:#4242 (rare)": {"q": "title:#4242 "},
                    "q=has_unread:true": {"q": "has_unread:true"},
                    "label=team:search": {"label": "team:search"},
                    "after_id ~50k deep": {"after_id": deep},
                }
                transport = httpx2.ASGITransport(app=app)
                headers = {"Coder-Session-Token": first.token}
                table = []
                async with httpx2.AsyncClient(transport=transport, base_url="http://b") as client:
                    for label, params in cases.items():
                        p50, p99, size = await measure(client, headers, params, rounds)
                        table.append((name, label, f"{p50:.1f}", f"{p99:.1f}", str(size)))
        finally:
            await db.close()
    return table


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--chats", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=200)
    args = parser.parse_args()
    rows: list[tuple[str, ...]] = []
    async for name, url in backends():
        rows += await run(name, url, args.chats, args.rounds)
    header = ("backend", "query", "p50 ms", "p99 ms", "items")
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    for row in [header, *rows]:
        print("  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)))


if __name__ == "__main__":
    asyncio.run(main())
