"""The web UI: the built single-page app from ``web/``, served at ``/``.

``make run`` (or ``make dist``) builds ``web/`` into :data:`WEB_DIST`, inside the package, so a
wheel carries it. Every GET or HEAD outside the API's own paths is the UI's: a file of the build
when one has that path (``/assets/...`` are content-hashed, so cached for a year), else its
``index.html``, whose router then shows the page for the path. Without a build, ``/`` explains
how to get one.

The UI's policy allows scripts and styles from this origin only (no inline script: the build
emits none), connections to this origin (its HTTP API and WebSockets), images from it and from
``data:``/``blob:`` URLs (attachment previews, the desktop's canvas), and no framing.
"""

from __future__ import annotations

from pathlib import Path

from starlette.responses import FileResponse, HTMLResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

import chatd

WEB_DIST = Path(chatd.__file__).parent / "web_dist"

# Paths the API and its tools own; an unknown path under them stays the API's 404.
API_PREFIXES = ("/api/", "/docs", "/openapi.json", "/healthz", "/metrics")

UI_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data: blob:; font-src 'self' data:; connect-src 'self'; "
    "worker-src 'self' blob:; manifest-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)
IMMUTABLE = "public, max-age=31536000, immutable"

NOT_BUILT = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>chatd</title></head>
<body>
<h1>chatd</h1>
<p>The web UI has not been built into this installation.</p>
<p>From a checkout of chatd, with Node.js 20 or newer installed, <code>make run</code> builds
it before starting the server (or <code>make web</code> builds it alone). A wheel made with
<code>make dist</code> carries it built.</p>
<p>The API is here all the same: <a href="/docs">/docs</a>.</p>
</body>
</html>
"""


def is_api_path(path: str) -> bool:
    return any(path == p.rstrip("/") or path.startswith(p) for p in API_PREFIXES)


def built_file(dist: Path, path: str) -> Path | None:
    """The file of the build at URL ``path``, if there is one (never outside ``dist``)."""
    relative = path.lstrip("/")
    if not relative or relative.endswith("/"):
        return None
    candidate = (dist / relative).resolve()
    root = dist.resolve()
    if root not in candidate.parents or not candidate.is_file():
        return None
    return candidate


def ui_response(dist: Path, path: str) -> Response:
    headers = {"Content-Security-Policy": UI_CSP}
    index = dist / "index.html"
    if not index.is_file():
        return HTMLResponse(NOT_BUILT, headers=headers)
    found = built_file(dist, path)
    if found is not None and found != index.resolve():
        cache = IMMUTABLE if path.startswith("/assets/") else "no-cache"
        return FileResponse(found, headers={**headers, "Cache-Control": cache})
    # Revalidated every time: a new build changes the assets it names.
    return FileResponse(index, headers={**headers, "Cache-Control": "no-cache"})


class WebUi:
    """Answers GET and HEAD outside :data:`API_PREFIXES` with the UI; the rest goes on."""

    def __init__(self, app: ASGIApp, dist: Path = WEB_DIST) -> None:
        self.app = app
        self.dist = dist

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] == "http"
            and scope["method"] in ("GET", "HEAD")
            and not is_api_path(scope["path"])
        ):
            await ui_response(self.dist, scope["path"])(scope, receive, send)
            return
        await self.app(scope, receive, send)
