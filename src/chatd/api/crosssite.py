"""Cross-site request protection for cookie-authenticated requests.

Browsers attach the session cookie to requests that other sites make them send, so a request
authenticated by the cookie may change something (any method but GET, HEAD and OPTIONS) or
open a WebSocket only when it comes from the server's own origin or one the deployment lists
in ``allowed_origins``. The ``Origin`` header decides; a browser that sends none still sends
``Sec-Fetch-Site``; a request with neither comes from a program, not a browser, and passes.

A token in the ``Coder-Session-Token`` header (API clients, the CLI) or, on a WebSocket
upgrade, in the query string is never attached by a browser on its own, so those requests are
not checked. No CORS headers are ever sent, so other sites cannot read answers or send that
header from a browser.

"The server's own origin" is the origin of ``access_url`` when it is set; otherwise the one the
request addresses (its scheme and ``Host``), which is right for a server reached directly.
"""

from __future__ import annotations

from starlette.requests import HTTPConnection
from starlette.types import ASGIApp, Receive, Scope, Send
from starlette.websockets import WebSocket

from chatd.api.deps import TokenSource, request_credential
from chatd.api.errors import ApiError
from chatd.api.websockets import deny
from chatd.settings import Settings, origin_of

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Sec-Fetch-Site values a browser sends for a request the server's own pages (or the user,
# typing a URL) started. "same-site" is a sibling origin and is refused like "cross-site".
SAME_ORIGIN_FETCH = frozenset({"same-origin", "none"})
REFUSED = "Cross-site request refused."
_HTTP_SCHEMES = {"ws": "http", "wss": "https"}


def request_origin(conn: HTTPConnection) -> str | None:
    """The origin the request itself addresses: its scheme and Host header."""
    scheme = _HTTP_SCHEMES.get(conn.url.scheme, conn.url.scheme)
    host = conn.headers.get("host")
    if not host:
        return None
    try:
        return origin_of(f"{scheme}://{host}")
    except ValueError:
        return None


class CrossSiteGuard:
    """Refuses cookie-authenticated changes and WebSocket upgrades from foreign origins."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self.app = app
        self.access_origin = settings.access_origin()
        self.allowed = frozenset(settings.allowed_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] not in SAFE_METHODS:
            conn = HTTPConnection(scope)
        elif scope["type"] == "websocket":
            conn = HTTPConnection(scope)
        else:
            await self.app(scope, receive, send)
            return
        credential = request_credential(conn)
        if credential is None or credential[1] is not TokenSource.COOKIE:
            await self.app(scope, receive, send)
            return
        problem = self.problem(conn)
        if problem is None:
            await self.app(scope, receive, send)
            return
        error = ApiError(403, REFUSED, problem)
        if scope["type"] == "http":
            await error.response()(scope, receive, send)
        else:
            await deny(WebSocket(scope, receive, send), error)

    def problem(self, conn: HTTPConnection) -> str | None:
        """Why this cookie-authenticated request is refused, or None when it may go on."""
        own = self.access_origin or request_origin(conn)
        origin = conn.headers.get("origin")
        if origin is not None:
            try:
                normalized = origin_of(origin)
            except ValueError:
                normalized = None  # "null" (sandboxed or file pages) and anything malformed
            if normalized is not None and (normalized == own or normalized in self.allowed):
                return None
            return (
                f'Origin "{origin}" may not use the session cookie to change data or open a '
                'WebSocket. Send the token in the "Coder-Session-Token" header instead.'
            )
        fetch_site = conn.headers.get("sec-fetch-site")
        if fetch_site is None or fetch_site.lower() in SAME_ORIGIN_FETCH:
            return None
        return (
            f'A "{fetch_site}" request may not use the session cookie to change data or open '
            'a WebSocket. Send the token in the "Coder-Session-Token" header instead.'
        )
