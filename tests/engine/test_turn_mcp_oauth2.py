"""Turns with an ``oauth2`` MCP server (engine-behaviour §17): the chat owner's own token is
sent as ``Authorization: Bearer <token>`` to a real MCP server process that takes nothing
else; an expired token is refreshed at a real token endpoint on 127.0.0.1 before connecting
and the new one saved sealed; without a token, or when the refresh fails, the server is left
out and the turn goes on."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from chatd.secretbox import is_ciphertext
from chatd.store import mcp_user_tokens as tokens
from chatd.store.db import Database
from chatd.store.mcp_user_tokens import OAuth2Token
from chatd.store.turn_outcome import OutcomeKind
from tests.engine.mcp_helpers import KEY, SERVER_MAIN, add_server, serve_process, use
from tests.engine.tool_turns import ToolTurn, call
from tests.engine.turn_fakes import payloads
from tests.store.test_secret_columns import everything_stored
from tests.tools.oauth2_server import CLIENT_ID, CLIENT_SECRET, OAuth2Server, serve_oauth2

pytestmark = [pytest.mark.anyio, pytest.mark.agent_kinds("dispatcher")]

STALE = "stale-access-token-Zp4mWd1B"
FIRST_REFRESH = "rt-first-refresh-token-Lq0Z"


@pytest.fixture(scope="module")
def mcp_port() -> Iterator[int]:
    with serve_process(SERVER_MAIN, "{port}", KEY) as port:
        yield port


@pytest.fixture
async def oauth() -> AsyncIterator[OAuth2Server]:
    # The token endpoint renews with the key the MCP server takes.
    fake = OAuth2Server(access_tokens=[KEY])
    fake.refresh_tokens.add(FIRST_REFRESH)
    async with serve_oauth2(fake):
        yield fake


async def oauth2_server(db: Database, mcp_port: int, oauth: OAuth2Server) -> uuid.UUID:
    return await add_server(
        db,
        "tracker",
        f"http://127.0.0.1:{mcp_port}/mcp",
        auth_type="oauth2",
        api_key_header="",
        api_key_value="",
        oauth2_client_id=CLIENT_ID,
        oauth2_client_secret=CLIENT_SECRET,
        oauth2_auth_url=f"{oauth.url}/authorize",
        oauth2_token_url=f"{oauth.url}/token",
        tool_allow_list=["echo"],
    )


async def owner(turn: ToolTurn) -> uuid.UUID:
    owner_id: uuid.UUID = (await turn.chat())["owner_id"]
    return owner_id


async def save(db: Database, config_id: uuid.UUID, user_id: uuid.UUID, token: OAuth2Token) -> None:
    async with db.write() as conn:
        await tokens.save_token(conn, db.now(), config_id, user_id, token, db.secrets)


async def stored(db: Database, config_id: uuid.UUID, user_id: uuid.UUID) -> OAuth2Token | None:
    async with db.read() as conn:
        return await tokens.get_token(conn, db.secrets, config_id, user_id)


async def echo_turn(turn: ToolTurn, index: int) -> dict[str, object]:
    """A turn whose model calls ``tracker__echo``; the call's result part."""
    if index > 1:
        await turn.h.say("Again.")
    outcome, streamed = await turn.run(
        {"tool_calls": [call("tracker__echo", f"c{index}", text="hi")]}, {"text": "Done."}
    )
    assert outcome.kind == OutcomeKind.done, outcome.error
    [part] = [p for kind, p in payloads(streamed) if kind == "part:tool"]
    result: dict[str, object] = part
    return result


NOT_OFFERED = {"error": "Tool not found: tracker__echo"}


