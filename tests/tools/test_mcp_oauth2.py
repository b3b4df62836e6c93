"""The OAuth2 client of MCP servers against a real token endpoint on 127.0.0.1: how it
authenticates, what it reads from the answer, and how it fails."""

from __future__ import annotations

import datetime as dt
from collections.abc import AsyncIterator
from urllib.parse import parse_qs, urlsplit

import httpx2
import pytest

from chatd.store.mcp_user_tokens import OAuth2Token
from chatd.tools import mcp_oauth2 as oauth2
from tests.tools.oauth2_server import CLIENT_ID, CLIENT_SECRET, OAuth2Server, serve_oauth2

pytestmark = pytest.mark.anyio

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
REDIRECT = "http://chatd.example/callback"


@pytest.fixture
async def server() -> AsyncIterator[OAuth2Server]:
    fake = OAuth2Server(access_tokens=["first", "second"])
    async with serve_oauth2(fake):
        yield fake


def client(server: OAuth2Server, secret: str = CLIENT_SECRET) -> oauth2.OAuth2Client:
    return oauth2.OAuth2Client(
        CLIENT_ID, secret, f"{server.url}/authorize", f"{server.url}/token", "a b"
    )


async def code_for(server: OAuth2Server, verifier: str) -> str:
    url = oauth2.authorization_url(
        client(server), redirect_uri=REDIRECT, state="s", verifier=verifier
    )
    async with httpx2.AsyncClient() as browser:
        answer = await browser.get(url)
    return parse_qs(urlsplit(answer.headers["location"]).query)["code"][0]


async def test_the_secret_goes_in_the_form_when_basic_is_refused(server: OAuth2Server) -> None:
    server.basic_auth = False
    server.form_encoded = True
    verifier = oauth2.new_verifier()
    token = await oauth2.exchange_code(
        client(server),
        code=await code_for(server, verifier),
        verifier=verifier,
        redirect_uri=REDIRECT,
        now=NOW,
    )
    assert [r["auth"] for r in server.requests] == ["basic", "form"]
    assert token.access_token == "first" and token.token_type == "bearer"
    assert token.expiry == NOW + dt.timedelta(hours=1)

    renewed = await oauth2.refresh_token(client(server), token, NOW)
    assert renewed.access_token == "second" and renewed.refresh_token != token.refresh_token


async def test_refusals_are_oauth2_errors(server: OAuth2Server) -> None:
    verifier = oauth2.new_verifier()
    code = await code_for(server, verifier)
    with pytest.raises(oauth2.OAuth2Error, match="PKCE verification failed"):
        await oauth2.exchange_code(
            client(server),
            code=code,
            verifier="another-verifier",
            redirect_uri=REDIRECT,
            now=NOW,
        )
    # A public client (no secret) this server does not know.
    with pytest.raises(oauth2.OAuth2Error, match="invalid_client"):
        await oauth2.exchange_code(
            client(server, secret=""),
            code="c",
            verifier=verifier,
            redirect_uri=REDIRECT,
            now=NOW,
        )
    assert server.requests[-1]["form"]["client_id"] == CLIENT_ID
    with pytest.raises(oauth2.OAuth2Error, match="no refresh token"):
        await oauth2.refresh_token(client(server), OAuth2Token("a"), NOW)
    down = oauth2.OAuth2Client(CLIENT_ID, CLIENT_SECRET, "", "http://127.0.0.1:9/token")
    with pytest.raises(oauth2.OAuth2Error, match="could not be reached"):
        await oauth2.refresh_token(down, OAuth2Token("a", "r"), NOW)


def test_the_authorization_header() -> None:
    assert OAuth2Token("t").authorization() == "Bearer t"
    assert OAuth2Token("t", token_type="bearer").authorization() == "Bearer t"
    assert OAuth2Token("t", token_type="MAC").authorization() == "MAC t"
