"""The audit log: a row (and a structured log line) for each audited action, written with the
change it records, listed newest first for site owners only."""

from __future__ import annotations

import json
import uuid
from typing import Any

import httpx2
import pytest
import sqlalchemy as sa
from fastapi import FastAPI
from starlette.requests import Request
from structlog.testing import capture_logs

from chatd.api.audit import audited_write
from chatd.api.login_throttle import LoginThrottle
from chatd.sdk.audit import AuditAction, ResourceType
from chatd.store.db import Database
from chatd.store.tables import audit_logs, organizations
from tests.api.abuse_helpers import ManualClock
from tests.helpers import Api, ApiUser, envelope

pytestmark = pytest.mark.anyio
AUDIT = "/api/v2/audit"
PROVIDERS = "/api/experimental/chats/providers"
MODEL_CONFIGS = "/api/experimental/chats/model-configs"
SECRET = "hunter2-secret-password"


async def entries(api: Api, **params: Any) -> list[dict[str, Any]]:
    r = await api.request("GET", AUDIT, api.admin, params=params or {"limit": 1000})
    assert r.status_code == 200, r.text
    body = r.json()
    assert set(body) == {"audit_logs", "count"}
    return list(body["audit_logs"])


def summary(entry: dict[str, Any]) -> tuple[str, str, int, bool]:
    return entry["action"], entry["resource_type"], entry["status_code"], entry["success"]


async def test_logins_failed_logins_and_logouts(
    app: FastAPI, client: httpx2.AsyncClient, api: Api
) -> None:
    app.state.login_throttle.clock = ManualClock()
    member = await api.create_user("member", SECRET)  # a user created, then a login
    with capture_logs() as logs:
        r = await client.post(
            "/api/v2/users/login", json={"email": "member@example.com", "password": "wrong"},
            headers={"User-Agent": "guesser/1.0"},
        )
        assert r.status_code == 401
        r = await client.post(
            "/api/v2/users/login", json={"email": "Nobody@Example.com", "password": SECRET}
        )
        assert r.status_code == 401
        r = await client.post("/api/v2/users/logout", headers=member.headers)
        assert r.status_code == 200

    logout, unknown, failed, login, created = (await entries(api))[:5]
    assert summary(created) == ("create", "user", 201, True)
    assert created["user_id"] == str(api.admin.id)
    assert created["resource_id"] == str(member.id) and created["resource_target"] == "member"

    assert summary(login) == ("login", "api_key", 201, True)
    assert login["user_id"] == str(member.id) and login["resource_id"] == str(member.id)
    assert login["ip"] == "127.0.0.1"
    assert member.token.startswith(login["resource_target"] + "-")  # the key id, not the token

    assert summary(failed) == ("login", "api_key", 401, False)
    assert failed["user_id"] == str(member.id)
    assert failed["user_agent"] == "guesser/1.0"
    assert failed["additional_fields"] == {
        "login": "member@example.com",
        "reason": "Incorrect email or password.",
    }
    assert summary(unknown) == ("login", "api_key", 401, False)
    assert "user_id" not in unknown and "resource_id" not in unknown
    assert unknown["additional_fields"]["login"] == "Nobody@Example.com"

    assert summary(logout) == ("logout", "api_key", 200, True)
    assert logout["resource_target"] == member.token.split("-")[0]

    # Never a password, never a token.
    everything = json.dumps(await entries(api))
    assert SECRET not in everything and '"wrong"' not in everything
    assert member.token not in everything

    # The same entries as log lines, after their commits.
    events = [(e["event"], e["status_code"], e["log_level"]) for e in logs]
    assert events == [
        ("audit.login", 401, "warning"),
        ("audit.login", 401, "warning"),
        ("audit.logout", 200, "info"),
    ]
    assert logs[0]["details"]["login"] == "member@example.com"
    assert logs[2]["audit_id"] == logout["id"]


