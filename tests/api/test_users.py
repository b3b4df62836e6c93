"""Users, login, tokens and organizations."""

from __future__ import annotations

import datetime as dt

import httpx2
import pytest

from chatd.store.db import Database
from chatd.store.tables import api_keys, users
from tests.helpers import JSON_HEADERS, Api, ApiUser, envelope

pytestmark = pytest.mark.anyio


async def test_me_with_header_or_cookie(client: httpx2.AsyncClient, admin: ApiUser) -> None:
    r = await client.get("/api/v2/users/me", headers=admin.headers)
    assert r.status_code == 200
    body = r.json()
    assert body["username"] == "admin"
    assert body["email"] == "admin@example.com"
    assert {"name": "owner", "display_name": "Owner"} in body["roles"]
    assert body["organization_ids"] == [str(admin.org_id)]

    r = await client.get(
        "/api/v2/users/me", headers={"Cookie": f"coder_session_token={admin.token}"}
    )
    assert r.status_code == 200
    # The query parameter authenticates WebSocket upgrades only (tests/api/test_crosssite.py).
    r = await client.get("/api/v2/users/me", params={"coder_session_token": admin.token})
    assert r.status_code == 401


async def test_unauthenticated_and_bad_tokens(client: httpx2.AsyncClient, admin: ApiUser) -> None:
    r = await client.get("/api/v2/users/me")
    assert r.status_code == 401
    assert "must be provided" in envelope(r)["detail"]
    for token in ["garbage", admin.token[:-1] + ("x" if admin.token[-1] != "x" else "y")]:
        r = await client.get("/api/v2/users/me", headers={"Coder-Session-Token": token})
        assert r.status_code == 401
        envelope(r)


async def test_expired_keys_and_inactive_users_are_refused(
    client: httpx2.AsyncClient, api: Api, db: Database
) -> None:
    user = await api.create_user("dora")
    assert (await client.get("/api/v2/users/me", headers=user.headers)).status_code == 200
    key_id = user.token.split("-", 1)[0]
    async with db.write() as conn:
        await conn.execute(users.update().where(users.c.id == user.id).values(status="suspended"))
    r = await client.get("/api/v2/users/me", headers=user.headers)
    assert r.status_code == 401
    assert envelope(r)["detail"] == "User is not active."
    past = dt.datetime(2020, 1, 1, tzinfo=dt.UTC)
    async with db.write() as conn:
        await conn.execute(users.update().where(users.c.id == user.id).values(status="active"))
        await conn.execute(api_keys.update().where(api_keys.c.id == key_id).values(expires_at=past))
    r = await client.get("/api/v2/users/me", headers=user.headers)
    assert r.status_code == 401
    assert envelope(r)["detail"] == "API key expired."
    async with db.write() as conn:
        await conn.execute(users.delete().where(users.c.id == user.id))
    r = await client.get("/api/v2/users/me", headers=user.headers)
    assert r.status_code == 401


async def test_first_user_only_once(client: httpx2.AsyncClient, admin: ApiUser) -> None:
    r = await client.post(
        "/api/v2/users/first",
        json={"email": "x@example.com", "username": "x", "password": "password-123"},
    )
    assert r.status_code == 409
    assert envelope(r)["message"] == "The initial user has already been created."


async def test_first_user_on_empty_deployment(client: httpx2.AsyncClient) -> None:
    r = await client.post(
        "/api/v2/users/first",
        json={"email": "bad", "username": "-x", "password": "short"},
    )
    assert r.status_code == 400
    fields = {v["field"] for v in envelope(r)["validations"]}
    assert fields == {"email", "username", "password"}

    r = await client.post(
        "/api/v2/users/first",
        json={"email": "root@example.com", "username": "root", "password": "password-123"},
    )
    assert r.status_code == 201
    org_id = r.json()["organization_id"]
    r = await client.post(
        "/api/v2/users/login", json={"email": "root@example.com", "password": "password-123"}
    )
    assert r.status_code == 201
    token = r.json()["session_token"]
    r = await client.get("/api/v2/organizations", headers={"Coder-Session-Token": token})
    assert [o["id"] for o in r.json()] == [org_id]
    assert r.json()[0]["name"] == "default"


async def test_login_logout(client: httpx2.AsyncClient, api: Api) -> None:
    user = await api.create_user("alice")
    r = await client.post(
        "/api/v2/users/login", json={"email": "alice@example.com", "password": "wrong-password"}
    )
    assert r.status_code == 401
    assert envelope(r)["message"] == "Incorrect email or password."
    r = await client.post("/api/v2/users/logout", headers=user.headers)
    assert r.status_code == 200
    r = await client.get("/api/v2/users/me", headers=user.headers)
    assert r.status_code == 401


