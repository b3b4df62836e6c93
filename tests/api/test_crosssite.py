"""Cross-site requests over HTTP: the session cookie only from the server's own origin (or an
allowed one), header tokens from anywhere, JSON bodies only as JSON, the query token only on
WebSockets, and a Secure cookie over https."""

from __future__ import annotations

import uuid

import httpx2
import pytest
from fastapi import FastAPI

from chatd.api.crosssite import REFUSED
from chatd.settings import Settings
from chatd.store.db import Database
from tests.api.crosssite_support import (
    CHATS,
    FOREIGN,
    build_world,
    cookie,
    fresh_token,
    jarless,
    json_body_routes,
    offline,
    running,
    snapshot,
    unsafe_routes,
)
from tests.helpers import Api, ApiUser, envelope

pytestmark = pytest.mark.anyio

TEXT = [{"type": "text", "text": "x"}]


def chat_body(user: ApiUser) -> dict[str, object]:
    return {"organization_id": str(user.org_id), "content": TEXT}


def refused(r: httpx2.Response) -> bool:
    return r.status_code == 403 and envelope(r)["message"] == REFUSED


async def chat_count(http: httpx2.AsyncClient, user: ApiUser) -> int:
    r = await http.get(CHATS, headers={"Coder-Session-Token": user.token})
    assert r.status_code == 200, r.text
    return len(r.json())


@pytest.mark.parametrize(
    "browser_headers",
    [{"Origin": FOREIGN}, {"Sec-Fetch-Site": "cross-site"}],
    ids=["origin", "sec-fetch-site"],
)
async def test_every_unsafe_route_refuses_the_cookie_from_another_site(
    app: FastAPI, api: Api, db: Database, browser_headers: dict[str, str]
) -> None:
    world = await build_world(api, db)
    routes = unsafe_routes(app)
    assert ("POST", "/api/experimental/chats/files") in routes
    # A cookie of its own per route: were one request let through (a logout, say), the
    # others would still carry a live session and show what they could have done.
    tokens = [await fresh_token(db, world.admin) for _ in routes]
    before = await snapshot(db)
    async with jarless(app) as http:
        for (method, template), token in zip(routes, tokens, strict=True):
            r = await http.request(
                method,
                world.path(template),
                headers={"Cookie": f"coder_session_token={token}", **browser_headers},
                json=world.body(method, template),
            )
            assert refused(r), (method, template, r.status_code, r.text)
            assert "Coder-Session-Token" in envelope(r)["detail"]
    assert await snapshot(db) == before


async def test_every_unsafe_route_takes_a_header_token_from_another_site(
    app: FastAPI, api: Api, db: Database
) -> None:
    world = await build_world(api, db)
    offline(app)
    async with jarless(app) as http:
        for method, template in unsafe_routes(app):
            token = await fresh_token(db, world.admin)
            r = await http.request(
                method,
                world.path(template),
                headers={"Coder-Session-Token": token, "Origin": FOREIGN},
                json=world.body(method, template),
            )
            assert r.status_code != 401 and not refused(r), (method, template, r.text)


async def test_the_cookie_from_the_servers_own_pages(
    api: Api, app: FastAPI, db: Database, model_id: uuid.UUID
) -> None:
    admin = api.admin
    async with jarless(app) as http:
        own_page = [
            {"Origin": "http://test"},
            {"Origin": "HTTP://Test:80"},  # the same origin, spelled differently
            {"Sec-Fetch-Site": "same-origin"},
            {"Sec-Fetch-Site": "none"},  # typed by the user
            {},  # neither header: not a browser
        ]
        for extra in own_page:
            r = await http.post(CHATS, headers={**cookie(admin), **extra}, json=chat_body(admin))
            assert r.status_code == 201, (extra, r.text)
        created = await chat_count(http, admin)
        assert created == len(own_page)

        other_pages = [
            {"Origin": FOREIGN},
            {"Origin": "null"},  # sandboxed frames, file: pages
            {"Origin": "https://test"},  # another scheme is another origin
            {"Origin": "http://test:8080"},
            {"Origin": "http://test.evil.example"},
            {"Sec-Fetch-Site": "cross-site"},
            {"Sec-Fetch-Site": "same-site"},  # a sibling subdomain is still another origin
            {"Origin": FOREIGN, "Sec-Fetch-Site": "same-origin"},  # Origin decides
        ]
        for extra in other_pages:
            r = await http.post(CHATS, headers={**cookie(admin), **extra}, json=chat_body(admin))
            assert refused(r), (extra, r.text)
        # A form-like post with the cookie, from another site.
        r = await http.post(
            CHATS,
            headers={**cookie(admin), "Origin": FOREIGN, "Content-Type": "text/plain"},
            content=httpx2.Request("POST", "/", json=chat_body(admin)).content,
        )
        assert refused(r)
        assert await chat_count(http, admin) == created
        # Reading is not a change: GET with the cookie from anywhere still answers.
        r = await http.get(CHATS, headers={**cookie(admin), "Origin": FOREIGN})
        assert r.status_code == 200


