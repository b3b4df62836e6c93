"""/api/v2/users/{user}/github-token: set, read (never the token), remove, who may."""

from __future__ import annotations

from typing import Any

import pytest
import sqlalchemy as sa

from chatd.secretbox import is_ciphertext
from chatd.store import git_tokens
from chatd.store.db import Database
from chatd.store.tables import user_git_tokens
from tests.helpers import Api, ApiUser, envelope

pytestmark = pytest.mark.anyio

TOKEN = "ghp_Zr9XkP4mWd1BJf83Lq0ZpA6tVn2C7Hq2"


def path(user: str) -> str:
    return f"/api/v2/users/{user}/github-token"


async def status(api: Api, user: ApiUser, ref: str = "me") -> dict[str, Any]:
    r = await api.request("GET", path(ref), user)
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


async def test_set_read_and_remove_a_token(api: Api, member: ApiUser, db: Database) -> None:
    assert await status(api, member) == {"configured": False}

    r = await api.request("PUT", path("me"), member, json={"token": f"  {TOKEN}\n"})
    assert r.status_code == 204, r.text
    assert r.content == b""
    body = await status(api, member)
    assert body["configured"] is True and set(body) == {"configured", "updated_at"}
    assert TOKEN not in str(body)
    # The same answer by id and by username.
    assert await status(api, member, str(member.id)) == body
    assert await status(api, member, member.username) == body

    # Stored sealed, bound to its row; opened only by the store for the GitHub calls.
    async with db.read() as conn:
        stored = (await conn.execute(sa.select(user_git_tokens))).all()
        assert [(row.user_id, row.provider) for row in stored] == [(member.id, "github")]
        assert is_ciphertext(stored[0].token) and TOKEN not in stored[0].token
        assert await git_tokens.get_token(conn, db.secrets, member.id) == TOKEN

    r = await api.request("PUT", path("me"), member, json={"token": "ghp_second"})
    assert r.status_code == 204
    async with db.read() as conn:
        assert await git_tokens.get_token(conn, db.secrets, member.id) == "ghp_second"

    r = await api.request("DELETE", path("me"), member)
    assert r.status_code == 204
    assert await status(api, member) == {"configured": False}
    r = await api.request("DELETE", path("me"), member)  # nothing left to remove: still 204
    assert r.status_code == 204
    async with db.read() as conn:
        assert await git_tokens.get_token(conn, db.secrets, member.id) is None


async def test_another_user_is_missing_but_a_site_owner_may_act(
    api: Api, admin: ApiUser, member: ApiUser
) -> None:
    other = await api.create_user("other")
    for method, body in (("GET", None), ("PUT", {"token": TOKEN}), ("DELETE", None)):
        for ref in (str(member.id), member.username, "nosuchuser"):
            r = await api.request(method, path(ref), other, json=body)
            assert r.status_code == 404, (method, ref, r.text)
            assert envelope(r)["message"]
    assert await status(api, member) == {"configured": False}

    r = await api.request("PUT", path(member.username), admin, json={"token": TOKEN})
    assert r.status_code == 204
    assert (await status(api, member))["configured"] is True
    assert (await status(api, admin, str(member.id)))["configured"] is True
    assert await status(api, admin) == {"configured": False}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"token": ""}, "GitHub token is required."),
        ({"token": "   "}, "GitHub token is required."),
        ({}, "GitHub token is required."),
        ({"token": "g" * 1025}, "GitHub token must be at most 1024 characters."),
        ({"token": "ghp_a b"}, "GitHub token must be printable ASCII"),
        ({"token": "ghp_a\u00e9"}, "GitHub token must be printable ASCII"),
        ({"token": 12345}, "Request body must be valid JSON."),
    ],
)
async def test_a_token_that_cannot_be_sent_is_refused(
    api: Api, member: ApiUser, body: dict[str, Any], message: str
) -> None:
    r = await api.request("PUT", path("me"), member, json=body)
    assert r.status_code == 400, r.text
    assert envelope(r)["message"].startswith(message)
    assert await status(api, member) == {"configured": False}


async def test_the_longest_token_is_taken(api: Api, member: ApiUser) -> None:
    r = await api.request("PUT", path("me"), member, json={"token": "g" * 1024})
    assert r.status_code == 204


async def test_changes_are_audited_without_the_token(api: Api, member: ApiUser) -> None:
    assert (await api.request("PUT", path("me"), member, json={"token": TOKEN})).status_code == 204
    assert (await api.request("DELETE", path("me"), member)).status_code == 204
    r = await api.request("GET", "/api/v2/audit", api.admin, params={"limit": 1000})
    assert r.status_code == 200, r.text
    rows = [e for e in r.json()["audit_logs"] if e["resource_type"] == "github_token"]
    assert [(e["action"], e["resource_id"], e["status_code"]) for e in rows] == [
        ("delete", str(member.id), 204),
        ("write", str(member.id), 204),
    ]
    assert TOKEN not in r.text
