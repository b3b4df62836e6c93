"""Chat cost summaries: totals by model and by root chat, the per-user roll-up, and their
validation and access rules (api-behaviour §9.5)."""

from __future__ import annotations

import datetime as dt
import uuid
from dataclasses import dataclass
from typing import Any

import httpx2
import pytest

from chatd.store import usage_limits
from chatd.store.chat_updates import set_archived
from chatd.store.db import Database
from chatd.store.messages import insert_message
from tests.helpers import Api, ApiUser, envelope, make_chat, seed_model_config

pytestmark = pytest.mark.anyio
BASE = "/api/experimental/chats/cost"
NOW = dt.datetime(2026, 11, 15, 12, 0, tzinfo=dt.UTC)


def _iso(value: dt.datetime) -> str:
    return value.isoformat().replace("+00:00", "Z")


@dataclass(frozen=True)
class Seeded:
    alice: ApiUser
    bob: ApiUser
    gpt: uuid.UUID
    claude: uuid.UUID
    root: uuid.UUID  # alice's root with two sub-agent chats
    archived: uuid.UUID  # alice's archived root with a child that names only its parent
    bob_root: uuid.UUID


async def _reply(
    db: Database,
    chat_id: uuid.UUID,
    model: uuid.UUID,
    at: dt.datetime,
    role: str = "assistant",
    **usage: int | None,
) -> None:
    async with db.write() as conn:
        await insert_message(
            conn,
            now=at,
            chat_id=chat_id,
            role=role,
            content=[{"type": "text", "text": "done"}],
            model_config_id=model,
            **usage,
        )


@pytest.fixture
async def seeded(api: Api, db: Database) -> Seeded:
    db.clock = lambda: NOW
    alice = await api.create_user("alice")
    bob = await api.create_user("bob")
    gpt = await seed_model_config(db)
    claude = await seed_model_config(db, provider="anthropic", model="claude", is_default=False)
    day = dt.timedelta(days=1)

    root = await make_chat(db, alice, gpt, "root work")
    first = await make_chat(db, alice, claude, "first helper", parent=root, root=root)
    second = await make_chat(db, alice, gpt, "second helper", parent=root, root=root)
    archived = await make_chat(db, alice, claude, "old work")
    legacy_child = await make_chat(db, alice, gpt, "parent only", parent=archived)
    bob_root = await make_chat(db, bob, gpt, "bob's chat")

    await _reply(
        db,
        root,
        gpt,
        NOW - day,
        total_cost_micros=100,
        input_tokens=10,
        output_tokens=20,
        cache_read_tokens=5,
        cache_creation_tokens=1,
    )
    await _reply(
        db, first, claude, NOW - 2 * day, total_cost_micros=250, input_tokens=30, output_tokens=40
    )
    # Unpriced: tokens count, cost does not.
    await _reply(db, second, gpt, NOW - 3 * day, input_tokens=7, output_tokens=8)
    await _reply(
        db,
        archived,
        claude,
        NOW - 5 * day,
        total_cost_micros=1000,
        input_tokens=100,
        output_tokens=200,
    )
    await _reply(
        db, legacy_child, gpt, NOW - 6 * day, total_cost_micros=3, input_tokens=1, output_tokens=1
    )
    # Older than the default window.
    await _reply(
        db, root, gpt, NOW - 40 * day, total_cost_micros=5000, input_tokens=50, output_tokens=50
    )
    # Not an assistant message: never counted.
    await _reply(db, root, gpt, NOW - day, role="user", input_tokens=999, output_tokens=999)
    await _reply(
        db, bob_root, gpt, NOW - day, total_cost_micros=70, input_tokens=1, output_tokens=2
    )
    async with db.write() as conn:
        await set_archived(conn, NOW, archived, True)
    return Seeded(alice, bob, gpt, claude, root, archived, bob_root)


def _usage(
    cost: int, count: int, inp: int, out: int, read: int = 0, create: int = 0
) -> dict[str, int]:
    return {
        "total_cost_micros": cost,
        "message_count": count,
        "total_input_tokens": inp,
        "total_output_tokens": out,
        "total_cache_read_tokens": read,
        "total_cache_creation_tokens": create,
    }


