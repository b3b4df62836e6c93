"""Spend limits: admin configuration, per-user overrides, status, and the 409 on every entry."""

from __future__ import annotations

import datetime as dt

import httpx2
import pytest
import sqlalchemy as sa

from chatd.store.db import Database
from chatd.store.messages import insert_queued
from chatd.store.tables import chat_messages
from chatd.store.usage_limits import period_window
from tests.helpers import Api, ApiUser, envelope, make_chat, seed_model_config

pytestmark = pytest.mark.anyio
BASE = "/api/experimental/chats"


async def _spend(db: Database, chat_id: object, micros: int) -> None:
    """An assistant message that cost ``micros`` now."""
    async with db.write() as conn:
        await conn.execute(
            chat_messages.insert().values(
                chat_id=chat_id,
                created_at=db.now(),
                role="assistant",
                content=[{"type": "text", "text": "paid"}],
                total_cost_micros=micros,
            )
        )


def test_period_windows_are_utc_calendar_periods() -> None:
    now = dt.datetime(2026, 11, 29, 15, 30, tzinfo=dt.UTC)  # a Sunday
    assert period_window(now, "day") == (
        dt.datetime(2026, 11, 29, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 30, tzinfo=dt.UTC),
    )
    assert period_window(now, "week") == (
        dt.datetime(2026, 11, 23, tzinfo=dt.UTC),
        dt.datetime(2026, 11, 30, tzinfo=dt.UTC),
    )
    assert period_window(dt.datetime(2026, 12, 31, 23, tzinfo=dt.UTC), "month") == (
        dt.datetime(2026, 12, 1, tzinfo=dt.UTC),
        dt.datetime(2027, 1, 1, tzinfo=dt.UTC),
    )


async def test_admin_configures_limits(
    client: httpx2.AsyncClient, admin: ApiUser, member: ApiUser, db: Database
) -> None:
    await seed_model_config(db)
    r = await client.get(f"{BASE}/usage-limits", headers=member.headers)
    assert r.status_code == 403
    r = await client.put(
        f"{BASE}/usage-limits", headers=member.headers, json={"spend_limit_micros": 5}
    )
    assert r.status_code == 403

    r = await client.get(f"{BASE}/usage-limits", headers=admin.headers)
    assert r.status_code == 200
    body = r.json()
    assert "spend_limit_micros" not in body
    assert body["period"] == "month"
    assert body["unpriced_model_count"] == 1
    assert body["overrides"] == [] and body["group_overrides"] == []

    r = await client.put(
        f"{BASE}/usage-limits", headers=admin.headers, json={"spend_limit_micros": 0}
    )
    assert r.status_code == 400
    assert envelope(r)["message"] == "Invalid chat usage limit spend limit."
    r = await client.put(
        f"{BASE}/usage-limits",
        headers=admin.headers,
        json={"spend_limit_micros": 10, "period": "year"},
    )
    assert r.status_code == 400
    assert envelope(r) == {
        "message": "Invalid chat usage limit period.",
        "detail": "Period must be one of: day, week, month.",
    }

    r = await client.put(
        f"{BASE}/usage-limits",
        headers=admin.headers,
        json={"spend_limit_micros": 1000, "period": "week"},
    )
    assert r.status_code == 200
    assert r.json()["spend_limit_micros"] == 1000 and r.json()["period"] == "week"

    r = await client.put(
        f"{BASE}/usage-limits/overrides/{member.id}",
        headers=admin.headers,
        json={"spend_limit_micros": 50},
    )
    assert r.status_code == 200
    assert r.json()["username"] == member.username
    r = await client.get(f"{BASE}/usage-limits", headers=admin.headers)
    assert [o["spend_limit_micros"] for o in r.json()["overrides"]] == [50]
    r = await client.put(
        f"{BASE}/usage-limits/overrides/00000000-0000-0000-0000-000000000009",
        headers=admin.headers,
        json={"spend_limit_micros": 50},
    )
    assert r.status_code == 404
    r = await client.delete(f"{BASE}/usage-limits/overrides/{member.id}", headers=admin.headers)
    assert r.status_code == 204
    r = await client.delete(f"{BASE}/usage-limits/overrides/{member.id}", headers=admin.headers)
    assert r.status_code == 400
    assert envelope(r)["message"] == "Chat usage limit override not found."

    # null disables the limit again.
    r = await client.put(
        f"{BASE}/usage-limits", headers=admin.headers, json={"spend_limit_micros": None}
    )
    assert "spend_limit_micros" not in r.json()
    r = await client.get(f"{BASE}/usage-limits/status", headers=member.headers)
    assert r.json() == {"is_limited": False}


