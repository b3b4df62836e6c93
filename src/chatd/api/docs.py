"""The interactive API docs at ``/docs``: Swagger UI served by chatd itself, no CDN.

Swagger UI's files come from the pinned ``swagger-ui-bundle-v2`` package and are served from
``/docs/assets/``; the page loads nothing from another host, runs no inline script (the
initialiser is a file too), and its Content-Security-Policy allows only this origin. Swagger UI
sets inline ``style`` attributes and draws icons from ``data:`` URIs, which the policy allows.
ReDoc is not served (no package ships it with its own assets).
"""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response
from swagger_ui_bundle import swagger_ui_path

from chatd.api.errors import ApiError

router = APIRouter(include_in_schema=False)

SWAGGER_UI_DIR = Path(str(swagger_ui_path))
ASSETS = {
    "swagger-ui-bundle.js": "text/javascript; charset=utf-8",
    "swagger-ui.css": "text/css; charset=utf-8",
    "favicon-32x32.png": "image/png",
}
DOCS_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    "form-action 'self'"
)

# Relative URLs, so the page also works behind a path prefix: from /docs, "docs/assets/x"
# is /docs/assets/x and "openapi.json" is /openapi.json.
PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>chatd API</title>
<link rel="stylesheet" href="docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="docs/assets/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/assets/swagger-ui-bundle.js"></script>
<script src="docs/assets/init.js"></script>
</body>
</html>
"""

INIT_JS = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "openapi.json",
    dom_id: "#swagger-ui",
    layout: "BaseLayout",
    deepLinking: true,
    showExtensions: true,
    showCommonExtensions: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIBundle.SwaggerUIStandalonePreset],
  });
});
"""


@router.get("/docs", response_class=HTMLResponse)
async def docs_page() -> HTMLResponse:
    return HTMLResponse(PAGE, headers={"Content-Security-Policy": DOCS_CSP})


@router.get("/docs/assets/init.js")
async def docs_init() -> Response:
    return Response(INIT_JS, media_type="text/javascript; charset=utf-8")


@router.get("/docs/assets/{name}")
async def docs_asset(name: str) -> FileResponse:
    media_type = ASSETS.get(name)
    if media_type is None:
        raise ApiError(404, "Route not found.")
    # Revalidated with ETag/Last-Modified: the file names do not change between versions.
    return FileResponse(
        SWAGGER_UI_DIR / name, media_type=media_type, headers={"Cache-Control": "no-cache"}
    )