async def _summary(
    client: httpx2.AsyncClient, user: ApiUser, ref: str = "me", **query: str
) -> dict[str, Any]:
    r = await client.get(f"{BASE}/{ref}/summary", headers=user.headers, params=query)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_summary_rolls_sub_agent_chats_into_their_root(
    client: httpx2.AsyncClient, seeded: Seeded
) -> None:
    body = await _summary(client, seeded.alice)
    assert body["start_date"] == _iso(NOW - dt.timedelta(days=30))
    assert body["end_date"] == _iso(NOW)
    assert body["total_cost_micros"] == 100 + 250 + 1000 + 3
    assert body["priced_message_count"] == 4
    assert body["unpriced_message_count"] == 1
    assert body["total_input_tokens"] == 10 + 30 + 7 + 100 + 1
    assert body["total_output_tokens"] == 20 + 40 + 8 + 200 + 1
    assert body["total_cache_read_tokens"] == 5
    assert body["total_cache_creation_tokens"] == 1
    assert body["by_model"] == [
        {
            "model_config_id": str(seeded.claude),
            "display_name": "",
            "provider": "anthropic",
            "model": "claude",
            **_usage(1250, 2, 130, 240),
        },
        {
            "model_config_id": str(seeded.gpt),
            "display_name": "",
            "provider": "openai",
            "model": "gpt-4o",
            **_usage(103, 3, 18, 29, 5, 1),
        },
    ]
    # Root chats only: the archived root with its parent-only child, then the root with its
    # two sub-agent chats (one of them unpriced).
    assert body["by_chat"] == [
        {
            "root_chat_id": str(seeded.archived),
            "chat_title": "old work",
            **_usage(1003, 2, 101, 201),
        },
        {
            "root_chat_id": str(seeded.root),
            "chat_title": "root work",
            **_usage(350, 3, 47, 68, 5, 1),
        },
    ]
    assert "usage_limit" not in body


async def test_summary_date_window(client: httpx2.AsyncClient, seeded: Seeded) -> None:
    day = dt.timedelta(days=1)
    body = await _summary(client, seeded.alice, start_date=_iso(NOW - 4 * day))
    assert body["total_cost_micros"] == 350
    assert [c["root_chat_id"] for c in body["by_chat"]] == [str(seeded.root)]

    # The end is exclusive: the reply made exactly at end_date is left out.
    body = await _summary(
        client, seeded.alice, start_date=_iso(NOW - 4 * day), end_date=_iso(NOW - day)
    )
    assert body["total_cost_micros"] == 250
    assert body["unpriced_message_count"] == 1
    assert body["by_chat"] == [
        {"root_chat_id": str(seeded.root), "chat_title": "root work", **_usage(250, 2, 37, 48)}
    ]

    # Offsets other than Z name the same instants.
    body = await _summary(
        client,
        seeded.alice,
        start_date="2026-10-01T02:00:00+02:00",
        end_date="2026-10-10T00:00:00Z",
    )
    assert body["start_date"] == "2026-10-01T02:00:00+02:00"
    assert body["by_chat"] == [
        {"root_chat_id": str(seeded.root), "chat_title": "root work", **_usage(5000, 1, 50, 50)}
    ]
    assert body["by_model"][0]["total_cost_micros"] == 5000

    # Only an end: the window is the 30 days before it.
    body = await _summary(client, seeded.alice, end_date=_iso(NOW - 20 * day))
    assert body["start_date"] == _iso(NOW - 50 * day)
    assert body["total_cost_micros"] == 5000

    body = await _summary(client, seeded.alice, start_date=_iso(NOW), end_date=_iso(NOW))
    assert body["total_cost_micros"] == 0
    assert body["by_model"] == [] and body["by_chat"] == []


async def test_summary_reports_the_usage_limit(
    client: httpx2.AsyncClient, seeded: Seeded, db: Database
) -> None:
    async with db.write() as conn:
        await usage_limits.put_config(conn, NOW, limit_micros=1_000_000, period="month")
    body = await _summary(client, seeded.alice)
    assert body["usage_limit"] == {
        "is_limited": True,
        "period": "month",
        "spend_limit_micros": 1_000_000,
        # November's spend: every priced reply but the one 40 days back.
        "current_spend": 1353,
        "period_start": "2026-11-01T00:00:00Z",
        "period_end": "2026-12-01T00:00:00Z",
    }