async def test_a_failure_that_starts_a_lockout_says_so(
    app: FastAPI, client: httpx2.AsyncClient, api: Api
) -> None:
    throttle: LoginThrottle = app.state.login_throttle
    throttle.clock = ManualClock()
    for _ in range(5):
        r = await client.post("/api/v2/users/login", json={"email": "x@y.z", "password": "p"})
        assert r.status_code == 401
    with capture_logs() as logs:
        r = await client.post("/api/v2/users/login", json={"email": "x@y.z", "password": "p"})
    assert r.status_code == 429
    fifth = (await entries(api))[0]
    assert fifth["additional_fields"]["lockout_seconds"] == 900
    # A refused attempt is a log line, not a row.
    assert [e["event"] for e in logs] == ["audit.login_throttled"]
    assert logs[0]["by"] == "account" and logs[0]["login"] == "x@y.z"
    assert len(await entries(api)) == 1 + 5  # the first start's admin, five failures


async def test_tokens_and_users(client: httpx2.AsyncClient, api: Api, admin: ApiUser) -> None:
    member = await api.create_user("member")
    r = await api.request("POST", "/api/v2/users/me/keys/tokens", member, json={"token_name": "ci"})
    assert r.status_code == 201
    key_id = r.json()["key"].split("-")[0]
    before = len(await entries(api))
    # Refused changes leave no row.
    r = await api.request("POST", "/api/v2/users/me/keys/tokens", member, json={"token_name": "ci"})
    assert r.status_code == 409
    r = await api.request("DELETE", "/api/v2/users/me/keys/nosuchkey0", member)
    assert r.status_code == 404
    r = await api.request(
        "POST", "/api/v2/users", admin, json={"email": "bad", "username": "-", "password": "x"}
    )
    assert r.status_code == 400
    assert len(await entries(api)) == before

    r = await api.request("DELETE", f"/api/v2/users/member/keys/{key_id}", admin)
    assert r.status_code == 204
    deleted, created = (await entries(api))[:2]
    assert summary(created) == ("create", "api_key", 201, True)
    assert created["user_id"] == str(member.id) and created["resource_id"] == str(member.id)
    assert created["resource_target"] == key_id
    assert created["additional_fields"] == {"token_name": "ci", "lifetime_seconds": 30 * 86400}
    assert summary(deleted) == ("delete", "api_key", 204, True)
    assert deleted["user_id"] == str(admin.id) and deleted["resource_id"] == str(member.id)
    assert deleted["resource_target"] == key_id


async def test_the_first_user_is_audited(api: Api, admin: ApiUser) -> None:
    (first,) = await entries(api)  # made by the first start
    assert summary(first) == ("create", "user", 201, True)
    assert first["resource_id"] == str(admin.id) and "user_id" not in first
    assert first["additional_fields"] == {
        "email": "admin@example.com",
        "owner": True,
        "first_start": True,
    }


async def test_first_user_over_the_api(client: httpx2.AsyncClient, db: Database) -> None:
    r = await client.post(
        "/api/v2/users/first",
        json={"email": "root@example.com", "username": "root", "password": "password-123"},
    )
    assert r.status_code == 201
    async with db.read() as conn:
        rows = (await conn.execute(sa.select(audit_logs))).all()
    assert [(r.action, r.resource_type, r.resource_target, r.user_id) for r in rows] == [
        ("create", "user", "root", None)
    ]
    assert rows[0].resource_id == uuid.UUID(r.json()["user_id"])