async def test_header_token_wins_over_a_cookie(api: Api, app: FastAPI, model_id: uuid.UUID) -> None:
    admin = api.admin
    async with jarless(app) as http:
        r = await http.post(
            CHATS,
            headers={**cookie(admin), **admin.headers, "Origin": FOREIGN},
            json=chat_body(admin),
        )
        assert r.status_code == 201, r.text


async def test_allowed_origins(
    api: Api, settings: Settings, db: Database, model_id: uuid.UUID
) -> None:
    admin = api.admin
    allowed = settings.model_copy(
        update={"allowed_origins": ["https://ui.example.com", "http://localhost:5173"]}
    )
    async with running(allowed, db) as app, jarless(app) as http:
        for origin in ("https://ui.example.com", "https://UI.example.com:443", "http://test"):
            r = await http.post(
                CHATS, headers={**cookie(admin), "Origin": origin}, json=chat_body(admin)
            )
            assert r.status_code == 201, (origin, r.text)
        for origin in ("http://ui.example.com", "http://localhost:5174", FOREIGN):
            r = await http.post(
                CHATS, headers={**cookie(admin), "Origin": origin}, json=chat_body(admin)
            )
            assert refused(r), origin
        assert await chat_count(http, admin) == 3


def test_allowed_origins_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CHATD_ALLOWED_ORIGINS", "https://A.example.com/, http://b.example:8080")
    assert Settings().allowed_origins == ["https://a.example.com", "http://b.example:8080"]
    monkeypatch.setenv("CHATD_ALLOWED_ORIGINS", "https://a.example.com/app")
    with pytest.raises(ValueError, match="scheme://host"):
        Settings()
    monkeypatch.delenv("CHATD_ALLOWED_ORIGINS")
    assert Settings().allowed_origins == []


async def test_access_url_is_the_servers_own_origin(
    api: Api, settings: Settings, db: Database, model_id: uuid.UUID
) -> None:
    admin = api.admin
    behind_proxy = settings.model_copy(update={"access_url": "https://chat.example.com/"})
    async with running(behind_proxy, db) as app, jarless(app) as http:
        r = await http.post(
            CHATS,
            headers={**cookie(admin), "Origin": "https://chat.example.com"},
            json=chat_body(admin),
        )
        assert r.status_code == 201, r.text
        # With an access URL, the Host the request names is not trusted as the origin.
        r = await http.post(
            CHATS, headers={**cookie(admin), "Origin": "http://test"}, json=chat_body(admin)
        )
        assert refused(r)


async def test_query_token_does_not_authenticate_http(
    api: Api, app: FastAPI, model_id: uuid.UUID
) -> None:
    admin = api.admin
    params = {"coder_session_token": admin.token}
    async with jarless(app) as http:
        r = await http.get("/api/v2/users/me", params=params)
        assert r.status_code == 401
        assert "must be provided" in envelope(r)["detail"]
        r = await http.post(CHATS, params=params, json=chat_body(admin))
        assert r.status_code == 401
        assert await chat_count(http, admin) == 0


async def test_every_json_route_refuses_other_content_types(
    app: FastAPI, api: Api, db: Database
) -> None:
    world = await build_world(api, db)
    routes = json_body_routes(app)
    assert ("POST", CHATS) in routes and ("PATCH", CHATS + "/{chat}") in routes
    before = await snapshot(db)
    async with jarless(app) as http:
        for method, template in routes:
            r = await http.request(
                method,
                world.path(template),
                headers={**world.admin.headers, "Content-Type": "text/plain"},
                content=b"{}",
            )
            assert r.status_code == 415, (method, template, r.status_code, r.text)
            assert envelope(r)["message"] == "Unsupported media type."
    assert await snapshot(db) == before