async def test_spent_limit_refuses_create_send_edit_promote(
    client: httpx2.AsyncClient, api: Api, admin: ApiUser, db: Database
) -> None:
    user = await api.create_user("spender")
    config_id = await seed_model_config(db)
    chat_id = await make_chat(db, user, config_id)
    async with db.write() as conn:
        await insert_queued(
            conn,
            now=db.now(),
            chat_id=chat_id,
            content=[{"type": "text", "text": "q"}],
            model_config_id=None,
            created_by=None,
        )
    r = await client.get(f"{BASE}/{chat_id}/messages", headers=user.headers)
    message_id = r.json()["messages"][0]["id"]
    queued_id = r.json()["queued_messages"][0]["id"]
    await client.put(
        f"{BASE}/usage-limits",
        headers=admin.headers,
        json={"spend_limit_micros": 100, "period": "day"},
    )
    await _spend(db, chat_id, 60)
    r = await client.get(f"{BASE}/usage-limits/status", headers=user.headers)
    status = r.json()
    assert status["is_limited"] is True and status["current_spend"] == 60
    assert status["spend_limit_micros"] == 100 and status["period"] == "day"

    # Under the limit: a send is accepted (queued behind the pending chat).
    text = {"content": [{"type": "text", "text": "more"}]}
    r = await client.post(f"{BASE}/{chat_id}/messages", headers=user.headers, json=text)
    assert r.status_code == 200

    await _spend(db, chat_id, 40)  # now exactly at the limit
    _, resets_at = period_window(db.now(), "day")
    attempts = [
        ("POST", BASE, {"organization_id": str(user.org_id), **text}),
        ("POST", f"{BASE}/{chat_id}/messages", text),
        ("PATCH", f"{BASE}/{chat_id}/messages/{message_id}", text),
        ("POST", f"{BASE}/{chat_id}/queue/{queued_id}/promote", None),
    ]
    for method, url, body in attempts:
        r = await client.request(method, url, headers=user.headers, json=body)
        assert r.status_code == 409, (url, r.text)
        assert r.json() == {
            "message": "Chat usage limit exceeded.",
            "spent_micros": 100,
            "limit_micros": 100,
            "resets_at": resets_at.isoformat().replace("+00:00", "Z"),
        }
    # Nothing was written by the refused requests.
    r = await client.get(f"{BASE}/{chat_id}/messages", headers=user.headers)
    users_messages = [m["id"] for m in r.json()["messages"] if m["role"] == "user"]
    assert users_messages == [message_id]
    assert len(r.json()["queued_messages"]) == 2
    r = await client.get(BASE, headers=user.headers)
    assert len(r.json()) == 1

    # An override lifts this user's limit; other users keep the default.
    r = await client.put(
        f"{BASE}/usage-limits/overrides/{user.id}",
        headers=admin.headers,
        json={"spend_limit_micros": 1000},
    )
    r = await client.post(f"{BASE}/{chat_id}/messages", headers=user.headers, json=text)
    assert r.status_code == 200
    async with db.read() as conn:
        spent = await conn.execute(sa.select(sa.func.sum(chat_messages.c.total_cost_micros)))
    assert spent.scalar_one() == 100


async def test_spent_limit_refuses_title_regeneration(
    client: httpx2.AsyncClient, api: Api, admin: ApiUser, db: Database
) -> None:
    from chatd.store.tables import chats

    user = await api.create_user("titler")
    chat_id = await make_chat(db, user, await seed_model_config(db), "name me please")
    async with db.write() as conn:
        await conn.execute(sa.update(chats).where(chats.c.id == chat_id).values(status="waiting"))
    await client.put(f"{BASE}/usage-limits", headers=admin.headers, json={"spend_limit_micros": 10})
    await _spend(db, chat_id, 10)
    r = await client.post(f"{BASE}/{chat_id}/title/regenerate", headers=user.headers)
    assert r.status_code == 409
    assert envelope(r)["message"] == "Chat usage limit exceeded."
    # The refusal rolled back the regeneration mark: the chat is untouched.
    async with db.read() as conn:
        row = (await conn.execute(sa.select(chats).where(chats.c.id == chat_id))).one()
    assert row.worker_id is None and row.title == "name me please"