async def test_provider_and_model_config_changes(api: Api, admin: ApiUser) -> None:
    r = await api.request(
        "POST", PROVIDERS, admin, json={"provider": "openai", "api_key": "sk-do-not-log"}
    )
    assert r.status_code == 201
    provider_id = r.json()["id"]
    r = await api.request(
        "PATCH", f"{PROVIDERS}/{provider_id}", admin, json={"api_key": "sk-new", "enabled": True}
    )
    assert r.status_code == 200
    body = {"provider": "openai", "model": "gpt-4o", "context_limit": 1000}
    r = await api.request("POST", MODEL_CONFIGS, admin, json=body)
    assert r.status_code == 201
    config_id = r.json()["id"]
    r = await api.request(
        "PATCH", f"{MODEL_CONFIGS}/{config_id}", admin, json={"display_name": "GPT"}
    )
    assert r.status_code == 200
    r = await api.request("DELETE", f"{MODEL_CONFIGS}/{config_id}", admin)
    assert r.status_code == 204
    r = await api.request("DELETE", f"{PROVIDERS}/{provider_id}", admin)
    assert r.status_code == 204
    r = await api.request("DELETE", f"{PROVIDERS}/{provider_id}", admin)
    assert r.status_code == 404  # no row for it

    got = list(reversed((await entries(api))[:6]))
    assert [summary(e)[:2] for e in got] == [
        ("create", "chat_provider"),
        ("write", "chat_provider"),
        ("create", "chat_model_config"),
        ("write", "chat_model_config"),
        ("delete", "chat_model_config"),
        ("delete", "chat_provider"),
    ]
    assert all(e["user_id"] == str(admin.id) and e["success"] for e in got)
    assert [e["resource_id"] for e in got] == [provider_id] * 2 + [config_id] * 3 + [provider_id]
    assert got[0]["additional_fields"] == {"enabled": True, "has_api_key": True, "base_url": ""}
    assert got[1]["additional_fields"] == {"fields": ["api_key", "enabled"]}
    assert got[2]["resource_target"] == "openai/gpt-4o"
    assert got[3]["additional_fields"] == {"fields": ["display_name"]}
    assert "sk-" not in json.dumps(got)


async def test_the_log_is_for_site_owners_and_paged(
    client: httpx2.AsyncClient, api: Api, admin: ApiUser
) -> None:
    member = await api.create_user("member")
    r = await api.request("GET", AUDIT, member)
    assert r.status_code == 403
    assert envelope(r)["message"] == "Forbidden."
    client.cookies.clear()  # the logins above left a session cookie
    assert (await client.get(AUDIT)).status_code == 401

    for i in range(5):
        await api.create_user(f"user{i}")
    everything = await entries(api)
    assert len(everything) == 1 + 2 + 5 * 2
    r = await api.request("GET", AUDIT, admin, params={"limit": 3, "offset": 2})
    assert r.json()["count"] == len(everything)
    assert [e["id"] for e in r.json()["audit_logs"]] == [e["id"] for e in everything[2:5]]
    r = await api.request("GET", AUDIT, admin)  # 50 by default
    assert len(r.json()["audit_logs"]) == len(everything)
    r = await api.request("GET", AUDIT, admin, params={"limit": "-1", "offset": "x"})
    assert r.status_code == 400
    assert {v["field"] for v in envelope(r)["validations"]} == {"limit", "offset"}


async def test_the_row_commits_with_the_change_or_not_at_all(db: Database) -> None:
    request = Request({"type": "http", "headers": [], "client": ("198.51.100.4", 1234)})
    now = db.now()

    async def change(fail: bool) -> None:
        async with audited_write(
            db, request, AuditAction.create, ResourceType.user, user_id=None, status_code=201
        ) as (conn, recorded):
            org_id = uuid.uuid4()
            await conn.execute(
                organizations.insert().values(
                    id=org_id, name=f"org-{org_id}", created_at=now, updated_at=now
                )
            )
            recorded.resource_id = org_id
            if fail:
                raise RuntimeError("the change failed")

    with pytest.raises(RuntimeError):
        await change(fail=True)
    await change(fail=False)
    async with db.read() as conn:
        orgs = set((await conn.execute(sa.select(organizations.c.id))).scalars())
        rows = (await conn.execute(sa.select(audit_logs))).all()
    assert [row.resource_id for row in rows] == [next(iter(orgs))]
    assert rows[0].ip == "198.51.100.4"