async def test_an_expired_token_is_refreshed_sent_and_saved_sealed(
    bare: ToolTurn, db: Database, mcp_port: int, oauth: OAuth2Server
) -> None:
    config_id = await oauth2_server(db, mcp_port, oauth)
    user_id = await owner(bare)
    expired = OAuth2Token(STALE, FIRST_REFRESH, "bearer", db.now() - dt.timedelta(minutes=5))
    await save(db, config_id, user_id, expired)
    await use(bare, config_id)

    result = await echo_turn(bare, 1)
    # The MCP server takes only "Bearer <KEY>": the refreshed token was sent.
    assert "tracker__echo" in bare.tool_names(0)
    assert result["result"] == {"output": "echo: hi"}
    assert result["mcp_server_config_id"] == str(config_id)
    [refresh] = oauth.requests
    assert refresh["form"] == {"grant_type": "refresh_token", "refresh_token": FIRST_REFRESH}
    assert refresh["client"] == (CLIENT_ID, CLIENT_SECRET)

    # Saved for the next turn, sealed; the old refresh token was replaced by the new one.
    fresh = await stored(db, config_id, user_id)
    assert fresh is not None and fresh.access_token == KEY
    assert fresh.refresh_token != FIRST_REFRESH and fresh.refresh_token in oauth.refresh_tokens
    assert fresh.expiry is not None and fresh.expiry > db.now() + dt.timedelta(minutes=59)
    everything = await everything_stored(db)
    for plain in (KEY, fresh.refresh_token, STALE, FIRST_REFRESH):
        assert plain.encode() not in everything

    # The next turn sends the saved token as it is: no refresh.
    result = await echo_turn(bare, 2)
    assert result["result"] == {"output": "echo: hi"}
    assert len(oauth.requests) == 1


async def test_without_a_usable_token_the_server_is_left_out(
    bare: ToolTurn, db: Database, mcp_port: int, oauth: OAuth2Server
) -> None:
    config_id = await oauth2_server(db, mcp_port, oauth)
    user_id = await owner(bare)
    await use(bare, config_id)

    # No token at all.
    assert (await echo_turn(bare, 1))["result"] == NOT_OFFERED
    assert "tracker__echo" not in bare.tool_names(0)
    assert oauth.requests == []

    # Expired, and its refresh token refused: left out, the token kept for a reconnect.
    expired = OAuth2Token(STALE, "rt-unknown", "bearer", db.now() - dt.timedelta(seconds=1))
    await save(db, config_id, user_id, expired)
    assert (await echo_turn(bare, 2))["result"] == NOT_OFFERED
    assert "tracker__echo" not in bare.tool_names(2)
    assert [r["form"]["grant_type"] for r in oauth.requests] == ["refresh_token"]
    assert await stored(db, config_id, user_id) == expired

    # A token the MCP server refuses: left out too.
    await save(db, config_id, user_id, OAuth2Token("wrong", "", "Bearer", None))
    assert (await echo_turn(bare, 3))["result"] == NOT_OFFERED

    # One it takes, without expiry or token type: sent as a Bearer token as it is.
    await save(db, config_id, user_id, OAuth2Token(KEY))
    assert (await echo_turn(bare, 4))["result"] == {"output": "echo: hi"}
    async with db.read() as conn:
        [row] = [r.as_dict() for r in await conn.execute(tokens.tokens.select())]
    assert is_ciphertext(row["access_token"]) and row["refresh_token"] == ""


async def test_a_token_another_turn_refreshed_meanwhile_is_used(
    bare: ToolTurn, db: Database, mcp_port: int, oauth: OAuth2Server
) -> None:
    config_id = await oauth2_server(db, mcp_port, oauth)
    user_id = await owner(bare)
    await save(db, config_id, user_id, OAuth2Token(STALE, "rt-spent", "bearer", db.now()))
    await use(bare, config_id)
    renewed = OAuth2Token(KEY, "rt-new", "bearer", db.now() + dt.timedelta(hours=1))

    async def other_turn_refreshes() -> None:
        # Another turn refreshed first: this one's refresh token is spent (refused).
        await save(db, config_id, user_id, renewed)

    oauth.before_refresh = other_turn_refreshes
    assert (await echo_turn(bare, 1))["result"] == {"output": "echo: hi"}
    assert [r["form"]["refresh_token"] for r in oauth.requests] == ["rt-spent"]
    assert await stored(db, config_id, user_id) == renewed
