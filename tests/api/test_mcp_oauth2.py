"""/api/experimental/mcp/servers/{id}/oauth2/...: a user connects their own account to an
``oauth2`` MCP server against a real OAuth2 server on 127.0.0.1 (authorization code with
PKCE); the token is stored sealed, never answered, rotated with the other secrets, and
forgotten on disconnect. The state works once, for its user, until it lapses."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import uuid
from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest
import sqlalchemy as sa

from chatd.secretbox import SecretBox, is_ciphertext, key_id, key_id_of
from chatd.store import mcp_user_tokens as tokens
from chatd.store.db import Database
from chatd.store.secret_columns import reseal_all
from chatd.store.tables import mcp_server_oauth2_states, mcp_server_user_tokens
from tests.api.test_mcp_servers import NEW_KEY
from tests.helpers import TEST_SECRET_KEY, Api, ApiUser, envelope
from tests.store.test_secret_columns import everything_stored
from tests.tools.oauth2_server import CLIENT_ID, CLIENT_SECRET, OAuth2Server, serve_oauth2

pytestmark = pytest.mark.anyio

URL = "/api/experimental/mcp/servers"
ACCESS = "access-token-Vn2C7Hq2xYLq0Zp"


@pytest.fixture
async def oauth() -> AsyncIterator[OAuth2Server]:
    fake = OAuth2Server(access_tokens=[ACCESS])
    async with serve_oauth2(fake):
        yield fake


async def make(api: Api, admin: ApiUser, oauth: OAuth2Server, **extra: Any) -> str:
    body = {
        "display_name": "Tracker",
        "slug": "tracker",
        "transport": "streamable_http",
        "url": "https://mcp.example.com/mcp",
        "auth_type": "oauth2",
        "oauth2_client_id": CLIENT_ID,
        "oauth2_client_secret": CLIENT_SECRET,
        "oauth2_auth_url": f"{oauth.url}/authorize?audience=mcp",
        "oauth2_token_url": f"{oauth.url}/token",
        "oauth2_scopes": "read  write",
        "enabled": True,
    } | extra
    r = await api.request("POST", URL, admin, json=body)
    assert r.status_code == 201, r.text
    config_id: str = r.json()["id"]
    return config_id


async def authorize(api: Api, user: ApiUser, config_id: str) -> str:
    """Start the flow as ``user`` and grant it at the authorization server, as a browser
    would; the callback URL (path and query) the browser is sent back to."""
    r = await api.request("GET", f"{URL}/{config_id}/oauth2/connect", user)
    assert r.status_code == 307, r.text
    async with httpx2.AsyncClient() as browser:
        granted = await browser.get(r.headers["location"])
    assert granted.status_code == 302
    back = urlsplit(granted.headers["location"])
    assert back.netloc == "test"
    return f"{back.path}?{back.query}"


async def connected(api: Api, user: ApiUser, config_id: str) -> bool:
    listed = {c["id"]: c for c in (await api.request("GET", URL, user)).json()}
    one = (await api.request("GET", f"{URL}/{config_id}", user)).json()
    assert one["auth_connected"] == listed[config_id]["auth_connected"]
    return bool(one["auth_connected"])


async def token_rows(db: Database) -> list[dict[str, Any]]:
    async with db.read() as conn:
        return [r.as_dict() for r in await conn.execute(sa.select(mcp_server_user_tokens))]


async def test_a_user_connects_their_account_and_the_token_is_sealed(
    api: Api, admin: ApiUser, member: ApiUser, db: Database, oauth: OAuth2Server
) -> None:
    config_id = await make(api, admin, oauth)
    assert await connected(api, member, config_id) is False

    r = await api.request("GET", f"{URL}/{config_id}/oauth2/connect", member)
    assert r.status_code == 307
    target = urlsplit(r.headers["location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{oauth.url}/authorize"
    query = {k: v[0] for k, v in parse_qs(target.query).items()}
    callback = f"http://test{URL}/{config_id}/oauth2/callback"
    assert query["audience"] == "mcp"  # the auth URL's own query is kept
    assert query["response_type"] == "code" and query["client_id"] == CLIENT_ID
    assert query["redirect_uri"] == callback and query["scope"] == "read write"
    assert query["code_challenge_method"] == "S256" and len(query["code_challenge"]) == 43
    assert len(query["state"]) >= 32
    # Only the state's hash is kept.
    async with db.read() as conn:
        [flow] = [r.as_dict() for r in await conn.execute(sa.select(mcp_server_oauth2_states))]
    assert flow["state_hash"] == hashlib.sha256(query["state"].encode()).hexdigest()
    verifier_hash = hashlib.sha256(flow["code_verifier"].encode()).digest()
    assert base64.urlsafe_b64encode(verifier_hash).decode().rstrip("=") == query["code_challenge"]

    back = await authorize(api, member, config_id)
    r = await api.request("GET", back, member)
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/html")
    assert "mcp-oauth2-complete" in r.text and config_id in r.text
    assert "script-src 'sha256-" in r.headers["content-security-policy"]
    assert ACCESS not in r.text

    # The code went to the token URL with the client's credentials, the verifier and the
    # redirect URI (the server checked them all).
    [exchange] = oauth.requests
    assert exchange["auth"] == "basic" and exchange["client"] == (CLIENT_ID, CLIENT_SECRET)
    assert exchange["form"]["grant_type"] == "authorization_code"
    assert exchange["form"]["redirect_uri"] == callback

    # The state worked once; replaying it is refused and changes nothing.
    r = await api.request("GET", back, member)
    assert r.status_code == 400
    assert envelope(r) == {"message": "Invalid or missing OAuth2 state parameter."}
    assert len(oauth.requests) == 1

    assert await connected(api, member, config_id) is True
    assert await connected(api, admin, config_id) is False  # another user's token is theirs

    # Stored sealed: the database holds neither token in plain text.
    [row] = await token_rows(db)
    assert row["user_id"] == member.id and str(row["mcp_server_config_id"]) == config_id
    assert is_ciphertext(row["access_token"]) and is_ciphertext(row["refresh_token"])
    assert row["token_type"] == "bearer"
    assert row["expiry"] is not None and row["expiry"] > db.now() + dt.timedelta(minutes=59)
    async with db.read() as conn:
        token = await tokens.get_token(conn, db.secrets, uuid.UUID(config_id), member.id)
    assert token is not None and token.access_token == ACCESS
    assert token.refresh_token in oauth.refresh_tokens
    assert token.authorization() == f"Bearer {ACCESS}"
    stored = await everything_stored(db)
    assert ACCESS.encode() not in stored and token.refresh_token.encode() not in stored
    # Never answered.
    for user in (member, admin):
        for path in (URL, f"{URL}/{config_id}"):
            text = (await api.request("GET", path, user)).text
            assert ACCESS not in text and token.refresh_token not in text

    # `chatd secrets rotate` re-seals the token under the new key.
    box = SecretBox(NEW_KEY, [TEST_SECRET_KEY])
    async with db.write() as conn:
        await reseal_all(conn, box)
    [row] = await token_rows(db)
    assert key_id_of(row["access_token"]) == key_id(NEW_KEY)
    assert key_id_of(row["refresh_token"]) == key_id(NEW_KEY)
    async with db.read() as conn:
        rotated = await tokens.get_token(conn, box, uuid.UUID(config_id), member.id)
    assert rotated == token

    r = await api.request("DELETE", f"{URL}/{config_id}/oauth2/disconnect", member)
    assert r.status_code == 204
    assert await token_rows(db) == []
    assert await connected(api, member, config_id) is False


async def test_the_state_belongs_to_its_user_and_lapses(
    api: Api, admin: ApiUser, member: ApiUser, db: Database, oauth: OAuth2Server
) -> None:
    config_id = await make(api, admin, oauth)
    back = await authorize(api, member, config_id)
    # Another user cannot finish it (and does not burn it for its owner).
    r = await api.request("GET", back, admin)
    assert r.status_code == 400
    assert envelope(r)["message"] == "Invalid or missing OAuth2 state parameter."
    # Nor for another server.
    other = await make(api, admin, oauth, slug="other")
    r = await api.request("GET", back.replace(config_id, other), member)
    assert r.status_code == 400
    r = await api.request("GET", back, member)
    assert r.status_code == 200, r.text

    # A flow left more than ten minutes lapses.
    back = await authorize(api, member, config_id)
    started = db.now()
    db.clock = lambda: started + dt.timedelta(minutes=11)
    r = await api.request("GET", back, member)
    assert r.status_code == 400
    assert envelope(r)["message"] == "Invalid or missing OAuth2 state parameter."
    assert len(oauth.requests) == 1  # the lapsed code was never exchanged


async def test_refusals(
    api: Api, admin: ApiUser, member: ApiUser, db: Database, oauth: OAuth2Server
) -> None:
    config_id = await make(api, admin, oauth)
    keyed = await make(
        api,
        admin,
        oauth,
        slug="keyed",
        auth_type="api_key",
        api_key_header="X-Key",
        api_key_value="k",
    )
    off = await make(api, admin, oauth, slug="off", enabled=False)

    def connect(config: str) -> str:
        return f"{URL}/{config}/oauth2/connect"

    cases = [
        (connect("nope"), 400, "Invalid MCP server config ID."),
        (
            connect(str(uuid.uuid4())),
            404,
            "Resource not found or you do not have access to this resource",
        ),
        (connect(keyed), 400, "MCP server does not use OAuth2 authentication."),
        (connect(off), 400, "MCP server is not enabled."),
        (f"{URL}/{config_id}/oauth2/callback?state=abc", 400, "Missing authorization code."),
        (
            f"{URL}/{config_id}/oauth2/callback?code=abc",
            400,
            "Invalid or missing OAuth2 state parameter.",
        ),
        (
            f"{URL}/{config_id}/oauth2/callback?code=a&state=b",
            400,
            "Invalid or missing OAuth2 state parameter.",
        ),
    ]
    for path, status, message in cases:
        r = await api.request("GET", path, member)
        assert (r.status_code, envelope(r)["message"]) == (status, message), path

    # Without a session there is nothing to bind the flow to.
    api.client.cookies.clear()
    r = await api.client.get(connect(config_id))
    assert r.status_code == 401

    # A code the authorization server refuses: 502, nothing stored.
    back = await authorize(api, member, config_id)
    oauth.codes.clear()
    r = await api.request("GET", back, member)
    assert r.status_code == 502
    assert envelope(r)["message"] == "Failed to exchange authorization code for token."
    assert "invalid_grant" in envelope(r)["detail"]
    assert await token_rows(db) == []

    # Deleting the server deletes its users' tokens.
    r = await api.request("GET", await authorize(api, member, config_id), member)
    assert r.status_code == 200
    assert len(await token_rows(db)) == 1
    assert (await api.request("DELETE", f"{URL}/{config_id}", admin)).status_code == 204
    assert await token_rows(db) == []