async def test_who_may_read_a_summary(
    client: httpx2.AsyncClient, seeded: Seeded, admin: ApiUser
) -> None:
    mine = await _summary(client, seeded.alice, "me")
    assert await _summary(client, seeded.alice, str(seeded.alice.id)) == mine
    assert await _summary(client, seeded.alice, "alice") == mine
    # A site owner reads anyone's, by id or username.
    assert await _summary(client, admin, "alice") == mine
    assert await _summary(client, admin, str(seeded.alice.id)) == mine
    bob = await _summary(client, admin, "bob")
    assert bob["total_cost_micros"] == 70
    assert [c["root_chat_id"] for c in bob["by_chat"]] == [str(seeded.bob_root)]
    # Another member's is as missing as a user who does not exist.
    for ref in ("alice", str(seeded.alice.id), "nobody", str(uuid.uuid4())):
        r = await client.get(f"{BASE}/{ref}/summary", headers=seeded.bob.headers)
        assert r.status_code == 404, ref
        envelope(r)
    r = await client.get(f"{BASE}/nobody/summary", headers=admin.headers)
    assert r.status_code == 404
    client.cookies.clear()  # the logins left a session cookie behind
    r = await client.get(f"{BASE}/me/summary")
    assert r.status_code == 401


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ({"start_date": "yesterday"}, "start_date"),
        ({"start_date": "2026-11-01"}, "start_date"),
        ({"end_date": "2026-11-01T00:00:00"}, "end_date"),
        ({"end_date": "2026-13-01T00:00:00Z"}, "end_date"),
        ({"start_date": "0001-01-01T00:00:00+01:00"}, "start_date"),
        ({"start_date": "2026-11-02T00:00:00Z", "end_date": "2026-11-01T00:00:00Z"}, "end_date"),
        ({"start_date": _iso(NOW + dt.timedelta(days=1))}, "end_date"),
        ({"start": "2026-11-01T00:00:00Z"}, "start"),
    ],
)
async def test_summary_rejects_bad_dates(
    client: httpx2.AsyncClient, seeded: Seeded, query: dict[str, str], field: str
) -> None:
    r = await client.get(f"{BASE}/me/summary", headers=seeded.alice.headers, params=query)
    assert r.status_code == 400, r.text
    body = envelope(r)
    assert body["message"] == "Invalid query parameters."
    assert [v["field"] for v in body["validations"]] == [field]


async def test_cost_users_pages_site_wide_spend(
    client: httpx2.AsyncClient, seeded: Seeded, admin: ApiUser
) -> None:
    async def users(**query: str) -> dict[str, Any]:
        r = await client.get(f"{BASE}/users", headers=admin.headers, params=query)
        assert r.status_code == 200, r.text
        body: dict[str, Any] = r.json()
        return body

    body = await users()
    assert body["start_date"] == _iso(NOW - dt.timedelta(days=30))
    assert body["end_date"] == _iso(NOW)
    assert body["count"] == 2  # the admin has spent nothing: not listed
    assert body["users"] == [
        {
            "user_id": str(seeded.alice.id),
            "username": "alice",
            "name": "",
            "avatar_url": "",
            "chat_count": 2,  # two roots: the sub-agent chats count in theirs
            **_usage(1353, 5, 148, 269, 5, 1),
        },
        {
            "user_id": str(seeded.bob.id),
            "username": "bob",
            "name": "",
            "avatar_url": "",
            "chat_count": 1,
            **_usage(70, 1, 1, 2),
        },
    ]
    page = await users(limit="1")
    assert page["count"] == 2
    assert [u["username"] for u in page["users"]] == ["alice"]
    page = await users(limit="1", offset="1")
    assert page["count"] == 2
    assert [u["username"] for u in page["users"]] == ["bob"]
    page = await users(offset="5")
    assert page == {**page, "count": 2, "users": []}
    assert [u["username"] for u in (await users(limit="0"))["users"]] == ["alice", "bob"]
    assert [u["username"] for u in (await users(limit="-3"))["users"]] == ["alice", "bob"]

    found = await users(username=" BO ")
    assert found["count"] == 1
    assert [u["username"] for u in found["users"]] == ["bob"]
    assert (await users(username="%"))["count"] == 0

    old = await users(
        start_date=_iso(NOW - dt.timedelta(days=45)), end_date=_iso(NOW - dt.timedelta(days=35))
    )
    assert old["count"] == 1
    assert old["users"][0]["username"] == "alice"
    assert old["users"][0]["total_cost_micros"] == 5000
    assert old["users"][0]["chat_count"] == 1


async def test_cost_users_is_for_site_owners(client: httpx2.AsyncClient, seeded: Seeded) -> None:
    r = await client.get(f"{BASE}/users", headers=seeded.alice.headers)
    assert r.status_code == 403
    assert envelope(r)["message"] == "Forbidden."


@pytest.mark.parametrize(
    ("query", "fields"),
    [
        ({"offset": "-1"}, ["offset"]),
        ({"offset": "2147483648", "limit": "2147483648"}, ["offset", "limit"]),
        ({"limit": "ten"}, ["limit"]),
        ({"end_date": "soon"}, ["end_date"]),
        ({"start_date": "2026-11-02T00:00:00Z", "end_date": "2026-11-01T00:00:00Z"}, ["end_date"]),
        ({"page": "2"}, ["page"]),
    ],
)
async def test_cost_users_rejects_bad_queries(
    client: httpx2.AsyncClient, admin: ApiUser, query: dict[str, str], fields: list[str]
) -> None:
    r = await client.get(f"{BASE}/users", headers=admin.headers, params=query)
    assert r.status_code == 400, r.text
    body = envelope(r)
    assert body["message"] == "Invalid query parameters."
    assert [v["field"] for v in body["validations"]] == fields
