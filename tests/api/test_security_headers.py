"""Security headers on every answer, /docs without a CDN, and /metrics behind its token."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urljoin, urlsplit

import httpx2
import pytest
from fastapi import FastAPI

from chatd.api.middleware import SECURITY_HEADERS
from chatd.settings import Settings
from chatd.store.db import Database
from tests.api.crosssite_support import jarless, running
from tests.helpers import Api, ApiUser, envelope

pytestmark = pytest.mark.anyio

EXPECTED = {name.decode(): value.decode() for name, value in SECURITY_HEADERS}


def assert_security_headers(r: httpx2.Response, *, own: tuple[str, ...] = ()) -> None:
    """Every security header is there; the ones in ``own`` were set by the route itself."""
    assert r.headers["x-content-type-options"] == "nosniff"
    assert r.headers["x-frame-options"] == "DENY"
    assert r.headers["referrer-policy"] == "no-referrer"
    assert "frame-ancestors 'none'" in r.headers["content-security-policy"]
    for name, value in EXPECTED.items():
        assert len(r.headers.get_list(name)) == 1, name  # never sent twice
        if name not in own:
            assert r.headers[name] == value, name


async def test_headers_on_answers_errors_and_404(
    client: httpx2.AsyncClient, admin: ApiUser
) -> None:
    r = await client.get("/api/v2/users/me", headers=admin.headers)
    assert r.status_code == 200
    assert_security_headers(r)
    assert r.headers["cache-control"] == "no-store"

    r = await client.get("/api/v2/users/me")
    assert r.status_code == 401
    assert_security_headers(r)

    r = await client.get("/api/v2/nope")
    assert r.status_code == 404 and envelope(r)["message"] == "Route not found."
    assert_security_headers(r)

    r = await client.get("/healthz")
    assert_security_headers(r)


async def test_token_answers_are_not_cached(client: httpx2.AsyncClient, admin: ApiUser) -> None:
    r = await client.post(
        "/api/v2/users/login",
        json={"email": "admin@example.com", "password": "correct-horse-battery"},
    )
    assert r.status_code == 201 and r.headers["cache-control"] == "no-store"
    r = await client.post("/api/v2/users/me/keys/tokens", headers=admin.headers, json={})
    assert r.status_code == 201 and r.headers["cache-control"] == "no-store"


async def test_headers_on_an_internal_error(app: FastAPI) -> None:
    async def boom() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/api/v2/boom", boom)
    transport = httpx2.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx2.AsyncClient(transport=transport, base_url="http://test") as http:
        r = await http.get("/api/v2/boom")
    assert r.status_code == 500 and envelope(r)["message"] == "Internal error."
    assert_security_headers(r)


async def test_routes_keep_their_own_caching(client: httpx2.AsyncClient, admin: ApiUser) -> None:
    r = await client.post(
        "/api/experimental/chats/files",
        params={"organization": str(admin.org_id)},
        headers={
            **admin.headers,
            "Content-Type": "text/plain",
            "Content-Disposition": 'attachment; filename="a.txt"',
        },
        content=b"hello",
    )
    assert r.status_code == 201, r.text
    r = await client.get(f"/api/experimental/chats/files/{r.json()['id']}", headers=admin.headers)
    assert r.status_code == 200
    assert_security_headers(r, own=("cache-control",))
    assert r.headers["cache-control"] == "private, max-age=31536000, immutable"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[str] = []
        self.inline_scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        for name in ("src", "href"):
            if values.get(name):
                self.urls.append(str(values[name]))
        if tag == "script" and not values.get("src"):
            self.inline_scripts += 1
        if any(name.startswith("on") for name in values):
            self.inline_scripts += 1


async def test_docs_load_nothing_from_other_hosts(client: httpx2.AsyncClient) -> None:
    r = await client.get("/docs")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert_security_headers(r, own=("content-security-policy",))
    policy = r.headers["content-security-policy"]
    directives = dict(d.strip().split(" ", 1) for d in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["default-src"] == "'none'"
    assert directives["connect-src"] == "'self'"
    assert directives["frame-ancestors"] == "'none'"
    assert not re.search(r"https?:|//", policy)

    page = _Links()
    page.feed(r.text)
    assert page.inline_scripts == 0
    assert not re.search(r"https?://", r.text)
    assert len(page.urls) >= 3
    base = "http://test/docs"
    for url in page.urls:
        absolute = urljoin(base, url)
        assert urlsplit(absolute).netloc == "test", url
        asset = await client.get(absolute)
        assert asset.status_code == 200, url
        assert asset.content, url
        assert asset.headers["x-content-type-options"] == "nosniff"
        if url.endswith(".js"):
            assert asset.headers["content-type"].startswith("text/javascript")
        if url.endswith(".css"):
            assert asset.headers["content-type"].startswith("text/css")

    r = await client.get("/docs/assets/init.js")
    assert "SwaggerUIBundle(" in r.text and 'url: "openapi.json"' in r.text
    assert "validatorUrl: null" in r.text
    assert urljoin(base, "openapi.json") == "http://test/openapi.json"
    assert (await client.get("/openapi.json")).status_code == 200


async def test_docs_serve_only_their_assets(client: httpx2.AsyncClient) -> None:
    for path in (
        "/docs/assets/index.html",
        "/docs/assets/swagger-initializer.js",  # points at a public demo document
        "/docs/assets/..%2F..%2F__init__.py",
        "/docs/oauth2-redirect",
    ):
        r = await client.get(path)
        assert r.status_code == 404, path
        envelope(r)
    # Outside the API's paths is the web UI, not ReDoc.
    r = await client.get("/redoc")
    assert "redoc" not in r.text.lower()
    assert r.headers["content-security-policy"].startswith("default-src 'none'; script-src 'self'")


async def test_metrics_open_without_a_token(client: httpx2.AsyncClient) -> None:
    r = await client.get("/metrics")
    assert r.status_code == 200 and "chatd_http_requests_total" in r.text


async def test_metrics_behind_a_token(api: Api, settings: Settings, db: Database) -> None:
    guarded = settings.model_copy(update={"metrics_token": "s3cret-metrics"})
    async with running(guarded, db) as app, jarless(app) as http:
        for headers in (
            {},
            {"Authorization": "Bearer wrong"},
            {"Authorization": "Basic s3cret-metrics"},
            {"Authorization": "s3cret-metrics"},
            api.admin.headers,  # a user's session token is not the metrics token
        ):
            r = await http.get("/metrics", headers=headers)
            assert r.status_code == 401, headers
            assert envelope(r)["message"] == "A valid metrics token is required."
            assert r.headers["www-authenticate"].startswith("Bearer")
            assert "chatd_http_requests_total" not in r.text
        for scheme in ("Bearer", "bearer"):
            r = await http.get("/metrics", headers={"Authorization": f"{scheme} s3cret-metrics"})
            assert r.status_code == 200
            assert "chatd_http_requests_total" in r.text
