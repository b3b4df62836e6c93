"""The web UI's files at ``/``: the built app where it is, the API's paths left to the API."""

from __future__ import annotations

from pathlib import Path

import httpx2
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from chatd.api.webui import IMMUTABLE, UI_CSP, WebUi

pytestmark = pytest.mark.anyio

INDEX = '<!doctype html><div id="root"></div><script type="module" src="/assets/app-1.js"></script>'


async def api_answer(request: object) -> JSONResponse:
    return JSONResponse({"api": True})


def client_for(dist: Path) -> httpx2.AsyncClient:
    inner = Starlette(
        routes=[
            Route("/api/v2/thing", api_answer, methods=["GET", "POST"]),
            Route("/healthz", api_answer),
        ]
    )
    transport = httpx2.ASGITransport(app=WebUi(inner, dist=dist))
    return httpx2.AsyncClient(transport=transport, base_url="http://test")


@pytest.fixture
def dist(tmp_path: Path) -> Path:
    root = tmp_path / "web_dist"
    (root / "assets").mkdir(parents=True)
    (root / "index.html").write_text(INDEX)
    (root / "assets" / "app-1.js").write_text("console.log('ui')")
    (root / "favicon.svg").write_text("<svg/>")
    (tmp_path / "secret.txt").write_text("outside the build")
    return root


async def test_pages_are_the_app_with_its_policy(dist: Path) -> None:
    async with client_for(dist) as http:
        for path in ("/", "/login", "/chats/0b0a3c7e-1c6e-4a55-9d3e-6c1f5f0f8a11", "/admin/users"):
            r = await http.get(path)
            assert r.status_code == 200, path
            assert r.text == INDEX
            assert r.headers["content-security-policy"] == UI_CSP
            assert r.headers["cache-control"] == "no-cache"
    script_src = next(d for d in UI_CSP.split(";") if d.strip().startswith("script-src"))
    assert script_src.strip() == "script-src 'self'"


async def test_assets_are_cached_and_other_files_revalidated(dist: Path) -> None:
    async with client_for(dist) as http:
        r = await http.get("/assets/app-1.js")
        assert r.status_code == 200 and r.text == "console.log('ui')"
        assert r.headers["cache-control"] == IMMUTABLE
        assert r.headers["content-type"].startswith("text/javascript")
        r = await http.get("/favicon.svg")
        assert r.text == "<svg/>" and r.headers["cache-control"] == "no-cache"
        r = await http.head("/assets/app-1.js")
        assert r.status_code == 200 and r.content == b""


async def test_nothing_outside_the_build_is_served(dist: Path) -> None:
    async with client_for(dist) as http:
        for path in ("/../secret.txt", "/assets/..%2F..%2Fsecret.txt", "/%2e%2e/secret.txt"):
            r = await http.get(path)
            assert "outside the build" not in r.text, path
        # A missing asset is the app's page (its router shows "not found"), never a listing.
        r = await http.get("/assets/")
        assert r.text == INDEX


async def test_the_api_keeps_its_paths_and_methods(dist: Path) -> None:
    async with client_for(dist) as http:
        assert (await http.get("/api/v2/thing")).json() == {"api": True}
        assert (await http.post("/api/v2/thing")).json() == {"api": True}
        assert (await http.get("/healthz")).json() == {"api": True}
        # Unknown API paths are not the UI's: the API answers them (here, the bare 404).
        r = await http.get("/api/v2/nothing")
        assert r.status_code == 404 and INDEX not in r.text
        # Only GET and HEAD are the UI's.
        r = await http.post("/login")
        assert r.status_code == 404 and INDEX not in r.text


async def test_without_a_build_the_page_says_how_to_get_one(tmp_path: Path) -> None:
    async with client_for(tmp_path / "missing") as http:
        r = await http.get("/")
    assert r.status_code == 200
    assert "make run" in r.text and "Node.js 20" in r.text
    assert r.headers["content-security-policy"] == UI_CSP
    assert "<script" not in r.text


async def test_the_server_answers_unknown_api_paths_with_its_envelope(
    client: httpx2.AsyncClient,
) -> None:
    r = await client.get("/api/experimental/nothing-here")
    assert r.status_code == 404 and r.json()["message"] == "Route not found."
    r = await client.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
