"""Cross-site WebSocket hijacking: the stream and watch sockets take the session cookie only
from the server's own origin (or an allowed one); header and query tokens from anywhere."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import pytest
from fastapi import FastAPI
from httpx2 import Response
from httpx2.websockets import AsyncWebSocketSession, WebSocketUpgradeError

from chatd.agent.protocol import AGENT_PATH
from chatd.api.crosssite import REFUSED
from chatd.settings import Settings
from chatd.store.db import Database
from tests.api.crosssite_support import FOREIGN, cookie, running, websocket_routes
from tests.api.ws_helpers import frame, stream_path, ws_client
from tests.helpers import ApiUser, envelope, make_chat

pytestmark = pytest.mark.anyio

ALLOWED = "https://ui.example.com"
WATCH = "/api/experimental/chats/watch"


@pytest.fixture
def settings(settings: Settings) -> Settings:
    return settings.model_copy(update={"allowed_origins": [ALLOWED]})


@pytest.fixture(params=["stream", "watch"])
async def socket_path(
    request: pytest.FixtureRequest, db: Database, admin: ApiUser, model_id: uuid.UUID
) -> str:
    if request.param == "watch":
        return WATCH
    return stream_path(await make_chat(db, admin, model_id))


@asynccontextmanager
async def opened(
    app: FastAPI, path: str, headers: dict[str, str], **params: str
) -> AsyncIterator[AsyncWebSocketSession]:
    async with (
        ws_client(app) as http,
        http.websocket(
            path, headers=headers, params=params, keepalive_ping_interval_seconds=None
        ) as ws,
    ):
        yield ws


async def refusal(app: FastAPI, path: str, headers: dict[str, str], **params: str) -> Response:
    """The HTTP answer that refused the upgrade (the client's transport stays outside)."""
    async with ws_client(app) as http:
        with pytest.raises(WebSocketUpgradeError) as refused:
            async with http.websocket(
                path, headers=headers, params=params, keepalive_ping_interval_seconds=None
            ):
                pass
    return refused.value.response


async def expect_refused(app: FastAPI, path: str, headers: dict[str, str], **params: str) -> None:
    r = await refusal(app, path, headers, **params)
    assert r.status_code == 403
    assert envelope(r)["message"] == REFUSED
    assert r.headers["x-frame-options"] == "DENY"


async def test_both_sockets_are_walked(app: FastAPI) -> None:
    # The workspace agents' socket and the replicas' relay take no user credential at all, a
    # cookie included (tests/api/test_agent_rpc.py, tests/api/test_replica_relay.py).
    assert sorted(websocket_routes(app)) == [
        "/api/experimental/chats/watch",
        "/api/experimental/chats/{chat}/stream",
        "/api/experimental/chats/{chat}/stream/desktop",
        "/api/experimental/chats/{chat}/stream/git",
        "/api/internal/chats/{chat}/relay",
        AGENT_PATH,
    ]


async def test_desktop_socket_takes_the_cookie_from_its_own_origin_only(
    app: FastAPI, db: Database, admin: ApiUser, model_id: uuid.UUID
) -> None:
    path = stream_path(await make_chat(db, admin, model_id)) + "/desktop"
    await expect_refused(app, path, {**cookie(admin), "Origin": FOREIGN})
    # From its own origin the cookie passes, on to the route's own checks.
    r = await refusal(app, path, {**cookie(admin), "Origin": "http://test"})
    assert (r.status_code, envelope(r)["message"]) == (400, "Chat has no workspace.")


async def test_git_socket_takes_the_cookie_from_its_own_origin_only(
    app: FastAPI, db: Database, admin: ApiUser, model_id: uuid.UUID
) -> None:
    path = stream_path(await make_chat(db, admin, model_id)) + "/git"
    await expect_refused(app, path, {**cookie(admin), "Origin": FOREIGN})
    r = await refusal(app, path, {**cookie(admin), "Origin": "http://test"})
    assert (r.status_code, envelope(r)["message"]) == (400, "Chat has no workspace to watch.")


async def test_cookie_from_another_site_is_refused(
    app: FastAPI, admin: ApiUser, socket_path: str
) -> None:
    for browser in (
        {"Origin": FOREIGN},
        {"Origin": "null"},
        {"Origin": "https://test"},
        {"Sec-Fetch-Site": "cross-site"},
        {"Sec-Fetch-Site": "same-site"},
    ):
        await expect_refused(app, socket_path, {**cookie(admin), **browser})
    # A token in the query does not make a cookie-borne upgrade trusted: the cookie is used.
    await expect_refused(
        app, socket_path, {**cookie(admin), "Origin": FOREIGN}, coder_session_token="bogus"
    )


async def test_cookie_from_the_servers_own_or_an_allowed_origin(
    app: FastAPI, admin: ApiUser, socket_path: str
) -> None:
    for browser in (
        {"Origin": "http://test"},
        {"Origin": ALLOWED},
        {"Sec-Fetch-Site": "same-origin"},
        {},  # no browser headers: a program, not a page
    ):
        async with opened(app, socket_path, {**cookie(admin), **browser}):
            pass


async def test_header_and_query_tokens_from_anywhere(
    app: FastAPI, admin: ApiUser, socket_path: str
) -> None:
    async with opened(app, socket_path, {**admin.headers, "Origin": FOREIGN}):
        pass
    async with opened(app, socket_path, {"Origin": FOREIGN}, coder_session_token=admin.token):
        pass


async def test_accepted_cookie_sockets_carry_the_chat(
    app: FastAPI, db: Database, admin: ApiUser, model_id: uuid.UUID
) -> None:
    """What a refused socket would have carried: the snapshot, and live chat events."""
    chat_id = await make_chat(db, admin, model_id)
    async with opened(app, stream_path(chat_id), {**cookie(admin), "Origin": "http://test"}) as ws:
        snapshot = await frame(ws)
    assert snapshot[0]["chat_id"] == str(chat_id)

    async with (
        ws_client(app) as http,
        http.websocket(
            WATCH,
            headers={**cookie(admin), "Origin": ALLOWED},
            keepalive_ping_interval_seconds=None,
        ) as ws,
    ):
        r = await http.patch(
            f"/api/experimental/chats/{chat_id}", headers=admin.headers, json={"title": "Secret"}
        )
        assert r.status_code == 204, r.text
        event = await frame(ws)
    assert (event["kind"], event["chat"]["title"]) == ("title_change", "Secret")


async def test_query_token_opens_sockets(app: FastAPI, admin: ApiUser, socket_path: str) -> None:
    async with opened(app, socket_path, {}, coder_session_token=admin.token):
        pass
    r = await refusal(app, socket_path, {}, coder_session_token="nope-nope")
    assert r.status_code == 401


async def test_access_url_origin_for_sockets(
    settings: Settings, db: Database, admin: ApiUser
) -> None:
    configured = settings.model_copy(update={"access_url": "https://chat.example.com"})
    async with running(configured, db) as app:
        async with opened(app, WATCH, {**cookie(admin), "Origin": "https://chat.example.com"}):
            pass
        await expect_refused(app, WATCH, {**cookie(admin), "Origin": "http://test"})