async def test_create_user_rules(client: httpx2.AsyncClient, api: Api, admin: ApiUser) -> None:
    member = await api.create_user("bob")
    payload = {"email": "c@example.com", "username": "carol", "password": "password-123"}
    r = await client.post("/api/v2/users", headers=member.headers, json=payload)
    assert r.status_code == 403
    r = await client.post("/api/v2/users", headers=admin.headers, json=payload)
    assert r.status_code == 201
    assert r.json()["organization_ids"] == [str(admin.org_id)]
    assert r.json()["roles"] == []
    r = await client.post("/api/v2/users", headers=admin.headers, json=payload)
    assert r.status_code == 409
    r = await client.post(
        "/api/v2/users", headers={**admin.headers, **JSON_HEADERS}, content=b"{nope"
    )
    assert r.status_code == 400
    assert envelope(r)["message"] == "Request body must be valid JSON."
    r = await client.post("/api/v2/users", headers=admin.headers, json={**payload, "username": 5})
    assert r.status_code == 400


async def test_tokens_lifecycle(client: httpx2.AsyncClient, api: Api, admin: ApiUser) -> None:
    user = await api.create_user("dave")
    r = await client.post(
        "/api/v2/users/me/keys/tokens", headers=user.headers, json={"token_name": "ci"}
    )
    assert r.status_code == 201
    token = r.json()["key"]
    r = await client.get("/api/v2/users/me", headers={"Coder-Session-Token": token})
    assert r.json()["username"] == "dave"

    r = await client.post(
        "/api/v2/users/me/keys/tokens", headers=user.headers, json={"token_name": "ci"}
    )
    assert r.status_code == 409

    r = await client.get("/api/v2/users/dave/keys/tokens", headers=user.headers)
    assert r.status_code == 200
    keys = r.json()
    assert [k["token_name"] for k in keys] == ["ci"]
    assert token.startswith(keys[0]["id"] + "-")
    assert "hashed_secret" not in keys[0]

    # Another member may not touch dave's tokens (to them dave is missing); an admin may.
    other = await api.create_user("erin")
    r = await client.get(f"/api/v2/users/{user.id}/keys/tokens", headers=other.headers)
    assert r.status_code == 404
    r = await client.get(f"/api/v2/users/{user.id}/keys/tokens", headers=admin.headers)
    assert r.status_code == 200

    r = await client.delete(f"/api/v2/users/me/keys/{keys[0]['id']}", headers=user.headers)
    assert r.status_code == 204
    r = await client.get("/api/v2/users/me", headers={"Coder-Session-Token": token})
    assert r.status_code == 401
    r = await client.delete(f"/api/v2/users/me/keys/{keys[0]['id']}", headers=user.headers)
    assert r.status_code == 404


async def test_organizations(client: httpx2.AsyncClient, api: Api, admin: ApiUser) -> None:
    user = await api.create_user("frank")
    r = await client.get(f"/api/v2/organizations/{admin.org_id}", headers=user.headers)
    assert r.status_code == 200
    assert r.json()["is_default"] is True
    r = await client.get("/api/v2/organizations/not-a-uuid", headers=user.headers)
    assert r.status_code == 400
    assert envelope(r)["message"] == 'Invalid UUID "not-a-uuid".'
    r = await client.get(
        "/api/v2/organizations/00000000-0000-0000-0000-000000000009", headers=user.headers
    )
    assert r.status_code == 404


async def test_unknown_route_and_nosniff(client: httpx2.AsyncClient) -> None:
    r = await client.get("/api/v2/nope")
    assert r.status_code == 404
    assert envelope(r)["message"] == "Route not found."
    assert r.headers["x-content-type-options"] == "nosniff"


async def test_metrics_count_requests_by_route(client: httpx2.AsyncClient, admin: ApiUser) -> None:
    await client.get("/api/v2/users/me", headers=admin.headers)
    r = await client.get("/metrics")
    assert r.status_code == 200
    assert 'chatd_http_requests_total{method="GET",route="/api/v2/users/{user}",status="200"}' in (
        r.text
    )


async def test_nul_characters_are_rejected(client: httpx2.AsyncClient, admin: ApiUser) -> None:
    r = await client.post(
        "/api/v2/users",
        headers=admin.headers,
        json={"email": "n@example.com", "username": "n\x00", "password": "password-123"},
    )
    assert r.status_code == 400
    assert envelope(r)["detail"] == "strings must not contain NUL characters"
    r = await client.get("/api/v2/users/a%00b", headers=admin.headers)
    assert r.status_code == 400
    assert envelope(r)["message"] == "Invalid request."


async def test_list_users_owner_sees_all_member_sees_self(
    client: httpx2.AsyncClient, api: Api, admin: ApiUser
) -> None:
    bob = await api.create_user("bob")
    r = await client.get("/api/v2/users", headers=admin.headers)
    assert r.status_code == 200
    body = r.json()
    assert [u["username"] for u in body["users"]] == ["admin", "bob"]
    assert body["count"] == 2
    assert {"name": "owner", "display_name": "Owner"} in body["users"][0]["roles"]
    assert body["users"][1]["roles"] == []

    r = await client.get("/api/v2/users", headers=bob.headers)
    assert r.status_code == 200
    assert [u["username"] for u in r.json()["users"]] == ["bob"]