async def test_json_content_types(api: Api, app: FastAPI, model_id: uuid.UUID) -> None:
    admin = api.admin
    body = httpx2.Request("POST", "/", json=chat_body(admin)).content
    async with jarless(app) as http:
        for content_type in (
            "text/plain",
            "text/plain; charset=utf-8",
            "application/x-www-form-urlencoded",
            "multipart/form-data; boundary=x",
            "application/jsonx",
        ):
            r = await http.post(
                CHATS, headers={**admin.headers, "Content-Type": content_type}, content=body
            )
            assert r.status_code == 415, content_type
            assert content_type in envelope(r)["detail"]
        # No Content-Type with a body is refused too; with no body, JSON parsing answers.
        r = await http.post(CHATS, headers=admin.headers, content=body)
        assert r.status_code == 415 and "no Content-Type" in envelope(r)["detail"]
        r = await http.post(CHATS, headers=admin.headers)
        assert r.status_code == 400
        assert envelope(r)["message"] == "Request body must be valid JSON."
        assert await chat_count(http, admin) == 0

        for content_type in ("application/json; charset=utf-8", "Application/JSON"):
            r = await http.post(
                CHATS, headers={**admin.headers, "Content-Type": content_type}, content=body
            )
            assert r.status_code == 201, (content_type, r.text)
        assert await chat_count(http, admin) == 2


@pytest.mark.parametrize(
    ("access_url", "secure"),
    [("https://chat.example.com", True), ("http://chat.example.com", False), ("", False)],
)
async def test_session_cookie_is_secure_over_https(
    api: Api, settings: Settings, db: Database, access_url: str, secure: bool
) -> None:
    configured = settings.model_copy(update={"access_url": access_url})
    async with running(configured, db) as app, jarless(app) as http:
        r = await http.post(
            "/api/v2/users/login",
            json={"email": "admin@example.com", "password": "correct-horse-battery"},
        )
        assert r.status_code == 201, r.text
        set_cookie = r.headers["set-cookie"]
        attributes = {a.strip().split("=")[0].lower() for a in set_cookie.split(";")}
        assert set_cookie.startswith(f"coder_session_token={r.json()['session_token']};")
        assert "httponly" in attributes
        assert "samesite=lax" in set_cookie.lower()
        assert ("secure" in attributes) is secure

        token = r.json()["session_token"]
        r = await http.post("/api/v2/users/logout", headers={"Coder-Session-Token": token})
        assert r.status_code == 200
        cleared = r.headers["set-cookie"]
        assert cleared.startswith('coder_session_token="";') or "max-age=0" in cleared.lower()
        assert ("secure" in {a.strip().lower() for a in cleared.split(";")}) is secure


async def test_no_cors(api: Api, app: FastAPI, model_id: uuid.UUID) -> None:
    """No answer lets another site read it or send the header token from a browser."""
    admin = api.admin
    async with jarless(app) as http:
        preflight = await http.options(
            CHATS,
            headers={
                "Origin": FOREIGN,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "coder-session-token, content-type",
            },
        )
        answers = [
            preflight,
            await http.get(CHATS, headers={**admin.headers, "Origin": FOREIGN}),
            await http.post(
                CHATS, headers={**admin.headers, "Origin": FOREIGN}, json=chat_body(admin)
            ),
        ]
    for r in answers:
        assert not [h for h in r.headers if h.lower().startswith("access-control-")], r.headers
    assert preflight.status_code >= 400


async def test_random_ids_are_refused_too(api: Api, app: FastAPI) -> None:
    """The check runs before routing: a route's own 404 never tells a foreign page anything."""
    admin = api.admin
    async with jarless(app) as http:
        r = await http.delete(
            f"/api/v2/users/me/keys/{uuid.uuid4()}", headers={**cookie(admin), "Origin": FOREIGN}
        )
        assert refused(r)
        r = await http.post("/api/v2/nope", headers={**cookie(admin), "Origin": FOREIGN})
        assert refused(r)
